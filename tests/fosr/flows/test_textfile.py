"""Opening record files as text, and the read report."""

from __future__ import annotations

import gc
import gzip
import io
from pathlib import Path

import pytest

from fosr.errors import InputError, RecordError
from fosr.flows._textfile import (
    ReadReport,
    open_text,
    paused_gc,
    read_first_line,
    source_name,
)


def test_report_keeps_ten_examples() -> None:
    report = ReadReport(path="f.csv", format="nfdump", records=5)
    report.add_skipped([RecordError("bad", line=n) for n in range(25)])
    assert report.skipped == 25 and len(report.errors) == 10
    assert report.summary().startswith(
        "f.csv: read 5 nfdump records; skipped 25 malformed rows (first: line 0"
    )


def test_open_text_gunzips_and_leaves_file_objects_open() -> None:
    raw = io.BytesIO(gzip.compress(b"\xef\xbb\xbfhello\n"))
    with open_text(raw) as (stream, name):
        assert stream.read() == "hello\n"
        assert name is None
    assert not raw.closed


def test_open_text_translates_decoding_errors() -> None:
    with (
        pytest.raises(InputError, match="not UTF-8"),
        open_text(io.BytesIO(b"ok\n\xff\n")) as (stream, _),
    ):
        stream.read()


def test_paused_gc_restores_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_read_first_line_skips_blank_lines() -> None:
    with open_text(io.BytesIO(b"\n \r\nfirst\r\nsecond\n")) as (stream, _):
        assert read_first_line(stream, None) == ("first", 3)
        assert next(stream) == "second\n"


def test_open_text_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    with pytest.raises(InputError, match="cannot open") as caught:
        with open_text(path):
            pass
    assert caught.value.path == str(path)
    assert source_name(path) == str(path)
