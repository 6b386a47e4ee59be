"""The ``fosrd`` command: run the traffic generator as a service.

``fosrd [--config FILE] [flags]``: without ``--config`` the daemon reads
``conf/fosrd.toml`` of the working folder when it exists, else runs on its
defaults (the bundled model, one pcap ring under ``./var/ring``).  Flags
override the file.  ``--check`` loads the configuration, the model and the
topology, prints what would run, and exits.

Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad configuration
or arguments, 130 interrupted before starting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from fosr import __version__
from fosr._cli_model import _non_negative, _shard
from fosr.errors import ConfigError, FosrError

__all__ = ["main"]

DEFAULT_CONFIG = Path("conf/fosrd.toml")
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, load the configuration, run the daemon; return the code."""
    args = _parser().parse_args(argv)
    from fosrd.config import apply_overrides, default_config, load_config

    try:
        if args.config is not None:
            config = load_config(args.config)
        elif DEFAULT_CONFIG.is_file():
            config = load_config(DEFAULT_CONFIG)
        else:
            config = default_config()
        config = apply_overrides(
            config,
            model_path=args.model,
            model_topology=args.topology,
            model_seed=args.seed,
            model_shard=args.shard[0] if args.shard else None,
            model_shards=args.shard[1] if args.shard else None,
            clock_speed=args.speed,
            clock_rate_scale=args.rate_scale,
            clock_timezone=args.timezone,
            control_socket=args.socket,
            metrics_enabled=False if args.no_metrics else None,
            metrics_port=args.metrics_port,
            logging_level=args.log_level,
            ring_dir=args.ring_dir,
        )
    except ConfigError as error:
        print(f"fosrd: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    _setup_logging(config.logging.level)

    from fosrd.daemon import Daemon, check_paths

    try:
        check_paths(config)
        daemon = Daemon(config, drop_capabilities=True)
        if args.check:
            return _check(daemon)
        return asyncio.run(_run(daemon, args.duration))
    except ConfigError as error:
        print(f"fosrd: error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except FosrError as error:
        print(f"fosrd: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"fosrd: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _run(daemon: object, duration: float | None) -> int:
    from fosrd.daemon import Daemon

    assert isinstance(daemon, Daemon)
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, daemon.stop)
    return await daemon.run()


def _check(daemon: object) -> int:
    from fosrd.daemon import Daemon, build_outputs

    assert isinstance(daemon, Daemon)
    model = daemon._load(daemon.config.model.path)
    outputs = build_outputs(daemon.config)
    for output in outputs:
        output.close()
    print(f"model: {model.info['name']} ({model.info['sha256'][:12]})")
    for output in outputs:
        print(f"output: {output.kind} {output.name}")
    print("configuration and model are valid")
    return EXIT_OK


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fosrd",
        description="Emit synthetic benign traffic from a fosr model, in real time.",
    )
    p.add_argument("--version", action="version", version=f"fosrd {__version__}")
    p.add_argument("-c", "--config", type=Path, help="configuration file (TOML)")
    p.add_argument("--model", help="model bundle (default: the bundled model)")
    p.add_argument("--topology", help="topology file (TOML)")
    p.add_argument("--seed", type=_non_negative, help="random seed")
    p.add_argument("--shard", type=_shard, help="emit shard I of N, as I/N")
    p.add_argument("--speed", type=float, help="generated seconds per wall second")
    p.add_argument("--rate-scale", type=float, help="multiply the learned rate")
    p.add_argument("--timezone", help="time zone of the generated day")
    p.add_argument("--ring-dir", help="folder of every pcap ring")
    p.add_argument("--socket", help="control socket path")
    p.add_argument("--metrics-port", type=int, help="Prometheus port")
    p.add_argument("--no-metrics", action="store_true", help="no metrics endpoint")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--check", action="store_true", help="validate everything and exit")
    return p


if __name__ == "__main__":
    sys.exit(main())
