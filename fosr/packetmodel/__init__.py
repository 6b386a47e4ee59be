"""The packet model: TADAM timed automata per service, sampled under constraints.

Learning (:func:`learn_packet_model`) turns the packets of connections into
words of symbols (direction, TCP flags, payload class) with values (gap,
payload size) and learns one timed automaton per service by minimum
description length.  Sampling (:meth:`PacketModel.sample`) draws each
flow's packets with exactly its packet counts, its payload bytes and its
duration, by forward filtering and backward sampling.  docs/packetmodel.md
describes the model, the algorithms and the bundle layout.
"""

from fosr.packetmodel._automaton import Automaton
from fosr.packetmodel._model import (
    HEADER_BYTES,
    HeaderSequences,
    PacketModel,
    ServiceKey,
    learn_packet_model,
    service_keys,
)
from fosr.packetmodel._store import (
    PART,
    load_packet_model,
    save_packet_model,
    write_packet_model,
)
from fosr.packetmodel._symbols import (
    BINARY,
    EMPTY,
    PAYLOAD_CLASS_NAMES,
    RANDOM,
    TEXT,
    Symbol,
)

__all__ = [
    "BINARY",
    "EMPTY",
    "HEADER_BYTES",
    "PART",
    "PAYLOAD_CLASS_NAMES",
    "RANDOM",
    "TEXT",
    "Automaton",
    "HeaderSequences",
    "PacketModel",
    "ServiceKey",
    "Symbol",
    "learn_packet_model",
    "load_packet_model",
    "save_packet_model",
    "service_keys",
    "write_packet_model",
]
