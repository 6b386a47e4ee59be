"""Turn header sequences of flows into packet bytes and pcap files.

A :class:`FlowBatch` (IPv4 and IPv6 flows and, per flow, the header
sequence of their packets) goes to :func:`build_frames` or
:func:`iter_frames`, which return :class:`Frames`: the Ethernet frames of
all flows merged in time order, built in numpy batches.  :func:`write_pcap`
writes them to a binary file object; frames built with 16 bytes of
headroom are written without being copied.  docs/synth.md has the whole
account.
"""

from fosr.synth._batch import FlowBatch, Frames
from fosr.synth._build import build_frames, iter_frames
from fosr.synth._profiles import OS_PROFILES, OsProfile, profile_id
from fosr.synth.pcap import write_pcap, write_pcap_header

__all__ = [
    "OS_PROFILES",
    "FlowBatch",
    "Frames",
    "OsProfile",
    "build_frames",
    "iter_frames",
    "profile_id",
    "write_pcap",
    "write_pcap_header",
]
