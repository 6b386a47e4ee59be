"""Reading Zeek conn.log, TSV and JSON lines."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from fosr.errors import InputError, RecordError
from fosr.flows import _parse, zeek
from fosr.flows.readers import ReadReport, read_zeek_conn
from fosr.flows.table import format_tcp_flags

FIELDS = (
    "ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto service duration "
    "orig_bytes resp_bytes conn_state local_orig local_resp missed_bytes history "
    "orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents"
).split()
HEADER = [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tconn",
    "#open\t2020-06-05-14-39-59",
    "#fields\t" + "\t".join(FIELDS),
    "#types\t" + "\t".join(["x"] * len(FIELDS)),
]
ROWS = [
    "1591367999.305988\tC1\t192.168.4.76\t36844\t192.168.4.1\t53\tudp\tdns\t"
    "0.066851\t62\t141\tSF\t-\t-\t0\tDd\t2\t118\t2\t197\t-",
    "1591368000.000001\tC2\t192.168.4.76\t46378\t31.3.245.133\t80\ttcp\thttp\t"
    "0.254\t77\t295\tSF\t-\t-\t0\tShADadFf\t6\t397\t4\t511\t-",
    "1591368001.5\tC3\t192.168.4.76\t40000\t192.168.4.1\t22\ttcp\t-\t"
    "-\t-\t-\tREJ\t-\t-\t0\tSr\t1\t60\t1\t40\t-",
    "1591368002.25\tC4\tfe80::1\t128\tfe80::2\t0\ticmp\t-\t"
    "1.0\t16\t16\tOTH\t-\t-\t0\t-\t2\t208\t2\t208\t-",
]
TRAILER = ["#close\t2020-06-05-14-40-00"]


def tsv(rows: list[str] = ROWS, header: list[str] = HEADER) -> str:
    return "\n".join(header + rows + TRAILER) + "\n"


def as_json(rows: list[str] = ROWS) -> str:
    lines = []
    for row in rows:
        record = {}
        for name, value in zip(FIELDS, row.split("\t"), strict=True):
            if value != "-":
                record[name] = float(value) if name == "ts" else value
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "conn.log") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_read_zeek_conn_tsv(tmp_path: Path) -> None:
    flows = read_zeek_conn(write(tmp_path, tsv()))
    assert len(flows) == 4
    assert flows.start[0] == 1591367999.305988
    assert flows.client.tolist()[:2] == ["192.168.4.76", "192.168.4.76"]
    assert flows.server_port.tolist() == [53, 80, 22, 0]
    assert flows.proto.tolist() == [17, 6, 6, 58]
    # IP bytes, not payload bytes
    assert flows.fwd_bytes.tolist() == [118, 397, 60, 208]
    assert flows.bwd_bytes.tolist() == [197, 511, 40, 208]
    assert flows.fwd_packets.tolist() == [2, 6, 1, 2]
    assert flows.duration.tolist() == [0.066851, 0.254, 0.0, 1.0]
    assert flows.state.tolist() == ["SF", "SF", "REJ", "OTH"]


def test_read_zeek_conn_maps_history_to_flags(tmp_path: Path) -> None:
    flows = read_zeek_conn(write(tmp_path, tsv()))
    flags = [format_tcp_flags(int(bits)) for bits in flows.tcp_flags]
    # UDP and ICMP carry no TCP flags whatever their history
    assert flags == ["......", ".AP.SF", "...RS.", "......"]


def test_read_zeek_conn_icmp_type_and_code(tmp_path: Path) -> None:
    flows = read_zeek_conn(write(tmp_path, tsv()))
    assert (flows.client_port[3], flows.server_port[3]) == (128, 0)


def test_read_zeek_conn_json_matches_tsv(tmp_path: Path) -> None:
    from_tsv = read_zeek_conn(write(tmp_path, tsv()))
    from_json = read_zeek_conn(write(tmp_path, as_json(), "conn.json.gz"))
    for name, column in from_tsv.columns().items():
        assert from_json.columns()[name].tolist() == column.tolist(), name


def test_read_zeek_conn_json_with_iso_times(tmp_path: Path) -> None:
    line = json.dumps(
        {
            "ts": "2020-06-05T14:39:59.305988Z",
            "id.orig_h": "a",
            "id.orig_p": 1,
            "id.resp_h": "b",
            "id.resp_p": 2,
            "proto": "udp",
        }
    )
    flows = read_zeek_conn(write(tmp_path, line + "\n"))
    assert flows.start[0] == pytest.approx(1591367999.305988)
    assert flows.state.tolist() == [""]


def test_read_zeek_conn_falls_back_to_payload_bytes(tmp_path: Path) -> None:
    kept = [i for i, name in enumerate(FIELDS) if not name.endswith("ip_bytes")]
    header = HEADER[:6] + ["#fields\t" + "\t".join(FIELDS[i] for i in kept)]
    rows = ["\t".join(row.split("\t")[i] for i in kept) for row in ROWS]
    flows = read_zeek_conn(write(tmp_path, tsv(rows, header)))
    assert flows.fwd_bytes.tolist() == [62, 77, 0, 16]


def test_read_zeek_conn_follows_a_second_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zeek, "BLOCK_LINES", 1)
    monkeypatch.setattr(_parse, "BLOCK_LINES", 1)
    text = tsv(ROWS[:2]) + tsv(ROWS[2:])
    assert len(read_zeek_conn(write(tmp_path, text))) == 4


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (ROWS[0].replace("\t36844\t", "\thttp\t"), "id.orig_p"),
        (ROWS[0].replace("1591367999.305988", "noon"), "ts"),
        (ROWS[0].replace("\tudp\t", "\tsctp\t"), "proto"),
        (ROWS[0].replace("\t118\t", "\t-5\t"), "orig_ip_bytes"),
        (ROWS[0].rsplit("\t", 3)[0], "resp_pkts"),
    ],
)
def test_read_zeek_conn_tsv_names_line_and_column(
    tmp_path: Path, row: str, column: str
) -> None:
    path = write(tmp_path, tsv([ROWS[1], row]))
    with pytest.raises(RecordError) as caught:
        read_zeek_conn(path)
    assert (caught.value.line, caught.value.column) == (10, column)


def test_read_zeek_conn_json_names_line_and_field(tmp_path: Path) -> None:
    lines = as_json().splitlines()
    record = json.loads(lines[1])
    del record["id.resp_h"]
    text = "\n".join([lines[0], json.dumps(record), "{not json", *lines[2:]]) + "\n"
    path = write(tmp_path, text)
    with pytest.raises(RecordError) as caught:
        read_zeek_conn(path)
    assert (caught.value.line, caught.value.column) == (2, "id.resp_h")
    report = ReadReport()
    flows = read_zeek_conn(path, skip_bad=True, report=report)
    assert len(flows) == 3 and report.skipped == 2
    assert "not JSON" in str(report.errors[1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n".join(HEADER) + "\n", "no records"),
        ("hello\n", "not a Zeek log"),
        (tsv(header=HEADER[:4] + ["#path\tdns"] + HEADER[5:]), "'dns' log"),
        (tsv(header=["#fields\tts\tuid"]), "no field 'id.orig_h'"),
        ("#separator \\x09\n" + ROWS[0] + "\n", "before the #fields"),
    ],
)
def test_read_zeek_conn_rejects_bad_logs(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        read_zeek_conn(write(tmp_path, text))
