"""The ``fosrctl`` entry point: talk to a running fosrd.

Like ``fosrd`` itself, not built yet: it says so and exits with code 4.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fosr import __version__

__all__ = ["main"]

EXIT_UNAVAILABLE = 4


def main(argv: Sequence[str] | None = None) -> int:
    """Report that the control client is not available in this version."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"fosrctl {__version__}")
        return 0
    print(
        f"fosrctl: error: not available in fosr {__version__}: the daemon "
        "and its control socket are not built yet",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE


if __name__ == "__main__":
    sys.exit(main())
