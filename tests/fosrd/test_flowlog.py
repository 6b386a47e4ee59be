"""Tests of fosrd.flowlog: rows read back, appending, rotation, bad rows."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from ring_builders import T0_NS, split_chunk, udp_chunk

from fosr.errors import ConfigError
from fosr.flows import FLOW_COLUMNS, FlowTable, read_flow_records
from fosrd.flowlog import FlowLog, render_flows
from fosrd.outputs import Chunk


def assert_same_flows(got: FlowTable, expected: FlowTable) -> None:
    assert len(got) == len(expected)
    for name in FLOW_COLUMNS:
        left, right = getattr(got, name), getattr(expected, name)
        if name in ("start", "duration"):
            np.testing.assert_allclose(left, right, atol=1e-6, rtol=0)
        else:
            assert list(left) == list(right), name


def test_flow_log_csv_reads_back_as_the_chunk_flows(tmp_path: Path) -> None:
    chunk = udp_chunk(50)
    log = FlowLog("f", tmp_path / "flows.csv")
    for part in split_chunk(chunk, 5):
        log.emit(part)
        # flushed after each emit: the rows so far read back at once
        assert len(read_flow_records(tmp_path / "flows.csv")) == log.stats.flows
    log.close()
    assert_same_flows(read_flow_records(tmp_path / "flows.csv"), chunk.flows)
    assert log.stats.flows == 50 and log.stats.errors == {}
    mode = stat.S_IMODE((tmp_path / "flows.csv").stat().st_mode)
    assert mode == 0o640


def test_flow_log_jsonl_rows(tmp_path: Path) -> None:
    chunk = udp_chunk(4)
    log = FlowLog("f", tmp_path / "flows.jsonl", format="jsonl")
    log.emit(chunk)
    log.close()
    text = (tmp_path / "flows.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert [list(row) for row in rows] == [list(FLOW_COLUMNS)] * 4
    assert rows[1] == {
        "start": "2023-11-14T22:13:20.010000Z",
        "duration": 0.0025,
        "proto": "UDP",
        "client": "10.0.0.2",
        "client_port": 20001,
        "server": "10.1.0.1",
        "server_port": 53,
        "fwd_packets": 1,
        "fwd_bytes": 100,
        "bwd_packets": 1,
        "bwd_bytes": 100,
        "tcp_flags": "......",
        "state": "SF",
    }


def test_flow_log_appends_and_cuts_a_torn_row(tmp_path: Path) -> None:
    path = tmp_path / "flows.csv"
    first, second = split_chunk(udp_chunk(20), 2)
    log = FlowLog("f", path)
    log.emit(first)
    log.close()
    with path.open("a") as stream:  # half a row, as after SIGKILL
        stream.write("2023-11-14T22:13:20.5")

    again = FlowLog("f", path)
    again.emit(second)
    again.close()
    text = path.read_text()
    assert text.count("start,duration") == 1
    assert_same_flows(read_flow_records(path), udp_chunk(20).flows)


def test_flow_log_rotates_by_size_and_keeps_max_files(tmp_path: Path) -> None:
    chunk = udp_chunk(100)
    log = FlowLog(
        "f",
        tmp_path / "flows.csv",
        max_file_bytes=2000,
        max_files=3,
        utc_names=True,
    )
    for part in split_chunk(chunk, 10):
        log.emit(part)
    rotated = log.rotate()
    log.close()
    files = sorted(tmp_path.glob("flows_*.csv"))
    assert len(files) == 3 and rotated == str(files[-1])
    assert all(p.stat().st_size <= 2000 for p in files)
    assert files[0].name.startswith("flows_0") and files[0].name.endswith(".csv")
    tables = [read_flow_records(p) for p in files]
    # the kept files hold the last flows, in order
    kept = sum(map(len, tables))
    tail = chunk.flows.take(np.arange(100 - kept, 100))
    assert_same_flows(FlowTable.concat(tables), tail)
    assert log.stats.flows == 100

    # a torn last row, as after SIGKILL, is cut off by the next run
    with files[-1].open("a") as stream:
        stream.write("2023-11-14T22:13:2")
    again = FlowLog("f", tmp_path / "flows.csv", max_file_bytes=2000, max_files=3)
    again.close()
    assert_same_flows(read_flow_records(files[-1]), tables[-1])
    assert again.stats.files == 3


def test_flow_log_counts_bad_rows_without_raising(tmp_path: Path) -> None:
    chunk = udp_chunk(3)
    columns = chunk.flows.columns()
    columns["start"] = np.array([np.nan, 1.0, 2.0])
    log = FlowLog("f", tmp_path / "flows.csv")
    log.emit(Chunk(chunk.frames, FlowTable.from_columns(columns), chunk.end_ns))
    log.emit(chunk)
    log.close()
    assert log.stats.errors == {"invalid_flow": 1} and log.stats.flows == 3


def test_flow_log_recreates_a_removed_folder(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    log = FlowLog("f", folder / "flows.csv")
    log.emit(udp_chunk(2))
    shutil.rmtree(folder)
    log.emit(udp_chunk(3, start_ns=T0_NS + 10**9))
    log.close()
    assert log.stats.errors == {"directory_recreated": 1}
    assert len(read_flow_records(folder / "flows.csv")) == 3


def test_render_flows_row_ends() -> None:
    data, ends = render_flows(udp_chunk(3).flows, "csv")
    assert ends[-1] == len(data) and len(ends) == 3
    assert data.count(b"\n") == 3


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"max_file_bytes": -1}, "max_file_bytes"),
        ({"max_files": 0}, "max_files"),
    ],
)
def test_flow_log_rejects_bad_settings(
    tmp_path: Path, settings: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        FlowLog("f", tmp_path / "flows.csv", **settings)  # type: ignore[arg-type]


def test_flow_log_follows_a_file_moved_away(tmp_path: Path) -> None:
    # what logrotate does: rename the file, expect a new one under the name
    path = tmp_path / "flows.csv"
    log = FlowLog("f", path)
    log.emit(udp_chunk(2))
    path.rename(tmp_path / "flows.csv.1")
    log.emit(udp_chunk(3, start_ns=T0_NS + 10**9))
    log.close()
    assert len(read_flow_records(tmp_path / "flows.csv.1")) == 2
    assert len(read_flow_records(path)) == 3
    assert log.stats.errors == {"file_replaced": 1}
