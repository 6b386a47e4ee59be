"""Prometheus metrics of the daemon, and the HTTP endpoint that serves them.

Names follow the Prometheus conventions: the ``fosrd_`` prefix, base units
(seconds, bytes), ``_total`` on counters, ``_info`` on metadata set to 1,
and only low-cardinality labels (an output's name and kind, a service, an
error kind; never addresses or ports).

=================================================  =========  =================
metric                                             type       labels
=================================================  =========  =================
fosrd_packets_emitted_total                        counter    output, kind
fosrd_bytes_emitted_total                          counter    output, kind
fosrd_flows_emitted_total                          counter    output, kind
fosrd_dropped_packets_total                        counter    output
fosrd_output_errors_total                          counter    output, error
fosrd_ring_files                                   gauge      output
fosrd_ring_bytes                                   gauge      output
fosrd_flows_started_total                          counter    service
fosrd_schedule_lag_seconds                         histogram  --
fosrd_queue_depth_packets                          gauge      --
fosrd_rate_scale                                   gauge      --
fosrd_speed_factor                                 gauge      --
fosrd_model_info                                   gauge      path, sha256,
                                                              version
fosrd_build_info                                   gauge      version
fosrd_config_last_reload_successful                gauge      --
fosrd_config_last_reload_success_timestamp_seconds gauge      --
=================================================  =========  =================

The per-output series are read at scrape time from the outputs' own
counters (:class:`fosrd.outputs.OutputStats`, through a callable returning
their ``status()`` dicts), so outputs never import prometheus_client and
nothing is counted twice.  ``fosrd_ring_files`` and ``fosrd_ring_bytes``
appear for outputs of kind ``ring`` and for any output that reports files.
The scheduler feeds the rest once per batch: the scheduling lag as an
array (binned with numpy, not one ``observe`` per packet), the queue depth,
and the flows started per service.

Everything lives in a :class:`CollectorRegistry` of its own, never the
process-wide default one, so tests get a fresh registry each and a library
user's metrics never mix with ours.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from fosr import __version__
from fosr.errors import ConfigError
from fosrd.outputs import Chunk

__all__ = [
    "DEFAULT_METRICS_HOST",
    "DEFAULT_METRICS_PORT",
    "LAG_BUCKETS_S",
    "Metrics",
    "OutputsSource",
    "is_loopback",
    "service_counts",
    "start_metrics",
]

logger = logging.getLogger(__name__)

#: metrics stay on the machine unless the configuration says otherwise
DEFAULT_METRICS_HOST = "127.0.0.1"
#: chosen, not registered: Prometheus' list of exporter ports has filled
#: the whole 9100-9999 range, so any pick there may collide with some
#: exporter; change it in the configuration if it does
DEFAULT_METRICS_PORT = 9469

#: upper bounds of the scheduling-lag buckets, seconds: 50 us to 1 s, dense
#: around the 1 ms release goal
LAG_BUCKETS_S = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

#: returns the outputs' ``status()`` dicts (see fosrd/outputs.py)
OutputsSource = Callable[[], Iterable[Mapping[str, object]]]


class Metrics:
    """The daemon's metrics in their own registry.

    ``outputs`` is called at every scrape.  The per-batch methods may be
    called from the sender thread while the event loop scrapes.
    """

    def __init__(
        self,
        outputs: OutputsSource,
        *,
        version: str = __version__,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self._lag = _LagHistogram(LAG_BUCKETS_S)
        self.registry.register(_OutputsCollector(outputs))
        self.registry.register(self._lag)

        # scheduler
        self.flows_started_total = Counter(
            "fosrd_flows_started",
            "Flows started, by service",
            ["service"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "fosrd_queue_depth_packets",
            "Packets sampled and waiting for their release time",
            registry=self.registry,
        )
        self.rate_scale = Gauge(
            "fosrd_rate_scale",
            "Scale applied to the learned traffic volume",
            registry=self.registry,
        )
        self.speed_factor = Gauge(
            "fosrd_speed_factor",
            "Model seconds per wall-clock second",
            registry=self.registry,
        )
        self.rate_scale.set(1.0)
        self.speed_factor.set(1.0)

        # model and configuration
        self.model_info = Info(
            "fosrd_model", "The model bundle in use", registry=self.registry
        )
        self.build_info = Info(
            "fosrd_build", "The fosrd version running", registry=self.registry
        )
        self.build_info.info({"version": version})
        self.reload_successful = Gauge(
            "fosrd_config_last_reload_successful",
            "Whether the last configuration or model reload succeeded",
            registry=self.registry,
        )
        self.reload_success_timestamp = Gauge(
            "fosrd_config_last_reload_success_timestamp_seconds",
            "When the last successful configuration or model load ended",
            registry=self.registry,
        )

    # per batch

    def observe_lag(self, lag_s: npt.ArrayLike) -> None:
        """Add scheduling lags (release time minus due time, seconds).

        Early releases (negative lags) count as zero; NaNs are ignored.
        """
        self._lag.observe(lag_s)

    def set_queue_depth(self, packets: int) -> None:
        """Record how many packets wait for their release time."""
        self.queue_depth.set(packets)

    def flows_started(self, service_counts: Mapping[str, int]) -> None:
        """Add the flows started in a batch, by service name."""
        for service, count in service_counts.items():
            if count:
                self.flows_started_total.labels(service=service).inc(count)

    # on control actions

    def set_rate_scale(self, scale: float) -> None:
        """Record the rate scale now in force."""
        self.rate_scale.set(scale)

    def set_speed_factor(self, factor: float) -> None:
        """Record the speed factor now in force."""
        self.speed_factor.set(factor)

    def set_model(self, path: str, sha256: str, version: str) -> None:
        """Describe the model in use (replaces the previous description)."""
        self.model_info.info({"path": path, "sha256": sha256, "version": version})

    def set_model_info(self, info: Mapping[str, object]) -> None:
        """Describe the model from its info dict (``path``, ``sha256``, ``version``).

        Missing keys become empty labels.
        """
        self.set_model(
            str(info.get("path", "")),
            str(info.get("sha256", "")),
            str(info.get("version", "")),
        )

    def set_rate(self, scale: float, speed: float) -> None:
        """Record the rate scale and the speed factor now in force."""
        self.set_rate_scale(scale)
        self.set_speed_factor(speed)

    def released(self, lags_s: npt.ArrayLike, chunk: Chunk) -> None:
        """Account for one release by the sender: its lags and its new flows.

        Meant as the scheduler's ``on_release`` callback (sender thread).
        """
        self.observe_lag(lags_s)
        if len(chunk.flows):
            self.flows_started(
                service_counts(chunk.flows.proto, chunk.flows.server_port)
            )

    def reload_result(self, ok: bool, *, now: float | None = None) -> None:
        """Record the outcome of a load or reload; ``now`` is Unix seconds."""
        self.reload_successful.set(1 if ok else 0)
        if ok:
            self.reload_success_timestamp.set(time.time() if now is None else now)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Return the exposition for an ``Accept`` header, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


#: IP protocol numbers named in service labels; others keep their number
_PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}


def service_counts(proto: npt.ArrayLike, server_port: npt.ArrayLike) -> dict[str, int]:
    """Count flows by service label: ``tcp/443`` below port 1024, ``tcp/high`` above.

    Ports from 1024 up are folded into one label per protocol so that the
    label's cardinality stays bounded whatever the model emits.
    """
    protos = np.asarray(proto, dtype=np.int64)
    ports = np.asarray(server_port, dtype=np.int64)
    ports = np.where((ports >= 0) & (ports < 1024), ports, -1)
    keys, counts = np.unique(protos * 2048 + ports + 1, return_counts=True)
    result: dict[str, int] = {}
    for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
        number, port = divmod(key, 2048)
        name = _PROTO_NAMES.get(number, str(number))
        label = f"{name}/high" if port == 0 else f"{name}/{port - 1}"
        result[label] = result.get(label, 0) + count
    return result


def is_loopback(host: str) -> bool:
    """Say whether ``host`` is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def start_metrics(
    metrics: Metrics, host: str, port: int, *, allow_remote: bool = False
) -> web.AppRunner:
    """Serve ``GET /metrics`` on ``host:port``; return the runner to clean up.

    Refuse a non-loopback ``host`` unless ``allow_remote`` is set: the
    metrics name the model and the outputs, which is nobody else's business
    by default.  Port 0 picks a free port (``runner.addresses`` tells
    which).  Raise :class:`ConfigError` naming the address when it is
    refused or cannot be bound.
    """
    address = f"{host}:{port}"
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"metrics address {address} is not a loopback address; set "
            "allow_remote = true in the [metrics] section to serve metrics "
            "to other machines"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"metrics port {port} is not between 0 and 65535")

    async def handle_metrics(request: web.Request) -> web.Response:
        body, content_type = metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(client_max_size=1024)
    app.router.add_get("/metrics", handle_metrics)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=1.0
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        reason = error.strerror or str(error)
        raise ConfigError(f"metrics address {address}: {reason}") from error
    logger.info("metrics served on http://%s/metrics", address)
    return runner


# --- collectors --------------------------------------------------------------


class _OutputsCollector:
    """Turn the outputs' counters into metric families at scrape time."""

    def __init__(self, outputs: OutputsSource) -> None:
        self.outputs = outputs

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        families = {
            "packets": CounterMetricFamily(
                "fosrd_packets_emitted",
                "Packets an output wrote or sent",
                labels=["output", "kind"],
            ),
            "bytes": CounterMetricFamily(
                "fosrd_bytes_emitted",
                "Bytes of packets an output wrote or sent",
                labels=["output", "kind"],
            ),
            "flows": CounterMetricFamily(
                "fosrd_flows_emitted",
                "Flows an output received",
                labels=["output", "kind"],
            ),
        }
        dropped = CounterMetricFamily(
            "fosrd_dropped_packets",
            "Packets an output could not write or send",
            labels=["output"],
        )
        errors = CounterMetricFamily(
            "fosrd_output_errors",
            "Failures of an output, by kind",
            labels=["output", "error"],
        )
        files = GaugeMetricFamily(
            "fosrd_ring_files", "Files in an output's ring", labels=["output"]
        )
        file_bytes = GaugeMetricFamily(
            "fosrd_ring_bytes", "Bytes on disk in an output's ring", labels=["output"]
        )

        # a broken source must not break the scrape of everything else
        try:
            statuses = list(self.outputs())
        except Exception:
            logger.exception("cannot read the outputs' counters for metrics")
            statuses = []
        for status in statuses:
            name = str(status.get("name", ""))
            kind = str(status.get("kind", ""))
            for key, family in families.items():
                value = _number(status.get(key))
                if value is not None:
                    family.add_metric([name, kind], value)
            value = _number(status.get("dropped_packets"))
            if value is not None:
                dropped.add_metric([name], value)
            by_kind = status.get("errors")
            if isinstance(by_kind, Mapping):
                for error, count in by_kind.items():
                    value = _number(count)
                    if value is not None:
                        errors.add_metric([name, str(error)], value)
            n_files = _number(status.get("files"))
            n_bytes = _number(status.get("file_bytes"))
            if kind == "ring" or n_files or n_bytes:
                files.add_metric([name], n_files or 0)
                file_bytes.add_metric([name], n_bytes or 0)

        yield from families.values()
        yield from (dropped, errors, files, file_bytes)


class _LagHistogram:
    """A histogram fed whole arrays at once, binned with numpy."""

    def __init__(self, bounds_s: Iterable[float]) -> None:
        self.bounds = np.asarray(tuple(bounds_s), dtype=np.float64)
        self._lock = threading.Lock()
        self._counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)
        self._sum = 0.0

    def observe(self, values: npt.ArrayLike) -> None:
        lags = np.asarray(values, dtype=np.float64).ravel()
        lags = np.maximum(lags[~np.isnan(lags)], 0.0)
        if lags.size == 0:
            return
        # a bucket counts values <= its bound: the first bound >= value
        index = np.searchsorted(self.bounds, lags, side="left")
        counts = np.bincount(index, minlength=len(self.bounds) + 1)
        total = float(lags.sum())
        with self._lock:
            self._counts += counts
            self._sum += total

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        bounds = [_format_bound(b) for b in self.bounds] + ["+Inf"]
        family = HistogramMetricFamily(
            "fosrd_schedule_lag_seconds",
            "Delay between a packet's due time and its release",
            buckets=list(zip(bounds, (float(c) for c in cumulative), strict=True)),
            sum_value=total,
        )
        yield family


def _format_bound(bound: np.float64) -> str:
    return repr(float(bound))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
