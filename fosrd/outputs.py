"""What every fosrd output receives and how the daemon drives it.

The scheduler releases traffic in :class:`Chunk` s
(:class:`fosr.pipeline.Chunk`): the frames that are due now, in time order,
and the ground-truth flows whose first frame is among them.  Every output
(the pcap ring, a network interface, a flow log alone) implements
:class:`Output`.  Its methods are called from one sender thread, never
concurrently; :meth:`Output.status` may be called from the event loop
at any time and must only read counters.

An output never raises for trouble on its side (disk full, interface gone,
ENOBUFS): it counts the frames it dropped and the errors by kind, logs the
first occurrence, retries later, and reports all of it in :meth:`status`.
It raises :class:`fosr.errors.ConfigError` only from its constructor, for a
configuration it cannot honour at all.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from fosr.pipeline import Chunk

__all__ = ["Chunk", "Output", "OutputStats"]


@dataclass
class OutputStats:
    """Counters an output keeps; read by status requests and metrics.

    ``errors`` counts failures by a short kind (``"ENOSPC"``, ``"ENOBUFS"``,
    ``"ENXIO"``, ``"rotate_command"``...).  ``files`` and ``file_bytes`` are
    for outputs that write files (the ring's current size on disk).
    """

    packets: int = 0
    bytes: int = 0
    flows: int = 0
    dropped_packets: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    files: int = 0
    file_bytes: int = 0

    def count_error(self, kind: str, n: int = 1) -> None:
        """Add ``n`` to the error counter ``kind``."""
        self.errors[kind] = self.errors.get(kind, 0) + n


class Output(abc.ABC):
    """One destination of the generated traffic."""

    #: short type name used in metrics labels and status: "ring", "iface", "flowlog"
    kind: str = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats = OutputStats()

    @abc.abstractmethod
    def emit(self, chunk: Chunk) -> None:
        """Write or send the chunk; count what could not be."""

    def rotate(self) -> str | None:
        """Start a new file now, if the output writes files.

        Return the path of the file just finished, or None.
        """
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and close everything; idempotent."""

    def status(self) -> dict[str, object]:
        """Return a JSON-ready description of the output and its counters."""
        s = self.stats
        return {
            "name": self.name,
            "kind": self.kind,
            "packets": s.packets,
            "bytes": s.bytes,
            "flows": s.flows,
            "dropped_packets": s.dropped_packets,
            "errors": dict(s.errors),
            "files": s.files,
            "file_bytes": s.file_bytes,
        }
