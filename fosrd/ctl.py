"""The ``fosrctl`` entry point: not built yet (see ``fosrd._unavailable``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fosrd._unavailable import run_unavailable

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Report that the control client is not available in this version."""
    return run_unavailable(
        "fosrctl", "the daemon and its control socket are not built yet", argv
    )


if __name__ == "__main__":
    sys.exit(main())
