"""Fields: typed access to a JSON document that names its place in errors.

A model part reads its document through :class:`Field` instead of indexing
dicts and lists: each step checks the type and range it expects, and a
mismatch raises a BundleError naming the bundle, the member and the field
path, with the value found::

    model.fosr: parts/flow_model.json: field 'patterns[3].support' must be
    an integer >= 1, not 0

The bundle layer knows nothing of what a flow model or a packet model is;
this is how each of them checks its own content, in the code that reads
it, without a separate schema language.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from fosr.bundle._json import JSON, child_path, quote, type_name
from fosr.errors import BundleError

__all__ = ["Field"]


class Field:
    """One value of a JSON document, with where it lies.

    ``value`` is the raw JSON value, ``path`` the field path from the
    document's root ("" for the root, "patterns[3].rows[0]" below it),
    ``member`` the archive member and ``bundle`` the bundle file (or
    ``None``).  Methods named ``as_*`` return the value as a Python type or
    raise BundleError; indexing returns the Field one step down.  A Field
    never changes once made.
    """

    __slots__ = ("value", "member", "bundle", "_root_path", "_parent", "_key")

    def __init__(
        self,
        value: JSON,
        path: str = "",
        member: str | None = None,
        bundle: str | None = None,
    ) -> None:
        self.value = value
        self.member = member
        self.bundle = bundle
        # children keep their parent and key, and spell their path only
        # when an error needs it: loaders walk thousands of fields
        self._root_path = path
        self._parent: Field | None = None
        self._key: str | int = ""

    @property
    def path(self) -> str:
        """Return the field path from the document's root."""
        keys: list[str | int] = []
        field = self
        while field._parent is not None:
            keys.append(field._key)
            field = field._parent
        path = field._root_path
        for key in reversed(keys):
            path = child_path(path, key)
        return path

    def __repr__(self) -> str:
        return f"Field({self.path!r}: {quote(self.value)})"

    def __getitem__(self, key: str | int) -> Field:
        """Return the field ``key`` of an object, or item ``key`` of an array.

        Raises BundleError if this is not an object (for a str key) or an
        array (for an int key), or the key or index is missing.
        """
        if isinstance(key, str):
            found = self.get(key)
            if found is None:
                raise self.error(f"has no field {quote(key)}")
            return found
        items = self.as_list()
        if not -len(items) <= key < len(items):
            raise self.error(f"has {len(items)} items, no index {key}")
        return items[key]

    def get(self, key: str) -> Field | None:
        """Return the field ``key`` of an object, or None when it is absent.

        A field present with the value null is returned, as a Field whose
        value is None.  Raises BundleError if this is not an object.
        """
        fields = self._object()
        if key not in fields:
            return None
        return self._child(key, fields[key])

    def keys(self) -> list[str]:
        """Return the keys of an object, in document order."""
        return list(self._object())

    def items(self) -> Iterator[tuple[str, Field]]:
        """Iterate over the (key, Field) pairs of an object."""
        for key, value in self._object().items():
            yield key, self._child(key, value)

    def as_list(self, *, min_len: int = 0, max_len: int | None = None) -> list[Field]:
        """Return the items of an array, with between min_len and max_len items."""
        if not isinstance(self.value, list):
            raise self._wrong_type("an array")
        count = len(self.value)
        if count < min_len or (max_len is not None and count > max_len):
            if max_len is None:
                wanted = f"at least {min_len}"
            elif min_len == max_len:
                wanted = str(min_len)
            elif min_len == 0:
                wanted = f"at most {max_len}"
            else:
                wanted = f"between {min_len} and {max_len}"
            raise self.error(f"must have {wanted} items, not {count}")
        return [self._child(i, value) for i, value in enumerate(self.value)]

    def as_str(self, *, choices: Collection[str] | None = None) -> str:
        """Return a string, one of ``choices`` when given."""
        if not isinstance(self.value, str):
            raise self._wrong_type("a string")
        if choices is not None and self.value not in choices:
            allowed = ", ".join(quote(choice) for choice in sorted(choices))
            raise self.error(f"must be one of {allowed}, not {quote(self.value)}")
        return self.value

    def as_int(self, *, min: int | None = None, max: int | None = None) -> int:
        """Return an integer (not a boolean) between ``min`` and ``max``."""
        if not isinstance(self.value, int) or isinstance(self.value, bool):
            raise self._wrong_type("an integer")
        self._check_range(self.value, "an integer", min, max)
        return self.value

    def as_float(self, *, min: float | None = None, max: float | None = None) -> float:
        """Return a number (an integer is accepted) between ``min`` and ``max``.

        JSON members never hold NaN or infinities: the reader refuses them.
        """
        value = self.value
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self._wrong_type("a number")
        self._check_range(value, "a number", min, max)
        return float(value)

    def as_bool(self) -> bool:
        """Return a boolean."""
        if not isinstance(self.value, bool):
            raise self._wrong_type("a boolean")
        return self.value

    def is_null(self) -> bool:
        """Return True if the value is null."""
        return self.value is None

    def error(self, reason: str) -> BundleError:
        """Return a BundleError about this field, for the caller to raise.

        ``reason`` completes "field 'x' ...", e.g. "must sum to 1, not 0.7".
        """
        return BundleError(
            reason, path=self.bundle, member=self.member, field=self.path or None
        )

    def _object(self) -> dict[str, JSON]:
        if not isinstance(self.value, dict):
            raise self._wrong_type("an object")
        return self.value

    def _child(self, key: str | int, value: JSON) -> Field:
        child = Field(value, "", self.member, self.bundle)
        child._parent, child._key = self, key
        return child

    def _wrong_type(self, expected: str) -> BundleError:
        return self.error(f"must be {expected}, not {type_name(self.value)}")

    def _check_range(
        self, value: float, kind: str, low: float | None, high: float | None
    ) -> None:
        if low is not None and value < low:
            raise self.error(f"must be {kind} >= {low}, not {quote(value)}")
        if high is not None and value > high:
            raise self.error(f"must be {kind} <= {high}, not {quote(value)}")
