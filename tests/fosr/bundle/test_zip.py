"""The strict ZIP walk: what zipfile would open and a bundle reader refuses."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib

import pytest
from bundle_builders import VALID, members_of, refusal, rezip

from fosr.bundle import Limits, unpack_bundle
from fosr.bundle._zip import Entry, inflate, read_entries
from fosr.errors import BundleError

_END = struct.Struct("<4sHHHHIIH")


def central_offsets(data: bytes) -> list[int]:
    """Return the offsets of the central directory entries of ``data``."""
    _, _, _, _, entries, _, at, _ = _END.unpack_from(data, len(data) - _END.size)
    offsets = []
    for _ in range(entries):
        offsets.append(at)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, at + 28)
        at += 46 + name_len + extra_len + comment_len
    return offsets


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Return ``data`` with ``value`` packed as ``fmt`` at ``offset``."""
    result = bytearray(data)
    struct.pack_into(fmt, result, offset, value)
    return bytes(result)


def archive(*names: str, **info_fields: object) -> bytes:
    """Return a ZIP of empty members ``names``, setting ZipInfo fields."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zip_file:
        for name in names:
            info = zipfile.ZipInfo(name)
            for key, value in info_fields.items():
                setattr(info, key, value)
            zip_file.writestr(info, b"{}")
    return buffer.getvalue()


def test_read_stored_archive_is_accepted() -> None:
    data = rezip(members_of(VALID), method=zipfile.ZIP_STORED)
    assert unpack_bundle(data).array_names == unpack_bundle(VALID).array_names


def test_written_bundle_opens_with_zipfile() -> None:
    # the other direction: standard tools can inspect a bundle
    with zipfile.ZipFile(io.BytesIO(VALID)) as zip_file:
        assert zip_file.testzip() is None
        assert zip_file.namelist()[:3] == [
            "manifest.json",
            "parts/flow_model.json",
            "parts/packet_model.json",
        ]


def _with_comment() -> bytes:
    buffer = io.BytesIO(VALID)
    with zipfile.ZipFile(buffer, "a") as zip_file:
        zip_file.comment = b"hello"
    return buffer.getvalue()


def _with_duplicate() -> bytes:
    members = list(members_of(VALID).items())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate
        return rezip([*members, members[1]])


def _with_gap_before_directory() -> bytes:
    _, _, _, _, _, _, cd_at, _ = _END.unpack_from(VALID, len(VALID) - _END.size)
    data = VALID[:cd_at] + b"junk" + VALID[cd_at:]
    return patched(data, len(data) - 6, "<I", cd_at + 4)


def _with_overlap() -> bytes:
    # the second entry points at the first one's local header: the layout
    # of the overlapping-entries zip bomb
    data = archive("parts/a.json", "parts/b.json")
    return patched(data, central_offsets(data)[1] + 42, "<I", 0)


def _with_central_flags(flags: int) -> bytes:
    return patched(VALID, central_offsets(VALID)[0] + 8, "<H", flags)


def _with_forced_zip64() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zip_file:
        with zip_file.open("manifest.json", "w", force_zip64=True) as stream:
            stream.write(b"{}")
    return buffer.getvalue()


CASES: dict[str, tuple[bytes, str | None, str]] = {
    # name: (archive, member named, message fragment)
    "empty file": (b"", None, "not a ZIP archive"),
    "not a zip": (b"hello, world" * 10, None, "not a ZIP archive"),
    "data before the first entry": (b"MZ" + VALID, None, "not a ZIP archive"),
    "data after the end record": (VALID + b"\0", None, "trailing data"),
    "archive comment": (_with_comment(), None, "no end of central directory"),
    "duplicate member": (_with_duplicate(), "parts/flow_model.json", "twice"),
    "gap before the directory": (
        _with_gap_before_directory(),
        None,
        "4 bytes between the last member and the central directory",
    ),
    "overlapping members": (
        _with_overlap(),
        "parts/b.json",
        "local header at offset 0, expected 44: members overlap",
    ),
    "encrypted": (_with_central_flags(0x0001), "manifest.json", "flags 0x0001"),
    "data descriptor": (_with_central_flags(0x0008), "manifest.json", "0x0008"),
    "bzip2": (
        archive("manifest.json", compress_type=zipfile.ZIP_BZIP2),
        "manifest.json",
        "compression method 12 is not supported",
    ),
    "lzma": (
        archive("manifest.json", compress_type=zipfile.ZIP_LZMA),
        "manifest.json",
        "compression method 14 is not supported",
    ),
    "extra field": (
        archive("manifest.json", extra=b"UT\x05\x00\x01\x00\x00\x00\x00"),
        "manifest.json",
        "extra field",
    ),
    "zip64 entry": (_with_forced_zip64(), "manifest.json", "extra field"),
    "non-ASCII name": (archive("parts/é.json"), None, "is not printable ASCII"),
    "line break in a name": (
        archive("parts/a\n.json"),
        None,
        "member name b'parts/a\\n.json' is not printable ASCII",
    ),
    "multi-disk": (
        patched(VALID, len(VALID) - 18, "<H", 1),
        None,
        "multi-disk ZIP archives are not supported",
    ),
    "directory offset wrong": (
        patched(VALID, len(VALID) - 6, "<I", 7),
        None,
        "does not end at the end record",
    ),
    "entry count too high": (
        patched(patched(VALID, len(VALID) - 14, "<H", 19), len(VALID) - 12, "<H", 19),
        None,
        "central directory entry 18 is cut short",
    ),
    "local header disagrees": (
        patched(VALID, 14, "<I", 0xDEADBEEF),
        "manifest.json",
        "local header disagrees with the central directory",
    ),
    "central name points past the directory": (
        patched(VALID, central_offsets(VALID)[-1] + 28, "<H", 0xFFFF),
        None,
        "central directory entry 17 is damaged",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_read_archive_outside_the_subset_is_refused(case: str) -> None:
    data, member, fragment = CASES[case]
    error = refusal(data)
    assert error.member == member
    assert fragment in str(error)


def test_read_refuses_a_decompression_bomb_before_inflating() -> None:
    bomb = rezip({"manifest.json": b"{}", "arrays/a.npy": bytes(2 << 20)})
    assert len(bomb) < 5000
    error = refusal(bomb, limits=Limits(max_total_bytes=1 << 20))
    assert "members add up to more than max_total_bytes=1048576" in str(error)
    error = refusal(bomb, limits=Limits(max_member_bytes=1 << 20))
    assert error.member == "arrays/a.npy"


def test_inflate_stops_one_byte_past_the_announced_size() -> None:
    # a stream of 64 MiB announced as 10 bytes stops at 11 without growing
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    stream = packer.compress(bytes(64 << 20)) + packer.flush()
    entry = Entry("arrays/a.npy", 8, 0, len(stream), 10, 0)
    with pytest.raises(BundleError, match="inflates to 11 bytes, central directory"):
        inflate(stream, entry, "model.fosr")


def test_inflate_of_an_empty_member_is_bounded_too() -> None:
    # zlib reads max_length 0 as "no limit": an empty member must not be
    # inflated with it
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    stream = packer.compress(bytes(1 << 20)) + packer.flush()
    entry = Entry("arrays/a.npy", 8, 0, len(stream), 0, 0)
    with pytest.raises(BundleError, match="inflates to 1 bytes"):
        inflate(stream, entry, None)


def test_inflate_refuses_a_lying_manifest_size() -> None:
    # announce a shorter manifest in both headers: the stream runs longer
    offset = central_offsets(VALID)[0]
    data = patched(VALID, offset + 24, "<I", 10)
    data = patched(data, 22, "<I", 10)
    error = refusal(data)
    assert error.member == "manifest.json"
    assert "inflates to 11 bytes, central directory says 10" in str(error)


def test_inflate_refuses_a_stored_member_with_a_bad_crc() -> None:
    data = bytearray(rezip(members_of(VALID), method=zipfile.ZIP_STORED))
    data[200] ^= 0xFF  # inside the manifest's text
    error = refusal(bytes(data))
    assert error.member == "manifest.json"
    assert "CRC-32 mismatch" in str(error)


def test_read_entries_reports_the_members_in_file_order() -> None:
    entries = read_entries(VALID, Limits(), None)
    assert [e.name for e in entries] == list(members_of(VALID))
    assert all(e.method == 8 for e in entries)
