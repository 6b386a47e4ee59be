"""The daemon's configuration: a TOML file, validated whole, then flags.

:func:`load_config` reads the file with :mod:`tomllib`, checks every table
and field (unknown names, types, ranges, paths) and returns a frozen
:class:`Config`; the first problem raises :class:`fosr.errors.ConfigError`
naming the file, the field (``output[1].max_files``) and the value.
:func:`apply_overrides` lays command-line flags over it and validates again.
``conf/fosrd.toml`` documents every field; the defaults here are its
defaults, so an empty file is a valid configuration.

Relative paths are taken relative to the working folder, the rule
``fosrctl`` follows too, so ``var/run/fosrd.sock`` means the same file to
both when they are started from the same place.  The systemd unit starts
the daemon in its state directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fosr.errors import ConfigError

__all__ = [
    "ClockConfig",
    "Config",
    "ControlConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "OutputConfig",
    "apply_overrides",
    "default_config",
    "load_config",
    "parse_config",
    "resolve_path",
    "validate",
]

OUTPUT_KINDS = ("ring", "iface", "flowlog")
RING_FORMATS = ("pcap", "pcap-ns", "pcapng")
FLOW_LOG_FORMATS = ("csv", "jsonl")
BEHIND_POLICIES = ("catch-up", "drop")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to run and which part of its stream to emit."""

    path: str = ""  # empty: the default model inside the package
    topology: str = ""  # empty: hosts keep their training addresses
    seed: int = 0
    shard: int = 0
    shards: int = 1


@dataclass(frozen=True)
class ClockConfig:
    """How generated time follows the wall clock."""

    timezone: str = ""  # empty: the time zone the model learned its day in
    speed: float = 1.0
    rate_scale: float = 1.0
    max_pps: float = 0.0  # 0: no cap
    max_bps: float = 0.0
    behind: str = "catch-up"
    max_lag_s: float = 1.0
    batch_s: float = 10.0
    lead_s: float = 5.0


@dataclass(frozen=True)
class OutputConfig:
    """One output; which fields apply depends on ``kind``."""

    kind: str
    name: str
    # ring
    directory: str = "var/ring"
    prefix: str = "fosr"
    format: str = "pcap"
    max_file_bytes: int = 64 * 1024 * 1024
    max_file_seconds: float = 0.0
    interval: bool = False
    max_files: int = 16
    file_mode: int = 0o640
    group: str = ""
    on_rotate: tuple[str, ...] = ()
    flow_log: str = "csv"  # ring: sidecar format, "" for none
    utc_names: bool = True
    # iface
    interface: str = ""
    qdisc_bypass: bool = False
    netns: str = ""
    create_veth: str = ""
    bring_up: bool = False
    # flowlog
    path: str = "var/flows.csv"
    log_format: str = "csv"


@dataclass(frozen=True)
class ControlConfig:
    """The Unix control socket."""

    socket: str = "var/run/fosrd.sock"
    mode: int = 0o660
    group: str = ""
    allow_uids: tuple[int, ...] = ()
    allow_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class MetricsConfig:
    """The Prometheus endpoint."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9469
    allow_remote: bool = False


@dataclass(frozen=True)
class LoggingConfig:
    """Log level; logs go to standard error (the journal under systemd)."""

    level: str = "info"


@dataclass(frozen=True)
class Config:
    """A whole, validated configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    clock: ClockConfig = field(default_factory=ClockConfig)
    outputs: tuple[OutputConfig, ...] = ()
    control: ControlConfig = field(default_factory=ControlConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: str = "<defaults>"


def default_config() -> Config:
    """Return the configuration of an empty file: one pcap ring under var/."""
    return Config(outputs=(OutputConfig(kind="ring", name="ring"),))


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file; ConfigError on any fault."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            raw = tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{name}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{name}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{name}: not UTF-8 text: {error.reason}") from None
    except RecursionError:
        raise ConfigError(f"{name}: not valid TOML: nested too deeply") from None
    return parse_config(raw, source=name)


def parse_config(raw: Mapping[str, Any], *, source: str = "<config>") -> Config:
    """Validate a TOML document already parsed into ``raw``."""
    p = _Parser(source)
    p.known(raw, "", ("model", "clock", "output", "control", "metrics", "logging"))
    outputs_raw = raw.get("output", [])
    if not isinstance(outputs_raw, list):
        p.fail("output", outputs_raw, "must be an array of tables ([[output]])")
    if outputs_raw:
        outputs = tuple(_output(p, o, i) for i, o in enumerate(outputs_raw))
    else:
        outputs = default_config().outputs
    config = Config(
        model=p.table(raw, "model", ModelConfig),
        clock=p.table(raw, "clock", ClockConfig),
        outputs=outputs,
        control=p.table(raw, "control", ControlConfig),
        metrics=p.table(raw, "metrics", MetricsConfig),
        logging=p.table(raw, "logging", LoggingConfig),
        source=source,
    )
    validate(config)
    return config


def apply_overrides(config: Config, **flags: Any) -> Config:
    """Return ``config`` with the flags that are not None laid over it.

    Flag names are ``section_field`` (``model_path``, ``clock_speed``,
    ``control_socket``...) plus ``ring_dir``, which moves every ring.
    """
    sections: dict[str, dict[str, Any]] = {}
    outputs = config.outputs
    for key, value in flags.items():
        if value is None:
            continue
        if key == "ring_dir":
            outputs = tuple(
                dataclasses.replace(o, directory=str(value)) if o.kind == "ring" else o
                for o in outputs
            )
            continue
        section, _, name = key.partition("_")
        sections.setdefault(section, {})[name] = value
    changed = dataclasses.replace(config, outputs=outputs)
    for section, values in sections.items():
        current = getattr(changed, section)
        try:
            changed = dataclasses.replace(
                changed, **{section: dataclasses.replace(current, **values)}
            )
        except TypeError as error:
            raise ConfigError(f"unknown override {section}: {error}") from None
    validate(changed, origin="command line")
    return changed


def validate(config: Config, *, origin: str | None = None) -> None:
    """Check ranges and cross-field rules; ConfigError names the field."""
    p = _Parser(origin or config.source)
    m, c = config.model, config.clock
    if m.seed < 0:
        p.fail("model.seed", m.seed, "must be 0 or more")
    if m.shards < 1:
        p.fail("model.shards", m.shards, "must be 1 or more")
    if not 0 <= m.shard < m.shards:
        p.fail("model.shard", m.shard, f"must be in 0..{m.shards - 1}")
    if c.timezone:
        try:
            zoneinfo.ZoneInfo(c.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            p.fail("clock.timezone", c.timezone, "is not a known time zone")
    for name in ("speed", "batch_s", "lead_s", "max_lag_s"):
        value = getattr(c, name)
        if not (math.isfinite(value) and value > 0):
            p.fail(f"clock.{name}", value, "must be a positive number")
    if c.speed > 1e6:
        p.fail("clock.speed", c.speed, "must be at most 1000000")
    for name in ("rate_scale", "max_pps", "max_bps"):
        value = getattr(c, name)
        if not (math.isfinite(value) and value >= 0):
            p.fail(f"clock.{name}", value, "must be 0 or a positive number")
    if c.behind not in BEHIND_POLICIES:
        p.fail("clock.behind", c.behind, f"must be one of {', '.join(BEHIND_POLICIES)}")
    names: set[str] = set()
    for i, o in enumerate(config.outputs):
        _validate_output(p, o, f"output[{i}]")
        if o.name in names:
            p.fail(f"output[{i}].name", o.name, "is used by another output")
        names.add(o.name)
    if not config.control.socket:
        p.fail("control.socket", "", "must name a socket path")
    if not 0 <= config.control.mode <= 0o777:
        p.fail("control.mode", oct(config.control.mode), "must be a file mode")
    if not 0 <= config.metrics.port < 65536:
        p.fail("metrics.port", config.metrics.port, "must be in 0..65535")
    if config.logging.level not in LOG_LEVELS:
        p.fail("logging.level", config.logging.level, f"must be one of {LOG_LEVELS}")


def _validate_output(p: _Parser, o: OutputConfig, at: str) -> None:
    if o.kind not in OUTPUT_KINDS:
        p.fail(f"{at}.kind", o.kind, f"must be one of {', '.join(OUTPUT_KINDS)}")
    if not o.name or not o.name.replace("-", "").replace("_", "").isalnum():
        p.fail(f"{at}.name", o.name, "must be letters, digits, - or _")
    if o.kind == "ring":
        if not o.directory:
            p.fail(f"{at}.directory", o.directory, "must name a folder")
        if not o.prefix or "/" in o.prefix or o.prefix.startswith("."):
            p.fail(f"{at}.prefix", o.prefix, "must be a plain file name prefix")
        if o.format not in RING_FORMATS:
            p.fail(f"{at}.format", o.format, f"must be one of {RING_FORMATS}")
        if o.max_file_bytes < 0 or o.max_file_seconds < 0:
            p.fail(f"{at}.max_file_bytes", o.max_file_bytes, "must not be negative")
        if o.max_file_bytes == 0 and o.max_file_seconds == 0:
            p.fail(
                f"{at}.max_file_bytes",
                0,
                "a ring needs max_file_bytes or max_file_seconds",
            )
        if not 1 <= o.max_files < 100000:
            p.fail(f"{at}.max_files", o.max_files, "must be in 1..99999")
        if not 0 <= o.file_mode <= 0o777:
            p.fail(f"{at}.file_mode", oct(o.file_mode), "must be a file mode")
        if o.flow_log not in ("", *FLOW_LOG_FORMATS):
            p.fail(f"{at}.flow_log", o.flow_log, "must be csv, jsonl or empty")
    elif o.kind == "iface":
        if not o.interface or "/" in o.interface or len(o.interface) > 15:
            p.fail(f"{at}.interface", o.interface, "must name a network interface")
    elif o.kind == "flowlog":
        if not o.path:
            p.fail(f"{at}.path", o.path, "must name a file")
        if o.log_format not in FLOW_LOG_FORMATS:
            p.fail(f"{at}.log_format", o.log_format, "must be csv or jsonl")


def _output(p: _Parser, raw: Any, i: int) -> OutputConfig:
    at = f"output[{i}]"
    if not isinstance(raw, dict):
        p.fail(at, raw, "must be a table")
    kind = raw.get("kind")
    if not isinstance(kind, str):
        p.fail(f"{at}.kind", kind, f"must be one of {', '.join(OUTPUT_KINDS)}")
    values = dict(raw)
    values.setdefault("name", f"{kind}{i}" if i else str(kind))
    output: OutputConfig = p.fields(values, at, OutputConfig)
    return output


class _Parser:
    """Typed reading of TOML tables into dataclasses, with located errors."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, value: Any, why: str) -> None:
        raise ConfigError(f"{self.source}: {where} = {value!r}: {why}")

    def known(self, raw: Mapping[str, Any], at: str, names: tuple[str, ...]) -> None:
        for key in raw:
            if key not in names:
                where = f"{at}.{key}" if at else key
                self.fail(where, raw[key], f"unknown; known: {', '.join(names)}")

    def table(self, raw: Mapping[str, Any], name: str, cls: type[Any]) -> Any:
        section = raw.get(name, {})
        if not isinstance(section, dict):
            self.fail(name, section, "must be a table")
        return self.fields(section, name, cls)

    def fields(self, raw: Mapping[str, Any], at: str, cls: type[Any]) -> Any:
        spec = {f.name: f for f in dataclasses.fields(cls)}
        self.known(raw, at, tuple(spec))
        values: dict[str, Any] = {}
        for key, value in raw.items():
            values[key] = self.value(f"{at}.{key}", value, spec[key])
        try:
            return cls(**values)
        except TypeError as error:  # a required field is missing
            self.fail(at, dict(raw), str(error).split(") ", 1)[-1])

    def value(self, where: str, value: Any, spec: dataclasses.Field[Any]) -> Any:
        kind = spec.type if isinstance(spec.type, str) else spec.type.__name__
        if where.endswith("mode") and isinstance(value, str):
            try:
                return int(value, 8)
            except ValueError:
                self.fail(where, value, 'must be an octal mode such as "0640"')
        if kind == "bool":
            if not isinstance(value, bool):
                self.fail(where, value, "must be true or false")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(where, value, "must be an integer")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(where, value, "must be a number")
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                self.fail(where, value, "must be a string")
            return value
        if kind.startswith("tuple[int"):
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
            ):
                self.fail(where, value, "must be a list of non-negative integers")
            return tuple(value)
        if kind.startswith("tuple[str"):
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                self.fail(where, value, "must be a list of strings")
            return tuple(value)
        raise AssertionError(f"no reader for {kind} at {where}")


def resolve_path(path: str, base: Path | None = None) -> Path:
    """Return ``path`` made absolute against ``base`` (the working folder)."""
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = (base or Path.cwd()) / resolved
    return resolved
