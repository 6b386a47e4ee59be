"""What ``fosrd`` and ``fosrctl`` say while the daemon is not built.

The entry points exist so that the command names are fixed and packaging
installs them; they say so and exit with the "not available" code shared
with ``fosr`` (4) instead of pretending to run.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from fosr import __version__

EXIT_UNAVAILABLE = 4


def run_unavailable(prog: str, missing: str, argv: Sequence[str] | None) -> int:
    """Print the version if asked, else say what is missing; return the code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(f"{prog} {__version__}")
        return 0
    print(
        f"{prog}: error: not available in fosr {__version__}: {missing}",
        file=sys.stderr,
    )
    return EXIT_UNAVAILABLE
