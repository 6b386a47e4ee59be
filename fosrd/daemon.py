"""The daemon: load the model, open the outputs, pace, control and report.

The asyncio loop owns control and observation: the control socket, the
metrics endpoint, signals, the systemd notifications and the watchdog.  The
engine and the sender run in threads (:mod:`fosrd.scheduler`).

Life cycle: the configuration is checked, the model loaded and the outputs
opened before ``READY=1``; then, when asked (``fosrd`` does), every Linux
capability is dropped (:mod:`fosrd._caps`).  Any failure there is one line
on standard error and exit code 2 (configuration) or 1 (anything else).
SIGTERM and SIGINT stop the threads, then flush and close every output,
well within five seconds; SIGHUP reloads the model (the running one stays if the new one
fails).  A watchdog ping is sent only while the sender makes progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fosr import __version__
from fosr.errors import ConfigError, FosrError
from fosrd import notify
from fosrd._caps import drop_capabilities
from fosrd.config import Config, resolve_path
from fosrd.control import ControlServer, start_control
from fosrd.metrics import Metrics, start_metrics
from fosrd.model import LoadedModel, load_model
from fosrd.outputs import Output
from fosrd.scheduler import GenClock, Pacer

__all__ = ["Daemon"]

log = logging.getLogger("fosrd")

STOP_TIMEOUT_S = 3.0


class Daemon:
    """One running fosrd; also the :class:`fosrd.control.Controller`."""

    def __init__(self, config: Config, *, drop_capabilities: bool = False) -> None:
        self.config = config
        self.drop_capabilities = drop_capabilities
        self.model: LoadedModel | None = None
        self.sinks: list[Output] = []
        self.pacer: Pacer | None = None
        self.clock: GenClock | None = None
        self.metrics = Metrics(outputs=self.outputs_status)
        self.rate_scale = config.clock.rate_scale
        self.state = "starting"
        self.started_at = time.time()
        self.reloads = 0
        self.last_reload_error = ""
        self._stopping: asyncio.Event | None = None
        self._control: ControlServer | None = None
        self._metrics_runner: Any = None
        self._reload_lock: asyncio.Lock | None = None

    # life cycle

    async def run(self) -> int:
        """Run until a stop signal; return the exit code."""
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        cfg = self.config
        notify.status("loading the model")
        # start-up work runs off the loop (pyroute2's synchronous calls run a
        # loop of their own) in threads that end before capabilities are
        # dropped, since capabilities belong to each thread
        start = ThreadPoolExecutor(2, thread_name_prefix="fosrd-start")
        loop.set_default_executor(start)
        try:
            self.model = await loop.run_in_executor(start, self._load, cfg.model.path)
            self.sinks = await loop.run_in_executor(start, build_outputs, cfg)
            self.clock = GenClock(time.time(), cfg.clock.speed)
            self.pacer = self._make_pacer(self.model)
            self._control = await start_control(
                self,
                str(resolve_path(cfg.control.socket)),
                mode=cfg.control.mode,
                group=cfg.control.group or None,
                allow_uids=cfg.control.allow_uids,
                allow_gids=cfg.control.allow_gids,
            )
            if cfg.metrics.enabled:
                self._metrics_runner = await start_metrics(
                    self.metrics,
                    cfg.metrics.host,
                    cfg.metrics.port,
                    allow_remote=cfg.metrics.allow_remote,
                )
        except BaseException:
            await self._shutdown()
            raise
        finally:
            loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="fosrd-io"))
            start.shutdown(wait=True)
        if self.drop_capabilities:
            drop_capabilities()
        try:
            self.metrics.set_model_info(self.model.info)
            self.metrics.set_rate(self.rate_scale, cfg.clock.speed)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stopping.set)
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
            self.pacer.start()
            self.state = "running"
            log.info("emitting %s to %s", self.model.info["name"], _names(self.sinks))
            notify.ready(self._status_line())
            watchdog = asyncio.create_task(self._watch())
            await self._stopping.wait()
            watchdog.cancel()
        finally:
            await self._shutdown()
        if self.pacer is not None and self.pacer.error is not None:
            log.error("stopped after an error: %s", self.pacer.error)
            return 1
        return 0

    async def _shutdown(self) -> None:
        self.state = "stopping"
        notify.stopping()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if self.pacer is not None:
            await loop.run_in_executor(None, self.pacer.stop, STOP_TIMEOUT_S)
        for output in self.sinks:
            try:
                output.close()
            except Exception:  # keep closing the others
                log.exception("closing output %s", output.name)
        if self._control is not None:
            await self._control.close()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        log.info("stopped")

    @property
    def metrics_port(self) -> int | None:
        """Return the port metrics are served on (None when not served)."""
        if self._metrics_runner is None:
            return None
        for address in self._metrics_runner.addresses:
            return int(address[1])
        return None

    def stop(self) -> None:
        """Ask the daemon to stop (as SIGTERM does)."""
        if self._stopping is not None:
            self._stopping.set()

    async def _watch(self) -> None:
        """Send the watchdog ping while the sender progresses; update STATUS."""
        interval = notify.watchdog_interval() or 5.0
        last = -1
        while True:
            await asyncio.sleep(min(interval, 5.0))
            pacer = self.pacer
            if pacer is None:
                continue
            if pacer.error is not None or not pacer.alive:
                assert self._stopping is not None
                self._stopping.set()
                return
            beat = pacer.stats.heartbeat
            if beat != last:
                notify.watchdog()
                last = beat
            self.metrics.set_queue_depth(pacer.stats.queue_packets)
            notify.status(self._status_line())

    def _on_sighup(self) -> None:
        asyncio.get_running_loop().create_task(self._reload_logged(None))

    async def _reload_logged(self, path: str | None) -> None:
        try:
            await self.reload(path)
        except FosrError as error:
            log.error("reload failed, the running model stays: %s", error)

    # the model and the pacer

    def _load(self, path: str) -> LoadedModel:
        c = self.config
        return load_model(
            path,
            topology=c.model.topology,
            seed=c.model.seed,
            shard=c.model.shard,
            shards=c.model.shards,
            timezone=c.clock.timezone,
            batch_s=c.clock.batch_s,
        )

    def _make_pacer(self, model: LoadedModel) -> Pacer:
        c = self.config.clock
        assert self.clock is not None
        return Pacer(
            self._chunks_of(model),
            self.sinks,
            self.clock,
            lead_s=c.lead_s,
            max_pps=c.max_pps,
            max_bps=c.max_bps,
            behind=c.behind,
            max_lag_s=c.max_lag_s,
            on_release=self.metrics.released,
        )

    def _chunks_of(self, model: LoadedModel) -> Any:
        scale = self.rate_scale
        return lambda start_s: model.chunks(start_s, rate_scale=scale)

    # the Controller protocol

    def status(self) -> dict[str, object]:
        """Return the daemon's state, model, clock, counters and outputs."""
        pacer, clock = self.pacer, self.clock
        stats = pacer.stats if pacer is not None else None
        return {
            "version": __version__,
            "state": self.state,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3),
            "model": dict(self.model.info) if self.model is not None else None,
            "seed": self.config.model.seed,
            "shard": f"{self.config.model.shard}/{self.config.model.shards}",
            "rate_scale": self.rate_scale,
            "speed": clock.speed if clock is not None else None,
            "generated_time": clock.now_ns() / 1e9 if clock is not None else None,
            "packets": stats.packets if stats else 0,
            "bytes": stats.bytes if stats else 0,
            "flows": stats.flows if stats else 0,
            "dropped_late": stats.dropped_late if stats else 0,
            "lag_s": stats.lag_s if stats else 0.0,
            "queue_chunks": stats.queue_chunks if stats else 0,
            "queue_packets": stats.queue_packets if stats else 0,
            "reloads": self.reloads,
            "last_reload_error": self.last_reload_error,
            "outputs": self.outputs_status(),
        }

    def pause(self) -> None:
        """Stop releasing frames until :meth:`resume`."""
        if self.pacer is not None:
            self.pacer.paused.set()
        self.state = "paused"

    def resume(self) -> None:
        """Continue from the current time; what the pause skipped is not sent."""
        if self.pacer is not None and self.pacer.paused.is_set():
            self.pacer.restart()
            self.pacer.paused.clear()
        self.state = "running"

    def set_rate(self, scale: float) -> None:
        """Scale the learned flow rate; restarts the engine at the current time."""
        if not (isinstance(scale, int | float) and 0 <= scale <= 1e6):
            raise ValueError(
                f"rate scale must be a number in 0..1000000, not {scale!r}"
            )
        self.rate_scale = float(scale)
        if self.pacer is not None and self.model is not None:
            self.pacer.restart(self._chunks_of(self.model))
        self.metrics.set_rate(self.rate_scale, self.clock.speed if self.clock else 1.0)

    def set_speed(self, factor: float) -> None:
        """Change how fast generated time runs against the wall clock."""
        if not (isinstance(factor, int | float) and 0 < factor <= 1e6):
            raise ValueError(f"speed must be a number in (0, 1000000], not {factor!r}")
        if self.clock is not None:
            self.clock.set_speed(float(factor))
        self.metrics.set_rate(self.rate_scale, float(factor))

    async def reload(self, model: str | None = None) -> dict[str, object]:
        """Load a model (the configured one by default) and swap it in.

        The old model keeps running if loading fails; the error is raised.
        """
        assert self._reload_lock is not None
        async with self._reload_lock:
            path = self.config.model.path if model is None else model
            notify.reloading()
            previous, self.state = self.state, "reloading"
            loop = asyncio.get_running_loop()
            try:
                loaded = await loop.run_in_executor(None, self._load, path)
            except FosrError as error:
                self.last_reload_error = str(error)
                self.metrics.reload_result(False)
                raise
            finally:
                self.state = previous
                notify.ready(self._status_line())
            self.model = loaded
            if self.pacer is not None:
                self.pacer.restart(self._chunks_of(loaded))
            self.reloads += 1
            self.last_reload_error = ""
            self.metrics.reload_result(True)
            self.metrics.set_model_info(loaded.info)
            log.info("reloaded %s", loaded.info["name"])
            return {"model": dict(loaded.info)}

    def rotate(self) -> list[str]:
        """Finish the current file of every output that writes files."""
        done = []
        for output in self.sinks:
            finished = output.rotate()
            if finished:
                done.append(finished)
        return done

    def outputs(self) -> list[dict[str, object]]:
        """Return every output's status."""
        return self.outputs_status()

    def outputs_status(self) -> list[dict[str, object]]:
        """Return every output's status."""
        return [o.status() for o in self.sinks]

    def _status_line(self) -> str:
        stats = self.pacer.stats if self.pacer is not None else None
        if stats is None:
            return self.state
        return (
            f"{self.state}: {stats.packets:,} packets, {stats.flows:,} flows, "
            f"lag {stats.lag_s * 1e3:.1f} ms"
        )


def build_outputs(config: Config) -> list[Output]:
    """Open every configured output; ConfigError when one cannot be."""
    from fosrd.flowlog import FlowLog
    from fosrd.iface import InterfaceOutput
    from fosrd.ring import PcapRing

    outputs: list[Output] = []
    try:
        for o in config.outputs:
            if o.kind == "ring":
                outputs.append(
                    PcapRing(
                        o.name,
                        resolve_path(o.directory),
                        prefix=o.prefix,
                        format=o.format,
                        max_file_bytes=o.max_file_bytes or None,
                        max_file_seconds=o.max_file_seconds or None,
                        interval=o.interval,
                        max_files=o.max_files,
                        file_mode=o.file_mode,
                        group=o.group or None,
                        on_rotate=list(o.on_rotate),
                        flow_log=o.flow_log or None,
                        utc_names=o.utc_names,
                    )
                )
            elif o.kind == "iface":
                outputs.append(
                    InterfaceOutput(
                        o.name,
                        o.interface,
                        qdisc_bypass=o.qdisc_bypass,
                        netns=o.netns or None,
                        create_veth=o.create_veth or None,
                        bring_up=o.bring_up,
                    )
                )
            else:
                outputs.append(
                    FlowLog(o.name, resolve_path(o.path), format=o.log_format)
                )
    except BaseException:
        for output in outputs:
            output.close()
        raise
    return outputs


def _names(outputs: list[Output]) -> str:
    return ", ".join(f"{o.kind} {o.name}" for o in outputs) or "no output"


def check_paths(config: Config) -> None:
    """Fail early, with the field, when a folder of the config cannot be made."""
    for i, o in enumerate(config.outputs):
        folder = (
            resolve_path(o.directory)
            if o.kind == "ring"
            else resolve_path(o.path).parent
            if o.kind == "flowlog"
            else None
        )
        if folder is None:
            continue
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"{config.source}: output[{i}]: cannot create {folder}: "
                f"{error.strerror}"
            ) from None
