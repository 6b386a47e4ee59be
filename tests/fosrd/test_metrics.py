"""Metrics: names, values read from the outputs at scrape time, the endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
import numpy as np
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fosr.errors import ConfigError
from fosr.flows import FlowTable
from fosrd.metrics import LAG_BUCKETS_S, Metrics, service_counts, start_metrics


def ring_status(packets: int = 10, errors: Mapping[str, int] | None = None) -> dict:
    return {
        "name": "ring",
        "kind": "ring",
        "packets": packets,
        "bytes": 100 * packets,
        "flows": 2,
        "dropped_packets": 1,
        "errors": dict(errors or {"ENOSPC": 3}),
        "files": 4,
        "file_bytes": 4096,
    }


IFACE = {
    "name": "lab",
    "kind": "iface",
    "packets": 7,
    "bytes": 700,
    "flows": 1,
    "dropped_packets": 0,
    "errors": {},
    "files": 0,
    "file_bytes": 0,
}


def test_output_counters_are_read_at_scrape_time() -> None:
    statuses = [ring_status(10), IFACE]
    metrics = Metrics(lambda: statuses)
    value = metrics.registry.get_sample_value

    assert (
        value("fosrd_packets_emitted_total", {"output": "ring", "kind": "ring"}) == 10
    )
    assert value("fosrd_bytes_emitted_total", {"output": "lab", "kind": "iface"}) == 700
    assert value("fosrd_flows_emitted_total", {"output": "ring", "kind": "ring"}) == 2
    assert value("fosrd_dropped_packets_total", {"output": "ring"}) == 1
    assert (
        value("fosrd_output_errors_total", {"output": "ring", "error": "ENOSPC"}) == 3
    )
    assert value("fosrd_ring_files", {"output": "ring"}) == 4
    assert value("fosrd_ring_bytes", {"output": "ring"}) == 4096
    assert value("fosrd_ring_files", {"output": "lab"}) is None  # no files

    # the next scrape sees the counters as they are then
    statuses[0] = ring_status(25, {"ENOSPC": 3, "EIO": 1})
    assert (
        value("fosrd_packets_emitted_total", {"output": "ring", "kind": "ring"}) == 25
    )
    assert value("fosrd_output_errors_total", {"output": "ring", "error": "EIO"}) == 1


def test_a_failing_outputs_source_does_not_break_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> list[dict[str, object]]:
        raise RuntimeError("gone")

    metrics = Metrics(broken)
    body, _ = metrics.render()
    assert b"fosrd_build_info" in body
    assert b"fosrd_packets_emitted_total{" not in body
    assert "cannot read the outputs' counters" in caplog.text


def test_lag_histogram_bins_arrays_with_inclusive_bounds() -> None:
    metrics = Metrics(list)
    metrics.observe_lag(np.array([0.00001, 0.0009, 0.001, 0.0011, 2.0, np.nan, -0.5]))
    metrics.observe_lag([0.05])
    value = metrics.registry.get_sample_value
    bucket = "fosrd_schedule_lag_seconds_bucket"

    assert value(bucket, {"le": "5e-05"}) == 2  # 10 us and the early one (0)
    assert value(bucket, {"le": "0.001"}) == 4  # 1 ms counts in le=0.001
    assert value(bucket, {"le": "0.0025"}) == 5
    assert value(bucket, {"le": "0.05"}) == 6
    assert value(bucket, {"le": "1.0"}) == 6
    assert value(bucket, {"le": "+Inf"}) == 7  # the NaN is not counted
    assert value("fosrd_schedule_lag_seconds_count") == 7
    assert value("fosrd_schedule_lag_seconds_sum") == pytest.approx(
        0.00001 + 0.0009 + 0.001 + 0.0011 + 2.0 + 0.05
    )
    assert LAG_BUCKETS_S[0] == 0.00005 and LAG_BUCKETS_S[-1] == 1.0


def test_scheduler_and_control_values() -> None:
    metrics = Metrics(list, version="9.9")
    value = metrics.registry.get_sample_value

    metrics.set_queue_depth(1234)
    metrics.flows_started({"tcp/443": 3, "udp/53": 0})
    metrics.flows_started({"tcp/443": 2})
    metrics.set_rate(0.5, 60.0)
    metrics.set_model_info({"path": "m.fosr", "sha256": "ab" * 32, "version": 1})
    metrics.reload_result(True, now=1700000000.0)
    metrics.reload_result(False, now=1700000100.0)

    assert value("fosrd_queue_depth_packets") == 1234
    assert value("fosrd_flows_started_total", {"service": "tcp/443"}) == 5
    assert value("fosrd_flows_started_total", {"service": "udp/53"}) is None
    assert value("fosrd_rate_scale") == 0.5
    assert value("fosrd_speed_factor") == 60.0
    assert (
        value(
            "fosrd_model_info", {"path": "m.fosr", "sha256": "ab" * 32, "version": "1"}
        )
        == 1
    )
    assert value("fosrd_build_info", {"version": "9.9"}) == 1
    assert value("fosrd_config_last_reload_successful") == 0
    # the timestamp is of the last success, not of the failure after it
    assert value("fosrd_config_last_reload_success_timestamp_seconds") == 1700000000


def test_released_counts_lags_and_flows_by_service() -> None:
    flows = FlowTable.empty()
    table = {name: getattr(flows, name) for name in flows.columns()}
    n = 4
    for name, column in table.items():
        table[name] = (
            np.resize(column, n) if len(column) else np.zeros(n, dtype=column.dtype)
        )
    table["proto"] = np.array([6, 6, 17, 6], dtype=np.uint8)
    table["server_port"] = np.array([443, 443, 53, 50000], dtype=np.int32)

    class FakeChunk:
        pass

    chunk = FakeChunk()
    chunk.flows = FlowTable(**table)  # type: ignore[attr-defined]
    metrics = Metrics(list)
    metrics.released(np.array([0.0001, 0.0002]), chunk)  # type: ignore[arg-type]
    value = metrics.registry.get_sample_value
    assert value("fosrd_schedule_lag_seconds_count") == 2
    assert value("fosrd_flows_started_total", {"service": "tcp/443"}) == 2
    assert value("fosrd_flows_started_total", {"service": "udp/53"}) == 1
    assert value("fosrd_flows_started_total", {"service": "tcp/high"}) == 1


def test_service_counts_fold_high_ports() -> None:
    assert service_counts([6, 6, 17, 47, 6], [80, 8080, 53, 0, 60000]) == {
        "tcp/80": 1,
        "tcp/high": 2,
        "udp/53": 1,
        "47/0": 1,
    }


def test_metrics_use_their_own_registry() -> None:
    Metrics(lambda: [ring_status()])
    assert REGISTRY.get_sample_value("fosrd_queue_depth_packets") is None
    Metrics(list)  # a second instance: no duplicate-name clash


def test_exposition_parses_and_follows_naming() -> None:
    metrics = Metrics(lambda: [ring_status()])
    metrics.observe_lag([0.001])
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name, family in families.items():
        assert name.startswith("fosrd_"), name
        if family.type == "counter":
            assert all(
                s.name.endswith(("_total", "_created")) for s in family.samples
            ), name
    assert families["fosrd_schedule_lag_seconds"].type == "histogram"
    assert families["fosrd_build_info"].type == "gauge"  # _info: a gauge of 1
    _, openmetrics = metrics.render("application/openmetrics-text; version=1.0.0")
    assert openmetrics.startswith("application/openmetrics-text")


@pytest.mark.asyncio
async def test_endpoint_serves_metrics_on_loopback() -> None:
    metrics = Metrics(lambda: [ring_status()])
    async with asyncio.timeout(10):
        runner = await start_metrics(metrics, "127.0.0.1", 0)
        try:
            port = runner.addresses[0][1]
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/metrics"
                async with session.get(url) as response:
                    assert response.status == 200
                    text = await response.text()
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 404
        finally:
            await runner.cleanup()
    assert 'fosrd_packets_emitted_total{kind="ring",output="ring"} 10.0' in text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.org"])
@pytest.mark.asyncio
async def test_endpoint_refuses_non_loopback_unless_allowed(host: str) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(
            ConfigError, match="is not a loopback address; set allow_remote"
        ):
            await start_metrics(Metrics(list), host, 0)


@pytest.mark.asyncio
async def test_endpoint_reports_a_busy_port() -> None:
    metrics = Metrics(list)
    async with asyncio.timeout(10):
        first = await start_metrics(metrics, "127.0.0.1", 0)
        try:
            port = first.addresses[0][1]
            with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: .*in use"):
                await start_metrics(metrics, "127.0.0.1", port)
            # explicitly allowed: a remote-capable address is accepted
            second = await start_metrics(metrics, "0.0.0.0", 0, allow_remote=True)
            await second.cleanup()
        finally:
            await first.cleanup()
