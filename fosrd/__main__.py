"""The ``fosrd`` entry point: not built yet (see ``fosrd._unavailable``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fosrd._unavailable import run_unavailable

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Report that the daemon is not available in this version."""
    return run_unavailable(
        "fosrd",
        "the daemon is not built yet; `fosr flows`, `fosr learn` and "
        "`fosr generate --flows` are the parts that work",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
