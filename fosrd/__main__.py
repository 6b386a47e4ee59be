"""The ``fosrd`` entry point.

The daemon is not built yet: this entry point exists so that the command
names are fixed and packaging installs them.  It says so and exits with the
"not available" code shared with ``fosr`` (4) instead of pretending to run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fosr import __version__

__all__ = ["main"]

EXIT_UNAVAILABLE = 4


def main(argv: Sequence[str] | None = None) -> int:
    """Report that the daemon is not available in this version."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"fosrd {__version__}")
        return 0
    print(
        f"fosrd: error: not available in fosr {__version__}: the daemon is "
        "not built yet; `fosr flows` is the part that works",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
