"""Fuzz the bundle reader: damaged and hostile bundles must give BundleError.

Usage: ``.venv/bin/python bench/fuzz_bundle.py [--cases N] [--seed S]
[--timeout-s T]``

Runs ``--cases`` cases (10,000 by default) against ``unpack_bundle``, each
made by one mutator picked at random from the table below: random bytes,
bytes flipped, cut or spliced in a valid bundle, ZIP header fields set to
edge values, and -- to get past the CRC-32s and SHA-256s to the deeper
checks -- members, the manifest, documents, .npy headers and member names
edited and then resealed with correct checksums.  A case passes when the
bundle is accepted (and its arrays are read-only) or refused with a
one-line BundleError; anything else is a failure: another exception, or a
read that takes longer than ``--timeout-s`` (a hang).  Prints the cases
per mutator, the outcomes, the kinds of error, every failure with its
traceback, and the time taken; exits with status 1 on any failure.
Reproducible: the same seed gives the same cases.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import random
import re
import signal
import sys
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import numpy as np

from fosr.bundle import Provenance, pack_bundle, unpack_bundle
from fosr.errors import BundleError

Mutator = Callable[[random.Random], bytes]

PROVENANCE = Provenance(
    created=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    command=("fosr", "learn", "week1.pcap"),
)
DOCUMENTS: dict[str, dict[str, Any]] = {
    "flow_model": {
        "kind": "flowchronicle",
        "version": 1,
        "patterns": [{"support": 12, "rows": [{"cells": [1, 2.5, "x", None]}]}],
    },
    "packet_model": {"kind": "tadam", "version": 1, "services": {"dns": True}},
}
ARRAYS = {
    "bool": np.array([[True, False], [False, True]]),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "uint16": np.array([2**16 - 1], dtype=np.uint16),
    "int32": np.arange(12, dtype=np.int32).reshape(3, 4),
    "uint64": np.array([2**64 - 1], dtype=np.uint64),
    "float16": np.array([0.5, -2.0], dtype=np.float16),
    "float64": np.linspace(0, 1, 40).reshape(2, 4, 5),
    "scalar": np.array(42.5),
    "empty": np.zeros((0, 3), dtype=np.int32),
}
VALID = pack_bundle(documents=DOCUMENTS, arrays=ARRAYS, provenance=PROVENANCE)

# values that sit on the edges of ZIP fields, sizes and counts
EDGE_INTS = [0, 1, 2, 7, 22, 30, 46, 64, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]
HOSTILE_NAMES = [
    "../x",
    "/etc/passwd",
    "arrays/../../x.npy",
    "parts/a/b.json",
    "arrays/.npy",
    "parts/" + "a" * 200 + ".json",
    "parts/\u00e9.json",
    "parts\\a.json",
    "manifest.json",
    "",
    "arrays/a.npy\x00.json",
    "parts/a\n.json",
    "arrays/\x1b[31mred.npy",
]
HOSTILE_DESCRS = ["|b1", "<i4", "<f8", "|O", "<U3", "|S2", ">f8", "<c16", "<M8[s]"]


def members_of(data: bytes) -> dict[str, bytes]:
    """Return the members of a ZIP archive by name, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


MEMBERS = members_of(VALID)
MANIFEST = json.loads(MEMBERS["manifest.json"])


def rezip(members: list[tuple[str, bytes]], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            info = zipfile.ZipInfo(name, (2024, 5, 1, 12, 0, 0))
            info.compress_type = method
            archive.writestr(info, content)
    return buffer.getvalue()


def reseal(
    rng: random.Random,
    members: dict[str, bytes],
    manifest: Any = None,
    extra: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """Rezip with the manifest's sizes and SHA-256s made right again."""
    if manifest is None:
        manifest = json.loads(json.dumps(MANIFEST))
    listed = manifest.get("members") if isinstance(manifest, dict) else None
    if isinstance(listed, dict):
        for name, info in listed.items():
            if name in members and isinstance(info, dict):
                info["bytes"] = len(members[name])
                info["sha256"] = hashlib.sha256(members[name]).hexdigest()
    resealed = dict(members)
    resealed["manifest.json"] = json.dumps(manifest).encode()
    method = rng.choice([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a case may add a name twice
        return rezip([*resealed.items(), *extra], method)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Flip, cut, insert, delete or duplicate bytes of ``data``."""
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        action = rng.choice(["flip", "cut", "insert", "delete", "duplicate"])
        at = rng.randint(0, len(damaged))
        if action == "flip" and damaged:
            damaged[at % len(damaged)] ^= rng.randint(1, 255)
        elif action == "cut":
            del damaged[at:]
        elif action == "insert":
            damaged[at:at] = rng.randbytes(rng.randint(1, 32))
        elif action == "delete":
            del damaged[at : at + rng.randint(1, 32)]
        else:
            damaged[at:at] = damaged[at : at + rng.randint(1, 64)]
    return bytes(damaged)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Return a random JSON value, with edge values and odd nesting."""
    roll = rng.random()
    if depth > 4 or roll < 0.45:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1,
                2**64,
                -(2**63),
                1.5,
                -0.0,
                1e308,
                "",
                "x" * rng.randint(0, 300),
                "|O",
                "<f8",
                "../x",
                "\u2028",
                rng.choice(EDGE_INTS),
            ]
        )
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {
        rng.choice(["kind", "version", "bytes", "sha256", "shape", "dtype", "x"]): (
            random_json(rng, depth + 1)
        )
        for _ in range(rng.randint(0, 4))
    }


def case_random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 4096))


def case_random_inside_zip_frame(rng: random.Random) -> bytes:
    return VALID[:30] + rng.randbytes(rng.randint(0, 1024)) + VALID[-22:]


def case_damaged_bytes(rng: random.Random) -> bytes:
    return mutate_bytes(rng, VALID)


def case_zip_field(rng: random.Random) -> bytes:
    # overwrite a 2- or 4-byte field at a header signature with an edge value
    damaged = bytearray(VALID)
    headers = [
        m.start() for m in re.finditer(rb"PK[\x01\x03\x05][\x02\x04\x06]", VALID)
    ]
    for _ in range(rng.randint(1, 3)):
        start = rng.choice(headers) + rng.randrange(4, 46, 2)
        width = rng.choice([2, 4])
        value = rng.choice([*EDGE_INTS, rng.randrange(0, len(VALID) + 64)])
        value &= (1 << (8 * width)) - 1
        if start + width <= len(damaged):
            damaged[start : start + width] = value.to_bytes(width, "little")
    return bytes(damaged)


def case_member_resealed(rng: random.Random) -> bytes:
    members = dict(MEMBERS)
    name = rng.choice([n for n in members if n != "manifest.json"])
    members[name] = mutate_bytes(rng, members[name])
    return reseal(rng, members)


def case_manifest_resealed(rng: random.Random) -> bytes:
    manifest = json.loads(json.dumps(MANIFEST))
    for _ in range(rng.randint(1, 3)):
        # walk down to a random node and replace or delete it
        target = manifest
        while True:
            keys = list(target) if isinstance(target, dict) else range(len(target))
            if not keys:
                break
            key = rng.choice(list(keys))
            child = target[key]
            if isinstance(child, dict | list) and child and rng.random() < 0.6:
                target = child
                continue
            if isinstance(target, dict) and rng.random() < 0.2:
                del target[key]
            else:
                target[key] = random_json(rng)
            break
    return reseal(rng, dict(MEMBERS), manifest)


def case_manifest_text(rng: random.Random) -> bytes:
    # damage the manifest's text itself (then nothing can reseal it)
    members = dict(MEMBERS)
    members["manifest.json"] = mutate_bytes(rng, members["manifest.json"])
    return rezip(list(members.items()), zipfile.ZIP_DEFLATED)


def case_document_resealed(rng: random.Random) -> bytes:
    members = dict(MEMBERS)
    choice = rng.random()
    if choice < 0.5:
        document = dict(DOCUMENTS["flow_model"])
        document[rng.choice(["kind", "version", "patterns", "x"])] = random_json(rng)
        text = json.dumps(document).encode()
    elif choice < 0.7:
        depth = rng.choice([63, 64, 65, 1000, 100_000])
        text = b"[" * depth + b"]" * depth
    else:
        text = rng.choice(
            [
                b'{"kind": "flowchronicle", "version": 1, "x": NaN}',
                b'{"kind": "flowchronicle", "version": 1, "x": 1e999}',
                b'{"kind": "flowchronicle", "kind": "flowchronicle", "version": 1}',
                b'{"kind": "flowchronicle", "version": 1, "x": "\xff"}',
                b'{"kind": "flowchronicle", "version": ' + b"9" * 5000 + b"}",
                b"\xef\xbb\xbf{}",
            ]
        )
    members["parts/flow_model.json"] = text
    return reseal(rng, members)


def case_npy_resealed(rng: random.Random) -> bytes:
    descr = rng.choice(HOSTILE_DESCRS)
    shape = [
        rng.choice([0, 1, 2, 3, -1, 2**31, 2**63]) for _ in range(rng.randint(0, 4))
    ]
    if rng.random() < 0.2:
        shape = [1] * rng.choice([32, 33, 64, 65])
    dims = "".join(f"{n}, " for n in shape)
    fortran = rng.choice(["False", "True", "0"])
    text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': ({dims}), }}"
    header = (text + " " * (-(len(text) + 11) % 64) + "\n").encode()
    if rng.random() < 0.2:
        header = mutate_bytes(rng, header)
    body_bytes = rng.choice([0, 1, 3, 4, 8, 12, 16, 48, 96])
    body = rng.choice([bytes(body_bytes), rng.randbytes(body_bytes)])
    prefix = rng.choice(
        [b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"\x93NUMPY\x01\x01"]
    )
    npy = prefix + len(header).to_bytes(2, "little") + header + body
    if rng.random() < 0.1:
        npy = _pickle_npy()
    members = dict(MEMBERS)
    members["arrays/int32.npy"] = npy
    manifest = json.loads(json.dumps(MANIFEST))
    entry = manifest["members"]["arrays/int32.npy"]
    # announce what the header says, or an allowed dtype so that the case
    # gets past the manifest to the .npy parser
    entry["dtype"] = descr if rng.random() < 0.3 else rng.choice(["<i4", "|b1"])
    entry["shape"] = shape
    return reseal(rng, members, manifest)


def case_names_resealed(rng: random.Random) -> bytes:
    members = dict(MEMBERS)
    manifest = json.loads(json.dumps(MANIFEST))
    name = rng.choice(HOSTILE_NAMES)
    if rng.random() < 0.3:
        name = "".join(
            chr(rng.choice([rng.randrange(0, 128), rng.randrange(0, 0x3000)]))
            for _ in range(rng.randint(0, 30))
        )
    if rng.random() < 0.5:  # announce it too, with the right checksum
        manifest["members"][name] = {
            "bytes": 3,
            "sha256": hashlib.sha256(b"abc").hexdigest(),
        }
    if rng.random() < 0.3:
        del members[rng.choice([n for n in members if n != "manifest.json"])]
    return reseal(rng, members, manifest, [(name, b"abc")])


def _pickle_npy() -> bytes:
    payload = np.empty(1, dtype=object)
    payload[0] = {"pickled": True}
    buffer = io.BytesIO()
    np.save(buffer, payload, allow_pickle=True)
    return buffer.getvalue()


MUTATORS: dict[str, tuple[float, Mutator]] = {
    # name: (weight, mutator)
    "random bytes": (1.0, case_random_bytes),
    "random bytes in a ZIP frame": (0.5, case_random_inside_zip_frame),
    "damaged bytes": (2.0, case_damaged_bytes),
    "ZIP header fields": (1.0, case_zip_field),
    "manifest text": (0.5, case_manifest_text),
    "member resealed": (2.0, case_member_resealed),
    "manifest resealed": (2.0, case_manifest_resealed),
    "document resealed": (1.0, case_document_resealed),
    ".npy header resealed": (1.5, case_npy_resealed),
    "member names resealed": (0.5, case_names_resealed),
}


class Hang(Exception):
    """A case ran past its time limit."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


def kind_of(error: BundleError) -> str:
    """Return the error's kind: where it happened and its reason, values removed."""
    member = error.member or ""
    if error.member is None:
        where = "archive"
    elif member == "manifest.json":
        where = member
    elif member.split("/")[0] in ("parts", "arrays"):
        where = member.split("/")[0] + "/*"
    else:
        where = "other member"

    # values are reprs: strings, then bracketed groups from the inside out,
    # then what a repr cut short at 60 characters left open, then numbers
    reason = re.sub(r"b?'[^']*'|\"[^\"]*\"", "…", error.reason)
    previous = ""
    while previous != reason:
        previous = reason
        reason = re.sub(r"[\[{(][^\[\]{}()]*[\]})]", "…", reason)
    reason = re.sub(r"[\[{('].*?\.\.\.", "…", reason)
    reason = re.sub(r"\b[0-9a-f]{16}\b|-?\d+(\.\d+)?(e[+-]?\d+)?", "N", reason)
    field = "" if error.field is None else "field … "
    return f"{where}: {field}{reason}"


def check_accepted(data: bytes) -> None:
    """Read ``data``; raise AssertionError if an accepted bundle is inconsistent."""
    bundle = unpack_bundle(data, path="fuzz.fosr")
    for name in bundle.array_names:
        assert not bundle.array(name).flags.writeable, name
    for name in bundle.parts:
        assert isinstance(bundle.document(name), dict), name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases to run")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--timeout-s", type=float, default=5.0, help="seconds before a case is a hang"
    )
    args = parser.parse_args()

    rng = random.Random(args.seed)
    names = list(MUTATORS)
    weights = [MUTATORS[name][0] for name in names]
    per_mutator: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    accepted: collections.Counter[str] = collections.Counter()
    failures: list[tuple[int, str, str]] = []
    slowest_s, slowest_case = 0.0, ""
    signal.signal(signal.SIGALRM, _on_alarm)

    started = time.perf_counter()
    for index in range(args.cases):
        name = rng.choices(names, weights)[0]
        per_mutator[name] += 1
        data = MUTATORS[name][1](rng)
        case_started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.timeout_s)
        try:
            check_accepted(data)
            outcomes["accepted"] += 1
            accepted[name] += 1
        except BundleError as error:
            outcomes["refused with BundleError"] += 1
            kinds[kind_of(error)] += 1
            if "\n" in str(error) or not str(error).startswith("fuzz.fosr: "):
                failures.append((index, name, f"malformed message: {str(error)!r}"))
        except Hang:
            outcomes["hang"] += 1
            failures.append((index, name, f"no answer after {args.timeout_s} s"))
        except Exception:  # the point of the run: nothing else may escape
            outcomes["unexpected exception"] += 1
            failures.append((index, name, traceback.format_exc()))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        elapsed_s = time.perf_counter() - case_started
        if elapsed_s > slowest_s:
            slowest_s, slowest_case = elapsed_s, f"case {index} ({name})"
    total_s = time.perf_counter() - started

    print(
        f"fuzz_bundle: {args.cases} cases, seed {args.seed}, "
        f"valid bundle of {len(VALID)} bytes, {len(MEMBERS)} members"
    )
    print("\ncases per mutator (of which accepted):")
    for name in names:
        print(f"  {per_mutator[name]:7d}  ({accepted[name]:5d})  {name}")
    print("\noutcomes:")
    for outcome in [
        "accepted",
        "refused with BundleError",
        "unexpected exception",
        "hang",
    ]:
        print(f"  {outcomes[outcome]:7d}  {outcome}")
    print(f"\nkinds of BundleError ({len(kinds)} distinct):")
    for kind, count in kinds.most_common():
        print(f"  {count:7d}  {kind}")
    print(f"\nfailures: {len(failures)}")
    for index, name, text in failures[:20]:
        print(f"--- case {index} ({name})\n{text}")
    print(
        f"\nelapsed: {total_s:.1f} s, {total_s / args.cases * 1e3:.2f} ms per case; "
        f"slowest: {slowest_s * 1e3:.0f} ms, {slowest_case}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
