"""Reading nfdump / CIDDS-001 and UGR'16 records, and any format by sniffing."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fosr.errors import InputError, RecordError
from fosr.flows import _parse
from fosr.flows.oneway import OneWayTable
from fosr.flows.pairing import pair_oneway
from fosr.flows.readers import (
    ReadReport,
    read_flow_records,
    read_nfdump_csv,
    read_ugr16_csv,
    sniff_format,
    write_flows_csv,
)
from fosr.flows.table import FlowTable

NFDUMP_HEADER = (
    "Date first seen,Duration,Proto,Src IP Addr,Src Pt,Dst IP Addr,Dst Pt,"
    "Packets,Bytes,Flows,Flags,Tos,class\n"
)
NFDUMP_ROWS = [
    "2017-04-05 00:02:34.321,0.003,TCP,192.168.220.16,43771,192.168.100.5,445,"
    "2,174,1,.AP.S.,0,normal\n",
    "2017-04-05 00:02:34.322,0.002,TCP  ,192.168.100.5,445,192.168.220.16,43771,"
    "2,1.2 M,1,.AP...,0,normal\n",
    "2017-04-05 00:03:00.000,0.0,ICMP,192.168.220.16,0,DNS,3.1,1,56,1,......,0,"
    "attacker\n",
    "2017-04-05 00:04:00.5,0.0,UDP,192.168.220.16,5353,10008_251,5353.0,1,147,1,"
    "......,32,normal\n",
]
NFDUMP = NFDUMP_HEADER + "".join(NFDUMP_ROWS)

UGR16_HEADER = "te,td,sa,da,sp,dp,pr,flg,fwd,stos,pkt,byt,lable\n"
UGR16_ROWS = [
    "2016-04-11 08:00:01,0.176,158.128.203.66,42.219.158.205,36334,80,TCP,"
    ".AP.SF,0,0,6,1770,background\n",
    "2016-04-11 08:00:01,0.170,42.219.158.205,158.128.203.66,80,36334,TCP,"
    ".AP.SF,0,0,5,4000,background\n",
    "2016-04-11 08:00:02,0.000,42.219.157.7,131.59.212.210,0,2048,ICMP,"
    ".A....,0,0,1,84,background\n",
    "2016-04-11 08:00:03,0.000,42.219.157.7,131.59.212.210,0,771,ICMP,"
    ".A....,0,0,1,56,blacklist\n",
]
UGR16 = UGR16_HEADER + "".join(UGR16_ROWS)


def write(tmp_path: Path, text: str, name: str = "records.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# nfdump / CIDDS-001


def test_read_nfdump_csv_columns(tmp_path: Path) -> None:
    table = read_nfdump_csv(write(tmp_path, NFDUMP))
    assert len(table) == 4
    assert table.start[0] == pytest.approx(unix("2017-04-05 00:02:34.321"), abs=1e-6)
    assert table.duration.tolist() == [0.003, 0.002, 0.0, 0.0]
    assert table.proto.tolist() == [6, 6, 1, 17]
    assert table.src.tolist()[:2] == ["192.168.220.16", "192.168.100.5"]
    assert table.dst[2] == "DNS"
    assert table.bytes.tolist() == [174, 1_200_000, 56, 147]
    assert table.packets.tolist() == [2, 2, 1, 1]
    assert table.tcp_flags[0] == 0x1A
    assert table.tos.tolist() == [0, 0, 0, 32]


def test_read_nfdump_csv_decodes_icmp_type_and_code(tmp_path: Path) -> None:
    table = read_nfdump_csv(write(tmp_path, NFDUMP))
    assert (table.src_port[2], table.dst_port[2]) == (3, 1)
    # a float-formatted port, as the original CIDDS-001 files write them
    assert (table.src_port[3], table.dst_port[3]) == (5353, 5353)


@pytest.mark.parametrize(
    ("written", "type_code"),
    [("3.1", (3, 1)), ("8.0", (8, 0)), ("771", (3, 3)), ("3", (3, 0)), ("0", (0, 0))],
)
def test_read_nfdump_csv_icmp_forms(
    tmp_path: Path, written: str, type_code: tuple[int, int]
) -> None:
    row = f"2017-04-05 00:03:00.000,0.0,ICMP,a,0,b,{written},1,56,1,......,0,x\n"
    table = read_nfdump_csv(write(tmp_path, NFDUMP_HEADER + row))
    assert (table.src_port[0], table.dst_port[0]) == type_code


def test_read_nfdump_csv_reads_gzip_and_file_objects(tmp_path: Path) -> None:
    plain = read_nfdump_csv(write(tmp_path, NFDUMP))
    zipped = read_nfdump_csv(write(tmp_path, NFDUMP, "records.csv.gz"))
    from_bytes = read_nfdump_csv(io.BytesIO(gzip.compress(NFDUMP.encode())))
    for other in (zipped, from_bytes):
        for name, column in plain.columns().items():
            assert other.columns()[name].tolist() == column.tolist(), name


def test_read_nfdump_csv_tolerates_crlf_blank_lines_and_quotes(tmp_path: Path) -> None:
    text = NFDUMP_HEADER + "\n" + NFDUMP_ROWS[0].replace("TCP", '"TCP"') + "\n"
    text += "".join(NFDUMP_ROWS[1:])
    table = read_nfdump_csv(write(tmp_path, text.replace("\n", "\r\n")))
    assert table.proto.tolist() == [6, 6, 1, 17]


def test_read_nfdump_csv_keeps_labels_on_request(tmp_path: Path) -> None:
    report = ReadReport()
    table = read_nfdump_csv(
        write(tmp_path, NFDUMP), keep_labels={"normal"}, report=report
    )
    assert table.proto.tolist() == [6, 6, 17]
    assert (report.records, report.filtered, report.skipped) == (3, 1, 0)
    assert "dropped 1 by label" in report.summary()


def test_read_nfdump_csv_without_label_column_refuses_labels(tmp_path: Path) -> None:
    text = NFDUMP_HEADER.replace(",Tos,class", "") + NFDUMP_ROWS[0].replace(
        ",0,normal", ""
    )
    with pytest.raises(InputError, match="no label column"):
        read_nfdump_csv(write(tmp_path, text), keep_labels={"normal"})


def test_read_nfdump_csv_reads_times_in_a_given_zone(tmp_path: Path) -> None:
    path = write(tmp_path, NFDUMP)
    utc = read_nfdump_csv(path)
    summer = read_nfdump_csv(path, tz=timezone(timedelta(hours=2)))
    assert utc.start[0] - summer.start[0] == pytest.approx(7200.0)


GOOD_FIELDS = "2017-04-05 00:00:00.000,0.1,TCP,a,1,b,80,1,60,1,......,0,n".split(",")
NFDUMP_NAMES = NFDUMP_HEADER.strip().split(",")


def row_with(column: str, value: str) -> str:
    fields = list(GOOD_FIELDS)
    fields[NFDUMP_NAMES.index(column)] = value
    return ",".join(fields)


BAD_ROWS = [
    # (column, row)
    ("Packets", row_with("Packets", "x2")),
    ("Bytes", row_with("Bytes", "1.2 Q")),
    ("Date first seen", row_with("Date first seen", "2017-04-05 25:00:00.000")),
    ("Date first seen", row_with("Date first seen", "yesterday")),
    ("Duration", row_with("Duration", "-1")),
    ("Duration", row_with("Duration", "nan")),
    ("Dst Pt", row_with("Dst Pt", "http")),
    ("Dst Pt", row_with("Dst Pt", "3.1")),  # type.code on TCP
    ("Src Pt", row_with("Src Pt", "70000")),
    ("Proto", row_with("Proto", "FOO")),
    ("Flags", row_with("Flags", ".AX...")),
    ("Flows", ",".join(GOOD_FIELDS[:9])),  # short: the first missing column
    (None, ",".join([*GOOD_FIELDS, "extra"])),  # long
]


@pytest.mark.parametrize(("column", "row"), BAD_ROWS)
def test_read_nfdump_csv_names_line_and_column(
    tmp_path: Path, column: str | None, row: str
) -> None:
    text = NFDUMP_HEADER + NFDUMP_ROWS[0] + row + "\n" + NFDUMP_ROWS[1]
    path = write(tmp_path, text)
    with pytest.raises(RecordError) as caught:
        read_nfdump_csv(path)
    error = caught.value
    assert (error.path, error.line, error.column) == (str(path), 3, column)
    assert str(error).startswith(f"{path}: line 3")


def test_read_nfdump_csv_reports_the_first_bad_row_and_leftmost_column(
    tmp_path: Path,
) -> None:
    rows = [
        NFDUMP_ROWS[0],
        "2017-04-05 00:00:00.000,0.1,TCP,a,1,b,80,x,y,1,......,0,n\n",
        "2017-04-05 00:00:00.000,bad,TCP,a,1,b,80,1,60,1,......,0,n\n",
    ]
    with pytest.raises(RecordError) as caught:
        read_nfdump_csv(write(tmp_path, NFDUMP_HEADER + "".join(rows)))
    assert (caught.value.line, caught.value.column) == (3, "Packets")
    assert "'x'" in str(caught.value)


def test_read_nfdump_csv_skips_and_counts_bad_rows(tmp_path: Path) -> None:
    rows = [BAD_ROWS[0][1] + "\n", NFDUMP_ROWS[0], "\n", BAD_ROWS[-2][1] + "\n"]
    report = ReadReport()
    table = read_nfdump_csv(
        write(tmp_path, NFDUMP_HEADER + "".join(rows)), skip_bad=True, report=report
    )
    assert len(table) == 1 and report.records == 1
    assert report.skipped == 2
    assert [e.line for e in report.errors] == [2, 5]
    assert "skipped 2 malformed rows" in report.summary()


def test_read_nfdump_csv_line_numbers_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_parse, "BLOCK_LINES", 2)
    rows = NFDUMP_ROWS * 3 + ["\n", BAD_ROWS[0][1] + "\n"] + NFDUMP_ROWS
    path = write(tmp_path, NFDUMP_HEADER + "".join(rows))
    with pytest.raises(RecordError) as caught:
        read_nfdump_csv(path)
    assert caught.value.line == 15
    assert len(read_nfdump_csv(path, skip_bad=True)) == 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        (NFDUMP_HEADER, "no records after the header"),
        ("a,b,c\n1,2,3\n", "no column 'Date first seen'"),
        (NFDUMP_HEADER.replace("Bytes,", ""), "no column 'Bytes'"),
        (NFDUMP_HEADER.replace("Flows", "Bytes"), "appears twice"),
    ],
)
def test_read_nfdump_csv_rejects_bad_files(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match=message) as caught:
        read_nfdump_csv(path)
    assert str(caught.value).startswith(str(path))


def test_read_nfdump_csv_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        read_nfdump_csv(tmp_path / "missing.csv")


def test_read_nfdump_csv_rejects_binary_and_broken_gzip(tmp_path: Path) -> None:
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\n" * 3)
    with pytest.raises(InputError, match="not UTF-8"):
        read_nfdump_csv(binary)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress((NFDUMP * 50).encode())[:200])
    with pytest.raises(InputError, match="gzip"):
        read_nfdump_csv(cut)


# UGR'16


def test_read_ugr16_csv_starts_at_end_minus_duration(tmp_path: Path) -> None:
    table = read_ugr16_csv(write(tmp_path, UGR16))
    assert len(table) == 4
    assert table.start[0] == pytest.approx(unix("2016-04-11 08:00:01") - 0.176)
    assert table.duration[0] == 0.176
    assert table.tos.tolist() == [0, 0, 0, 0]
    assert table.bytes.tolist() == [1770, 4000, 84, 56]


def test_read_ugr16_csv_decodes_icmp(tmp_path: Path) -> None:
    table = read_ugr16_csv(write(tmp_path, UGR16))
    assert list(zip(table.src_port[2:], table.dst_port[2:], strict=True)) == [
        (8, 0),
        (3, 3),
    ]


def test_read_ugr16_csv_without_header_and_gzipped(tmp_path: Path) -> None:
    with_header = read_ugr16_csv(write(tmp_path, UGR16))
    without = read_ugr16_csv(write(tmp_path, "".join(UGR16_ROWS), "u.csv.gz"))
    for name, column in with_header.columns().items():
        assert without.columns()[name].tolist() == column.tolist(), name


def test_read_ugr16_csv_headerless_error_lines(tmp_path: Path) -> None:
    rows = UGR16_ROWS[:2] + [UGR16_ROWS[2].replace(",1,84,", ",1,x,")]
    with pytest.raises(RecordError) as caught:
        read_ugr16_csv(write(tmp_path, "".join(rows)))
    assert (caught.value.line, caught.value.column) == (3, "byt")


def test_read_ugr16_csv_keeps_labels(tmp_path: Path) -> None:
    text = UGR16.replace("lable", "label")
    table = read_ugr16_csv(write(tmp_path, text), keep_labels={"background"})
    assert len(table) == 3


def test_read_ugr16_csv_rejects_an_unknown_first_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a UGR'16 header"):
        read_ugr16_csv(write(tmp_path, "time,duration\n1,2\n"))


# sniffing and read_flow_records


def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.csv"
    write_flows_csv(
        FlowTable.from_columns(
            {
                "start": [1.5],
                "duration": [0.25],
                "proto": [6],
                "client": ["a"],
                "client_port": [40000],
                "server": ["b"],
                "server_port": [80],
                "fwd_packets": [3],
                "fwd_bytes": [180],
                "bwd_packets": [2],
                "bwd_bytes": [120],
                "tcp_flags": [0x1B],
                "state": ["SF"],
            }
        ),
        path,
    )
    return path


ZEEK_JSON = (
    '{"ts":1.5,"id.orig_h":"a","id.orig_p":1,"id.resp_h":"b","id.resp_p":53,'
    '"proto":"udp","conn_state":"SF"}\n'
)


def test_sniff_format_recognises_each_format(tmp_path: Path) -> None:
    assert sniff_format(write(tmp_path, NFDUMP, "n.csv")) == "nfdump"
    assert sniff_format(write(tmp_path, UGR16, "u.csv")) == "ugr16"
    assert sniff_format(write(tmp_path, "".join(UGR16_ROWS), "u.csv.gz")) == "ugr16"
    assert sniff_format(write(tmp_path, ZEEK_JSON, "conn.log")) == "zeek"
    assert sniff_format(write(tmp_path, "#separator \\x09\n", "c.log")) == "zeek"
    assert sniff_format(flows_file(tmp_path)) == "flows"


def test_sniff_format_puts_a_file_object_back() -> None:
    stream = io.BytesIO(b"\n" + NFDUMP.encode())
    assert sniff_format(stream) == "nfdump"
    assert stream.tell() == 0
    assert len(read_flow_records(stream)) == 3


def test_sniff_format_rejects_unknown_files(tmp_path: Path) -> None:
    path = write(tmp_path, "hello,world\n1,2\n")
    with pytest.raises(InputError, match="not a known flow record format") as caught:
        read_flow_records(path)
    assert str(caught.value).startswith(str(path))


def test_read_flow_records_pairs_one_way_formats(tmp_path: Path) -> None:
    flows = read_flow_records(write(tmp_path, NFDUMP))
    assert len(flows) == 3
    tcp = flows.take(flows.proto == 6)
    assert (tcp.client[0], tcp.server_port[0]) == ("192.168.220.16", 445)
    assert (tcp.fwd_bytes[0], tcp.bwd_bytes[0]) == (174, 1_200_000)
    ugr = read_flow_records(write(tmp_path, UGR16, "u.csv"), session_gap_s=0.0)
    assert len(ugr) == 3


def test_read_flow_records_reads_bidirectional_formats(tmp_path: Path) -> None:
    assert read_flow_records(flows_file(tmp_path)).state.tolist() == ["SF"]
    zeek = read_flow_records(write(tmp_path, ZEEK_JSON, "conn.log"))
    assert zeek.server_port.tolist() == [53]


def test_read_flow_records_takes_an_explicit_format(tmp_path: Path) -> None:
    headerless = write(tmp_path, "".join(UGR16_ROWS))
    assert len(read_flow_records(headerless, format="ugr16")) == 3
    with pytest.raises(ValueError, match="unknown format"):
        read_flow_records(headerless, format="netflow9")
    with pytest.raises(InputError, match="carry none"):
        read_flow_records(flows_file(tmp_path), keep_labels={"normal"})


def test_read_flow_records_reports_records_before_pairing(tmp_path: Path) -> None:
    report = ReadReport()
    flows = read_flow_records(write(tmp_path, NFDUMP), report=report)
    assert (report.records, report.format, len(flows)) == (4, "nfdump", 3)


# the shared data sets (../shared/data)

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED.resolve()}")
    return SHARED


def assert_conserved(records: OneWayTable, flows: FlowTable) -> None:
    assert flows.fwd_packets.sum() + flows.bwd_packets.sum() == records.packets.sum()
    assert flows.fwd_bytes.sum() + flows.bwd_bytes.sum() == records.bytes.sum()


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "rows"),
    [("cidds001-wk3/train.csv", 5468), ("iot-sentinel/flows-train.csv", 23861)],
)
def test_read_shared_nfdump_records(shared: Path, name: str, rows: int) -> None:
    report = ReadReport()
    records = read_nfdump_csv(shared / name, report=report)
    assert len(records) == rows and report.skipped == 0
    flows = read_flow_records(shared / name)
    assert 0 < len(flows) < rows
    assert_conserved(records, flows)


@pytest.mark.shared_data
@pytest.mark.slow
def test_read_shared_ugr16_records(shared: Path) -> None:
    path = shared / "ugr16" / "train-0800-1200.csv.gz"
    records = read_ugr16_csv(path, keep_labels={"background"})
    assert len(records) == 433_156
    flows = pair_oneway(records)
    assert 0 < len(flows) < len(records)
    assert_conserved(records, flows)
    assert set(flows.state.tolist()) <= {
        "", "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0",
        "RSTRH", "SH", "SHR", "OTH",
    }  # fmt: skip


def test_read_nfdump_csv_with_every_row_bad_is_empty_when_skipping(
    tmp_path: Path,
) -> None:
    # every value bad: a regression guard against quadratic error marking
    rows = [row_with("Date first seen", f"bad {i}") + "\n" for i in range(3000)]
    report = ReadReport()
    path = write(tmp_path, NFDUMP_HEADER + "".join(rows))
    assert len(read_nfdump_csv(path, skip_bad=True, report=report)) == 0
    assert report.skipped == 3000 and len(report.errors) == 10
