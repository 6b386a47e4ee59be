"""The shared behaviour of tables whose fields are numpy columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

__all__ = ["ColumnTable"]

Array = npt.NDArray[Any]


class ColumnTable:
    """Base of frozen dataclasses whose fields are equal-length numpy columns.

    A subclass lists its columns, in their canonical order, with their dtypes
    in ``DTYPES``; ``DEFAULTS`` gives the fill value of a column that
    :meth:`from_columns` may leave out.  Columns are converted to their dtype
    on construction, and columns of different lengths raise ValueError.
    """

    DTYPES: ClassVar[Mapping[str, npt.DTypeLike]]
    DEFAULTS: ClassVar[Mapping[str, Any]] = {}
    # every table has a start column; subclasses declare it as a field
    start: Array

    def __post_init__(self) -> None:
        n = len(self.start)
        for f in fields(self):  # type: ignore[arg-type]
            column = getattr(self, f.name)
            dtype = self.DTYPES[f.name]
            if not isinstance(column, np.ndarray) or column.dtype != dtype:
                column = np.asarray(column, dtype=dtype)
                object.__setattr__(self, f.name, column)
            if len(column) != n:
                raise ValueError(
                    f"column {f.name!r} has {len(column)} rows, 'start' has {n}"
                )

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def empty(cls) -> Self:
        """Return a table with no rows."""
        return cls(**{name: np.empty(0, dtype=d) for name, d in cls.DTYPES.items()})

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any] | Array]) -> Self:
        """Build a table from a mapping of column name to values.

        Raises ValueError if a column without a default is missing, or a
        column is unknown.
        """
        given = dict(columns)
        n = len(next(iter(given.values()))) if given else 0
        for name, value in cls.DEFAULTS.items():
            given.setdefault(name, np.full(n, value, dtype=cls.DTYPES[name]))
        missing = set(cls.DTYPES) - set(given)
        extra = set(given) - set(cls.DTYPES)
        if missing or extra:
            raise ValueError(
                f"columns missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        return cls(
            **{name: np.asarray(given[name], dtype=d) for name, d in cls.DTYPES.items()}
        )

    @classmethod
    def concat(cls, tables: Sequence[Self]) -> Self:
        """Stack tables row-wise, in the order given."""
        if not tables:
            return cls.empty()
        return cls(
            **{
                name: np.concatenate([getattr(t, name) for t in tables])
                for name in cls.DTYPES
            }
        )

    def take(self, index: Array) -> Self:
        """Return the rows at ``index`` (an integer or boolean array)."""
        return type(self)(**{name: getattr(self, name)[index] for name in self.DTYPES})

    def sorted_by_start(self) -> Self:
        """Return the rows ordered by start time (stable)."""
        return self.take(np.argsort(self.start, kind="stable"))

    def columns(self) -> dict[str, Array]:
        """Return the columns as a name-to-array dict, in the canonical order."""
        return {name: getattr(self, name) for name in self.DTYPES}
