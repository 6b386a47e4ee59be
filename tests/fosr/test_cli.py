"""The ``fosr`` command line: exit codes, messages, outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fosr.cli import main
from fosr.flows.readers import read_flows_csv
from fosr.samples import build_lab_capture


@pytest.fixture(scope="module")
def lab_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab.pcap"
    build_lab_capture(path, seed=3, sessions=25)
    return path


def run_fosr(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed command as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "fosr.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_flows_writes_records_that_read_back(lab_capture: Path, tmp_path: Path) -> None:
    out = tmp_path / "flows.csv"
    assert main(["flows", str(lab_capture), "-o", str(out), "--quiet"]) == 0
    flows = read_flows_csv(out)
    assert len(flows) > 25
    assert set(flows.state.tolist()) >= {"SF", "REJ"}
    # every DNS flow is one query and one answer
    dns = flows.server_port == 53
    assert dns.any()
    assert set(flows.fwd_packets[dns].tolist()) == {1}
    assert set(flows.bwd_packets[dns].tolist()) == {1}


def test_flows_summary_and_quiet(lab_capture: Path, tmp_path: Path) -> None:
    loud = run_fosr("flows", str(lab_capture), "-o", str(tmp_path / "a.csv"))
    assert loud.returncode == 0
    assert "connections" in loud.stderr and "wrote" in loud.stderr
    quiet = run_fosr("flows", str(lab_capture), "-o", str(tmp_path / "b.csv"), "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_flows_to_standard_output(lab_capture: Path) -> None:
    result = run_fosr("flows", str(lab_capture), "-q")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].startswith("start,duration,proto,client")


def test_corrupt_capture_is_one_line_and_exit_2(
    lab_capture: Path, tmp_path: Path
) -> None:
    data = bytearray(lab_capture.read_bytes())
    # the first record's captured length (bytes 8..12 of its header)
    data[24 + 8 : 24 + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    out = tmp_path / "flows.csv"
    out.write_text("earlier results\n")
    result = run_fosr("flows", str(bad), "-o", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and "offset 24" in lines[0]
    assert "Traceback" not in result.stderr
    # the earlier output is untouched
    assert out.read_text() == "earlier results\n"


def test_skip_bad_skips_corrupt_captures(lab_capture: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\xff" * 40)
    out = tmp_path / "flows.csv"
    result = run_fosr("flows", str(bad), str(lab_capture), "-o", str(out), "--skip-bad")
    assert result.returncode == 0, result.stderr
    assert "bad.pcap" in result.stderr
    assert len(read_flows_csv(out)) > 25


def test_truncated_capture_warns_once_and_keeps_packets(
    lab_capture: Path, tmp_path: Path
) -> None:
    data = lab_capture.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    result = run_fosr("flows", str(cut), "-o", str(tmp_path / "f.csv"))
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(cut) in warnings[0] and "offset" in warnings[0]
    assert len(read_flows_csv(tmp_path / "f.csv")) > 5


def test_unknown_file_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    result = run_fosr("flows", str(junk))
    assert result.returncode == 2
    assert str(junk) in result.stderr and "Traceback" not in result.stderr


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    result = run_fosr("flows", str(tmp_path / "absent.pcap"))
    assert result.returncode == 2
    assert "absent.pcap" in result.stderr and "Traceback" not in result.stderr


def test_unwritable_output_is_exit_3(lab_capture: Path, tmp_path: Path) -> None:
    result = run_fosr(
        "flows", str(lab_capture), "-o", str(tmp_path / "no" / "such" / "dir" / "f.csv")
    )
    assert result.returncode == 3
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def test_bad_option_value_is_usage_error(lab_capture: Path) -> None:
    result = run_fosr("flows", str(lab_capture), "--idle-timeout", "soon")
    assert result.returncode == 2
    assert "soon" in result.stderr


NFDUMP_HEADER = (
    "Date first seen,Duration,Proto,Src IP Addr,Src Pt,Dst IP Addr,Dst Pt,"
    "Packets,Bytes,Flows,Flags\n"
)
NFDUMP_ROW = (
    "2017-04-05 00:02:{s}.321,0.003,TCP,192.168.220.16,43771,10.0.0.5,445,"
    "{p},174,1,.AP...\n"
)


def test_malformed_record_names_line_and_column(tmp_path: Path) -> None:
    records = tmp_path / "records.csv"
    records.write_text(
        NFDUMP_HEADER + NFDUMP_ROW.format(s=34, p=2) + NFDUMP_ROW.format(s=35, p="two")
    )
    result = run_fosr("flows", str(records))
    assert result.returncode == 2
    assert f"{records}: line 3, column 'Packets'" in result.stderr
    assert "'two'" in result.stderr and "Traceback" not in result.stderr

    out = tmp_path / "flows.csv"
    result = run_fosr("flows", str(records), "--skip-bad", "-o", str(out))
    assert result.returncode == 0
    assert "skipped 1 malformed row" in result.stderr
    assert len(read_flows_csv(out)) == 1


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_evaluate_packets_writes_json_and_html(
    lab_capture: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pcap"
    build_lab_capture(other, seed=9, sessions=20)
    report_json, report_html = tmp_path / "r.json", tmp_path / "r.html"
    result = run_fosr(
        "evaluate",
        "packets",
        str(lab_capture),
        str(other),
        "--json",
        str(report_json),
        "--html",
        str(report_html),
    )
    assert result.returncode == 0, result.stderr
    assert "Distances over all connections" in result.stdout
    document = json.loads(report_json.read_text())
    assert document["kind"] == "packets"
    page = report_html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page


def test_evaluate_flows_ranks_candidates(lab_capture: Path, tmp_path: Path) -> None:
    def flows_of(seed: int) -> Path:
        capture = tmp_path / f"lab{seed}.pcap"
        build_lab_capture(capture, seed=seed, sessions=60)
        out = tmp_path / f"flows{seed}.csv"
        assert main(["flows", str(capture), "-o", str(out), "-q"]) == 0
        return out

    train, real, synthetic = flows_of(11), flows_of(12), flows_of(13)
    report_json = tmp_path / "r.json"
    result = run_fosr(
        "evaluate",
        "flows",
        str(real),
        str(synthetic),
        "--train",
        str(train),
        "--repetitions",
        "2",
        "--sample-size",
        "200",
        "--json",
        str(report_json),
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(report_json.read_text())
    assert document["kind"] == "flows"
    assert "reference" in result.stdout.lower()


def test_evaluate_flows_empty_input_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = run_fosr("evaluate", "flows", str(empty), str(empty))
    assert result.returncode == 2
    assert "empty.csv" in result.stderr and "Traceback" not in result.stderr
