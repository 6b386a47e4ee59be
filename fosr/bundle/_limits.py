"""The size limits a bundle must respect to be read.

A bundle may come from anywhere (a colleague, a download, an attacker who
can write to the model folder), so the reader bounds everything it
allocates before allocating it: the file, the number of members, each
member once decompressed, their sum, each JSON document and its nesting,
and each array.  The defaults are chosen without measurements: a few
times more than a model learnt from a week of a small network's traffic
is expected to need, and small enough that a daemon on a 2 GiB machine
survives a hostile bundle.  Raise them for a bigger model; the writer
refuses what a reader with the same limits would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits"]

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Upper bounds checked when a bundle is read (and when one is written).

    Every field must be positive; a bundle exactly at a limit is accepted,
    one byte or item beyond it is refused with a BundleError naming the
    limit.
    """

    max_file_bytes: int = 256 * MiB
    """Size of the bundle file on disk; default 256 MiB."""

    max_members: int = 4096
    """Members in the archive, manifest.json included; default 4096."""

    max_member_bytes: int = 256 * MiB
    """Size of one member once decompressed; default 256 MiB."""

    max_total_bytes: int = 512 * MiB
    """Sum of the decompressed sizes of all members; default 512 MiB.

    This is what the reader holds in memory, and what stops a
    decompression bomb: a small file that inflates without end.
    """

    max_json_bytes: int = 32 * MiB
    """Size of one JSON member (the manifest or a part); default 32 MiB."""

    max_json_depth: int = 64
    """Nesting of arrays and objects in one JSON member; default 64.

    The top-level object is depth 1; the manifest itself needs 4.
    """

    max_array_elements: int = 1 << 26
    """Elements of one array (product of its shape); default 2**26."""

    max_array_dims: int = 32
    """Dimensions of one array; default 32 (numpy itself allows 64)."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Limits.{name} must be a positive int: {value!r}")


DEFAULT_LIMITS = Limits()
"""The limits readers and writers use unless given others."""
