"""``fosr learn``, ``fosr generate`` and ``fosr model show``."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fosr._cli_model import parse_duration
from fosr.bundle import read_bundle, write_bundle
from fosr.cli import main
from fosr.flowmodel.store import PART
from fosr.flows import FlowTable, read_flow_records
from fosr.samples import build_lab_capture
from tests.fosr.test_cli import run_fosr

START = "2026-01-01T00:00:00Z"
START_S = 1_767_225_600.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    build_lab_capture(folder / "lab.pcap", seed=3, sessions=40)
    return folder


@pytest.fixture(scope="module")
def model(lab: Path) -> Path:
    path = lab / "lab.fosr"
    assert main(["learn", str(lab / "lab.pcap"), "-o", str(path), "-q"]) == 0
    return path


def generate(model: Path, out: Path, *options: str) -> list[str]:
    """Generate an hour of flows into ``out``; return its lines."""
    args = ["generate", str(model), "--duration", "1h", "--flows", str(out)]
    assert main([*args, "--start", START, "-q", *options]) == 0
    return out.read_text().splitlines()


def test_learn_prints_a_summary(lab: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.fosr"
    result = run_fosr("learn", str(lab / "lab.pcap"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "iteration 1" in result.stderr
    assert "patterns from 71 flows" in result.stderr
    assert "for the empty model" in result.stderr
    bundle = read_bundle(out)
    assert bundle.provenance.command[:2] == ("fosr", "learn")
    assert bundle.provenance.data[0].path.endswith("lab.pcap")


def test_learn_from_a_flow_record_file(lab: Path, tmp_path: Path) -> None:
    flows = tmp_path / "flows.csv"
    assert main(["flows", str(lab / "lab.pcap"), "-o", str(flows), "-q"]) == 0
    model = tmp_path / "m.fosr"
    assert main(["learn", str(flows), "-o", str(model), "-q"]) == 0
    lines = generate(model, tmp_path / "out.csv")
    assert len(lines) > 100


def test_generate_writes_flows_that_read_back(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    generate(model, out)
    flows = read_flow_records(out)
    assert len(flows) > 100
    assert flows.start.min() >= START_S and flows.start.max() < START_S + 3600
    assert np.all(np.diff(flows.start) >= 0)
    # the lab's DNS-then-HTTPS habit survives
    assert {53, 443} <= set(flows.server_port.tolist())


def test_generate_starts_at_the_training_origin_by_default(
    model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    args = ["generate", str(model), "--duration", "15m", "--flows", str(out)]
    assert main([*args, "-q"]) == 0
    flows = read_flow_records(out)
    assert len(flows) and flows.start.min() >= START_S


def test_same_seed_gives_the_same_file(model: Path, tmp_path: Path) -> None:
    a = generate(model, tmp_path / "a.csv", "--seed", "5")
    b = generate(model, tmp_path / "b.csv", "--seed", "5")
    c = generate(model, tmp_path / "c.csv", "--seed", "6")
    assert a == b
    assert a != c


def test_shards_together_give_the_whole_stream(model: Path, tmp_path: Path) -> None:
    whole = generate(model, tmp_path / "all.csv")
    first = generate(model, tmp_path / "s0.csv", "--shard", "0/2")
    second = generate(model, tmp_path / "s1.csv", "--shard", "1/2")
    assert first[0] == second[0] == whole[0]
    assert first[1:] and second[1:]
    assert Counter(first[1:]) + Counter(second[1:]) == Counter(whole[1:])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("1h", 3600.0), ("2d", 172_800.0), ("30", 30.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1w", "-1h", "soon"])
def test_bad_duration_is_a_usage_error(model: Path, text: str) -> None:
    result = run_fosr("generate", str(model), "--duration", text, "--flows", "-")
    assert result.returncode == 2
    assert "duration" in result.stderr


def test_generate_capture_is_read_back_as_its_ground_truth(
    model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.pcap"
    result = run_fosr("generate", str(model), "--duration", "1h", "-o", str(out))
    assert result.returncode == 0, result.stderr
    truth = read_flow_records(tmp_path / "out.flows.csv")
    assert len(truth) > 50
    info = subprocess.run(
        ["capinfos", "-c", "-M", str(out)], capture_output=True, text=True
    )
    assert info.returncode == 0, info.stderr
    count = int(info.stdout.strip().splitlines()[-1].split()[-1])
    assert count == int(truth.fwd_packets.sum() + truth.bwd_packets.sum())

    # fosr flows recovers the same connections, packets and bytes
    flows = tmp_path / "recovered.csv"
    assert main(["flows", str(out), "-o", str(flows), "-q"]) == 0
    recovered = read_flow_records(flows)

    def keys(t: FlowTable) -> Counter[tuple[object, ...]]:
        return Counter(
            zip(
                t.client.tolist(),
                t.client_port.tolist(),
                t.server.tolist(),
                t.server_port.tolist(),
                t.fwd_packets.tolist(),
                t.bwd_packets.tolist(),
                t.fwd_bytes.tolist(),
                t.bwd_bytes.tolist(),
                strict=True,
            )
        )

    same = sum((keys(truth) & keys(recovered)).values())
    assert same >= 0.98 * len(truth)


def test_model_show_describes_patterns_chart_and_provenance(model: Path) -> None:
    result = run_fosr("model", "show", str(model))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "a client asks DNS (UDP/53 to 10.20.0.1)" in text
    assert "then within" in text and "the same client" in text
    assert text.count("█") >= 24
    assert "busiest hour" in text and "extrapolated" in text
    assert "command: fosr learn" in text and "sha256" in text


@pytest.mark.parametrize(
    "command",
    [["model", "show"], ["generate"]],
    ids=["show", "generate"],
)
def test_damaged_bundle_is_refused_in_one_line(
    model: Path, tmp_path: Path, command: list[str]
) -> None:
    broken = tmp_path / "broken.fosr"
    broken.write_bytes(model.read_bytes()[:-100])
    options = ["--duration", "1h", "--flows", "-"] if command == ["generate"] else []
    result = run_fosr(*command, str(broken), *options)
    assert result.returncode == 2
    assert str(broken) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_bad_field_is_refused_naming_it(model: Path, tmp_path: Path) -> None:
    bundle = read_bundle(model)
    document = json.loads(json.dumps(bundle.document(PART)))
    document["patterns"][0]["rows"][0][0]["code"] = 1000
    damaged = tmp_path / "damaged.fosr"
    arrays = {name: bundle.array(name) for name in bundle.array_names}
    write_bundle(
        damaged,
        documents={PART: document},
        arrays=arrays,
        provenance=bundle.provenance,
    )
    result = run_fosr("model", "show", str(damaged))
    assert result.returncode == 2
    assert "patterns[0].rows[0][0].code" in result.stderr
    assert "1000" in result.stderr and "Traceback" not in result.stderr


def test_learn_refuses_too_few_flows(tmp_path: Path) -> None:
    capture = tmp_path / "tiny.pcap"
    build_lab_capture(capture, seed=1, sessions=2)
    result = run_fosr("learn", str(capture), "-o", str(tmp_path / "m.fosr"))
    assert result.returncode == 2
    assert "learning needs at least 20" in result.stderr
    assert not (tmp_path / "m.fosr").exists()
