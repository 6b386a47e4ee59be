"""Provenance: data files hashed in chunks, command and time recorded."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from bundle_builders import PROVENANCE, valid_bundle

from fosr.bundle import DataFile, Provenance, unpack_bundle
from fosr.errors import InputError


def test_for_files_hashes_each_file(tmp_path: Path) -> None:
    big = tmp_path / "big.pcap"
    big.write_bytes(bytes(range(256)) * 10_000)  # several read chunks
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    provenance = Provenance.for_files(
        [big, str(empty)], command=["fosr", "learn"], created=PROVENANCE.created
    )
    assert provenance.data == (
        DataFile(str(big), hashlib.sha256(big.read_bytes()).hexdigest(), 2_560_000),
        DataFile(str(empty), hashlib.sha256(b"").hexdigest(), 0),
    )
    assert provenance.command == ("fosr", "learn")


def test_for_files_defaults_to_this_command_and_now() -> None:
    before = datetime.now(UTC)
    provenance = Provenance.for_files([])
    assert provenance.command == tuple(sys.argv)
    assert before <= provenance.created <= datetime.now(UTC)
    assert provenance.host is None


def test_for_files_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="absent.pcap: cannot read"):
        Provenance.for_files([tmp_path / "absent.pcap"])


def test_provenance_round_trips_through_the_manifest_in_utc() -> None:
    local = timezone(timedelta(hours=2))
    created = datetime(2024, 5, 1, 14, 0, 0, 999_999, tzinfo=local)
    provenance = Provenance(created=created, command=("x",), notes="ü")
    bundle = unpack_bundle(valid_bundle(provenance=provenance))
    # stored as UTC, to the second
    assert bundle.provenance.created == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert bundle.provenance.command == ("x",)
    assert bundle.provenance.notes == "ü"
    assert bundle.fosr_version


def test_provenance_with_undecodable_file_names_still_writes() -> None:
    # os.fsdecode(b"caf\xe9.pcap"): a lone surrogate, which JSON may not hold
    name = "caf\udce9.pcap"
    provenance = Provenance(
        created=PROVENANCE.created,
        command=("fosr", "learn", name),
        data=(DataFile(name, "0" * 64, 1),),
        notes="\ud800",
    )
    read = unpack_bundle(valid_bundle(provenance=provenance)).provenance
    assert read.command[2] == "caf\ufffd\ufffd\ufffd.pcap"
    assert read.data[0].path == read.command[2]
    assert read.notes == "\ufffd\ufffd\ufffd"
