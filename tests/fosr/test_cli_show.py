"""``fosr model show``'s words: patterns, rate chart and provenance."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from fosr._cli_show import describe_model, describe_pattern
from fosr.bundle import Provenance
from fosr.flowmodel.learn import SearchSettings, learn_flow_model
from fosr.flowmodel.store import StoredFlowModel, load_flow_model, save_flow_model
from fosr.flowmodel.timing import fit_timing
from tests.fosr.flowmodel._planted import planted_table


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> StoredFlowModel:
    table = planted_table()
    model = learn_flow_model(table, SearchSettings(max_gap_s=1.0))
    timing = fit_timing(model, table, max_gap_s=1.0)
    path = tmp_path_factory.mktemp("show") / "planted.fosr"
    provenance = Provenance(
        created=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        command=("fosr", "learn", "planted.csv"),
    )
    save_flow_model(path, model, timing, table, provenance)
    return load_flow_model(path)


def test_planted_pattern_reads_as_dns_then_https(stored: StoredFlowModel) -> None:
    sentences = [describe_pattern(stored, i) for i in range(len(stored.usages))]
    # the planted pairs: a DNS query, then TCP/443 from the same client
    # 10-100 ms later (median about 55 ms)
    planted = [s for s in sentences if s.startswith("a client asks DNS")]
    assert planted, sentences
    match = re.fullmatch(
        r"a client asks DNS \(UDP/53 to 10\.0\.0\.25\), then within (\d+) ms "
        r"the same client opens HTTPS \(TCP/443\)",
        planted[0],
    )
    assert match, planted[0]
    assert 10 <= int(match[1]) <= 100


def test_model_text_ranks_by_usage_and_shows_provenance(
    stored: StoredFlowModel,
) -> None:
    text = describe_model(stored)
    usages = [
        int(line.split()[0].replace(",", ""))
        for line in text.splitlines()
        if line.startswith("    ") and "  a client" in line
    ]
    assert usages == sorted(usages, reverse=True)
    assert (
        len([line for line in text.splitlines() if re.match(r"  \d\dh ", line)]) == 24
    )
    assert "learnt: 2026-01-02 03:04:05 UTC" in text
    assert "command: fosr learn planted.csv" in text
    assert "data: (not recorded)" in text
