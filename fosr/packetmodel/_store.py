"""Save the packet model in a model bundle, and load it back with every check.

The part is the document ``packet_model`` (kind ``tadam``, version 1) and
five arrays named ``packet_model.*``.  The document lists the automata in a
fixed order (services by key, then the fallbacks), each with

- ``proto`` and ``port`` (the service key; ``port`` is -1 for a protocol's
  fallback), ``n_states``, ``n_edges``, ``n_examples``, ``p_add`` (the
  noise model's addition probability) and ``notes``;
- ``symbols``: per symbol ``forward`` (bool), ``flags`` (the TCP flag
  byte), ``payload_class`` (0 empty, 1 text, 2 binary, 3 random) and
  ``token`` (the first token of a text payload, or "");

plus the model's ``notes``.  The arrays lay the automata's edges and states
end to end, in the document's order:

===========================  ======  =========  ============================
array                        dtype   shape      content
===========================  ======  =========  ============================
``packet_model.edges``       int64   (E, 3)     source, destination, symbol
``packet_model.counts``      float64 (E,)       training events per edge
``packet_model.guards``      float64 (E, 5)     mean gap, mean size, var gap,
                                                var size, covariance
``packet_model.sizes``       int64   (E, 2)     smallest, largest size seen
``packet_model.ends``        float64 (S,)       words ending in each state
===========================  ======  =========  ============================

where E is the sum of ``n_edges`` and S the sum of ``n_states``.  Nothing
of the training payloads is stored but the text tokens (at most 10
letters, digits or ``/._-``, each seen in at least 3 packets).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fosr.bundle import Bundle, Field, Provenance, write_bundle
from fosr.packetmodel._automaton import Automaton
from fosr.packetmodel._model import PacketModel
from fosr.packetmodel._symbols import RANDOM, Symbol

__all__ = ["PART", "load_packet_model", "save_packet_model", "write_packet_model"]

Array = npt.NDArray[Any]

PART = "packet_model"
"""Name of the packet model's part in a bundle."""

_KIND, _VERSION = "tadam", 1
_MAX_STATES = 100_000
_MAX_SYMBOLS = 100_000
_TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-")


def save_packet_model(
    model: PacketModel,
    documents: MutableMapping[str, Any],
    arrays: MutableMapping[str, Array],
) -> None:
    """Add the packet model's document and arrays to a bundle's members.

    ``documents`` and ``arrays`` are the mappings later handed to
    :func:`fosr.bundle.write_bundle`, possibly already holding the flow
    model's members.  Raises ValueError if a member of the packet model is
    already there.
    """
    automata, edges, counts, guards, sizes, ends = [], [], [], [], [], []
    for (proto, port), automaton in model.automata():
        automata.append(
            {
                "proto": proto,
                "port": port,
                "n_states": automaton.n_states,
                "n_edges": automaton.n_edges,
                "n_examples": automaton.n_examples,
                "p_add": float(automaton.p_add),
                "notes": list(automaton.notes),
                "symbols": [
                    {
                        "forward": s.forward,
                        "flags": s.flags,
                        "payload_class": s.payload_class,
                        "token": s.token,
                    }
                    for s in automaton.symbols
                ],
            }
        )
        edges.append(np.stack([automaton.src, automaton.dst, automaton.symbol], 1))
        counts.append(automaton.count)
        cov = automaton.cov
        guards.append(
            np.column_stack([automaton.mean, cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1]])
        )
        sizes.append(np.stack([automaton.size_lo, automaton.size_hi], 1))
        ends.append(automaton.end_count)
    members = {
        f"{PART}.edges": _joined(edges, np.int64, (0, 3)),
        f"{PART}.counts": _joined(counts, np.float64, (0,)),
        f"{PART}.guards": _joined(guards, np.float64, (0, 5)),
        f"{PART}.sizes": _joined(sizes, np.int64, (0, 2)),
        f"{PART}.ends": _joined(ends, np.float64, (0,)),
    }
    clash = [name for name in [PART, *members] if name in documents or name in arrays]
    if clash:
        raise ValueError(f"the bundle's members already hold {clash[0]!r}")
    documents[PART] = {
        "kind": _KIND,
        "version": _VERSION,
        "automata": automata,
        "notes": list(model.notes),
    }
    arrays.update(members)


def write_packet_model(
    path: str | os.PathLike[str], model: PacketModel, provenance: Provenance
) -> None:
    """Write a bundle holding only the packet model at ``path``, atomically."""
    documents: dict[str, Any] = {}
    arrays: dict[str, Array] = {}
    save_packet_model(model, documents, arrays)
    write_bundle(path, documents=documents, arrays=arrays, provenance=provenance)


def load_packet_model(bundle: Bundle) -> PacketModel | None:
    """Return the packet model of a bundle, or None when it holds none.

    Checks every field and array (types, ranges, indices within their
    automaton, finite guards with positive variances, an accepting state
    in every automaton) and raises BundleError naming the first problem.
    """
    if PART not in bundle.parts:
        return None
    root = bundle.fields(PART)
    root["kind"].as_str(choices=[_KIND])
    version = root["version"].as_int()
    if version > _VERSION:
        raise root["version"].error(
            f"is {version}: made by a newer fosr; this fosr reads tadam version "
            f"{_VERSION}"
        )
    if version != _VERSION:
        raise root["version"].error(f"must be {_VERSION}, not {version}")
    notes = [note.as_str() for note in root["notes"].as_list()]
    fields = root["automata"].as_list()
    heads = [_head(field) for field in fields]
    n_edges = sum(h["n_edges"] for h in heads)
    n_states = sum(h["n_states"] for h in heads)

    edges = _array(bundle, "edges", np.int64, (n_edges, 3))
    counts = _array(bundle, "counts", np.float64, (n_edges,))
    guards = _array(bundle, "guards", np.float64, (n_edges, 5))
    sizes = _array(bundle, "sizes", np.int64, (n_edges, 2))
    ends = _array(bundle, "ends", np.float64, (n_states,))
    if (counts < 0).any() or (ends < 0).any():
        raise bundle.array_error(f"{PART}.counts", "holds negative counts")
    if (guards[:, 2:4] <= 0).any():
        raise bundle.array_error(f"{PART}.guards", "holds a variance <= 0")
    if (np.abs(guards[:, 4]) > np.sqrt(guards[:, 2] * guards[:, 3]) * (1 + 1e-9)).any():
        raise bundle.array_error(
            f"{PART}.guards", "holds a covariance beyond +-1 correlation"
        )
    if (sizes < 0).any() or (sizes > 65535).any() or (sizes[:, 0] > sizes[:, 1]).any():
        raise bundle.array_error(
            f"{PART}.sizes", "must hold 0 <= smallest <= largest <= 65535"
        )

    services: dict[tuple[int, int], Automaton] = {}
    fallbacks: dict[int, Automaton] = {}
    e0 = s0 = 0
    for field, head in zip(fields, heads, strict=True):
        e1, s1 = e0 + head["n_edges"], s0 + head["n_states"]
        automaton = _automaton(
            bundle,
            field,
            head,
            edges[e0:e1],
            counts[e0:e1],
            guards[e0:e1],
            sizes[e0:e1],
            ends[s0:s1],
        )
        key = (head["proto"], head["port"])
        if key in services or (head["port"] == -1 and head["proto"] in fallbacks):
            raise field["port"].error(f"repeats the service {key}")
        if head["port"] == -1:
            fallbacks[head["proto"]] = automaton
        else:
            services[key] = automaton
        e0, s0 = e1, s1
    return PacketModel(services, fallbacks, notes)


def _head(field: Field) -> dict[str, Any]:
    """Read the scalar fields of one automaton."""
    return {
        "proto": field["proto"].as_int(min=0, max=255),
        "port": field["port"].as_int(min=-1, max=65535),
        "n_states": field["n_states"].as_int(min=1, max=_MAX_STATES),
        "n_edges": field["n_edges"].as_int(min=0, max=_MAX_STATES * _MAX_SYMBOLS),
        "n_examples": field["n_examples"].as_int(min=0),
        "p_add": field["p_add"].as_float(min=0.0, max=0.5),
        "notes": tuple(note.as_str() for note in field["notes"].as_list()),
    }


def _symbol(field: Field) -> Symbol:
    """Read one symbol."""
    token = field["token"].as_str()
    if len(token) > 10 or not set(token) <= _TOKEN_CHARS:
        raise field["token"].error(
            "must be at most 10 letters, digits or /._-, not " + repr(token[:20])
        )
    return Symbol(
        forward=field["forward"].as_bool(),
        flags=field["flags"].as_int(min=0, max=255),
        payload_class=field["payload_class"].as_int(min=0, max=RANDOM),
        token=token,
    )


def _automaton(
    bundle: Bundle,
    field: Field,
    head: dict[str, Any],
    edges: Array,
    counts: Array,
    guards: Array,
    sizes: Array,
    ends: Array,
) -> Automaton:
    """Build one automaton from its rows, checking indices and acceptance."""
    symbols = tuple(_symbol(s) for s in field["symbols"].as_list(max_len=_MAX_SYMBOLS))
    n_states = head["n_states"]
    if len(edges) and (edges[:, :2].min() < 0 or edges[:, :2].max() >= n_states):
        raise bundle.array_error(
            f"{PART}.edges", f"names a state outside 0..{n_states - 1} ({field.path})"
        )
    if len(edges) and (edges[:, 2].min() < 0 or edges[:, 2].max() >= len(symbols)):
        raise bundle.array_error(
            f"{PART}.edges",
            f"names a symbol outside 0..{len(symbols) - 1} ({field.path})",
        )
    if not (ends > 0).any():
        raise bundle.array_error(f"{PART}.ends", f"no accepting state ({field.path})")
    cov = np.empty((len(edges), 2, 2))
    cov[:, 0, 0], cov[:, 1, 1] = guards[:, 2], guards[:, 3]
    cov[:, 0, 1] = cov[:, 1, 0] = guards[:, 4]
    return Automaton(
        proto=head["proto"],
        symbols=symbols,
        n_states=n_states,
        src=np.array(edges[:, 0]),
        dst=np.array(edges[:, 1]),
        symbol=np.array(edges[:, 2]),
        count=np.array(counts),
        end_count=np.array(ends),
        mean=np.array(guards[:, :2]),
        cov=cov,
        size_lo=np.array(sizes[:, 0]),
        size_hi=np.array(sizes[:, 1]),
        p_add=head["p_add"],
        n_examples=head["n_examples"],
        notes=head["notes"],
    )


def _array(
    bundle: Bundle, name: str, dtype: type[Any], shape: tuple[int, ...]
) -> Array:
    """Return a checked array: dtype, exact shape, finite values."""
    full = f"{PART}.{name}"
    array = bundle.array(full, dtype=dtype, shape=shape)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise bundle.array_error(full, "holds NaN or infinite values")
    return array


def _joined(parts: list[Array], dtype: type[Any], empty: tuple[int, ...]) -> Array:
    """Return arrays laid end to end, or an empty one of the given shape."""
    if not parts:
        return np.zeros(empty, dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts).astype(dtype))
