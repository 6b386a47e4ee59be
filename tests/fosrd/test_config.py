"""The daemon's configuration: the shipped file, validation, overrides."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from fosr.errors import ConfigError
from fosrd.config import apply_overrides, default_config, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_is_the_defaults_and_needs_no_root() -> None:
    config = load_config(ROOT / "conf" / "fosrd.toml")
    assert dataclasses.replace(config, source="<defaults>") == default_config()
    ring = config.outputs[0]
    assert ring.kind == "ring" and not Path(ring.directory).is_absolute()
    assert ring.directory.startswith("var/")
    assert config.control.socket.startswith("var/")
    assert config.metrics.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ("[clock]\nspeed = -1", "clock.speed", "-1.0"),
        ("[clock]\nspeed = 'fast'", "clock.speed", "'fast'"),
        ("[clock]\nbehind = 'panic'", "clock.behind", "'panic'"),
        ("[clock]\ntimezone = 'Mars/Olympus'", "clock.timezone", "Mars/Olympus"),
        ("[model]\nshard = 3\nshards = 2", "model.shard", "3"),
        ("[model]\nseed = true", "model.seed", "True"),
        ("[[output]]\nkind = 'ring'\nmax_files = 0", "output[0].max_files", "0"),
        ("[[output]]\nkind = 'ring'\nprefix = '../x'", "output[0].prefix", "../x"),
        ("[[output]]\nkind = 'tape'", "output[0].kind", "tape"),
        ("[[output]]\nkind = 'iface'", "output[0].interface", "''"),
        ("[[output]]\nkind = 'ring'\nflavour = 1", "output[0].flavour", "1"),
        ("[control]\nmode = 'rw'", "control.mode", "rw"),
        ("[metrics]\nport = 70000", "metrics.port", "70000"),
        ("[logging]\nlevel = 'loud'", "logging.level", "loud"),
        ("colour = 'blue'", "colour", "blue"),
        (
            "[[output]]\nkind='ring'\nname='a'\n[[output]]\nkind='flowlog'\nname='a'",
            "output[1].name",
            "a",
        ),
    ],
)
def test_a_bad_field_is_named_with_its_value(
    tmp_path: Path, text: str, field: str, value: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field} = ")
    assert value in message
    assert "\n" not in message


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[clock\nspeed = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=str(binary)):
        load_config(binary)


def test_flags_override_the_file_and_are_validated() -> None:
    config = parse_config(tomllib.loads("[clock]\nspeed = 2.0"))
    changed = apply_overrides(
        config, clock_speed=10.0, model_seed=7, ring_dir="/tmp/ring", model_path=None
    )
    assert changed.clock.speed == 10.0 and changed.model.seed == 7
    assert changed.outputs[0].directory == "/tmp/ring"
    assert config.clock.speed == 2.0
    with pytest.raises(ConfigError, match=r"command line: clock\.speed"):
        apply_overrides(config, clock_speed=0.0)


def test_octal_modes_and_several_outputs() -> None:
    config = parse_config(
        tomllib.loads(
            "[[output]]\nkind = 'ring'\nfile_mode = '0600'\non_rotate = ['/bin/true']\n"
            "[[output]]\nkind = 'flowlog'\npath = 'x.jsonl'\nlog_format = 'jsonl'\n"
        )
    )
    ring, log = config.outputs
    assert ring.file_mode == 0o600 and ring.on_rotate == ("/bin/true",)
    assert (log.name, log.log_format) == ("flowlog1", "jsonl")
