"""Fuzzed input files: captures, flow records, configuration, topology.

A short run of each target of bench/fuzz_inputs.py (which runs the long
version), checks that its harness does catch what it must, and keeps the
cases it found once as plain regression tests.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from fosr.capture import read_capture
from fosr.errors import ConfigError, FosrError, InputError, RecordError
from fosr.flows.readers import read_flow_records
from fosr.topology import load_topology
from fosrd.config import load_config

Loader = Callable[[Path, random.Random], object]
BENCH = Path(__file__).resolve().parents[2] / "bench" / "fuzz_inputs.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_inputs", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_inputs"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load_bench()


@pytest.mark.parametrize("target", fuzz.TARGETS)
def test_short_fuzz_run_has_no_failures(target: str, tmp_path: Path) -> None:
    result = fuzz.run_target(target, 200, seed=0, timeout_s=5.0, scratch=tmp_path)
    failures = "\n".join(f"case {i} ({m}): {t}" for i, m, t in result.failures[:3])
    assert not result.failures, failures
    assert result.cases == 200
    # the cases reach both sides: some files load, many are refused
    assert result.loaded > 0
    assert sum(result.errors.values()) > 20
    assert result.loaded + sum(result.errors.values()) == 200


PLAIN_LOADERS = {
    "capture": lambda path, rng: read_capture(path, strict=True),
    "flows": lambda path, rng: read_flow_records(path),
    "config": lambda path, rng: load_config(path),
    "topology": lambda path, rng: load_topology(path),
}


def test_seeds_are_valid_inputs(tmp_path: Path) -> None:
    # a fuzz run from broken seeds would only ever test the first check
    targets = fuzz.make_targets(tmp_path)
    for name, target in targets.items():
        for index, (suffix, data) in enumerate(target.seeds):
            path = tmp_path / f"{name}{index}{suffix}"
            path.write_bytes(data)
            plain = dataclasses.replace(target, load=PLAIN_LOADERS[name])
            assert fuzz.run_case(plain, path, random.Random(0), 5.0) == "", path


def _target(load: Loader, family: type[FosrError] = InputError) -> object:
    return fuzz.Target(seeds=[], mutators={}, load=load, family=family)


def _raise(error: BaseException) -> Loader:
    def load(path: Path, rng: random.Random) -> object:
        raise error

    return load


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("x"), "ValueError"),
        (KeyError("x"), "KeyError"),
        (InputError("two\nlines", path="PATH"), "malformed message"),
        (InputError("no file named"), "malformed message"),
        (
            ConfigError("PATH: wrong family"),
            "ConfigError where InputError was expected",
        ),
    ],
)
def test_harness_fails_what_it_must(
    error: BaseException, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / "case.bin"
    if isinstance(error, FosrError):
        error = type(error)(str(error).replace("PATH", str(path)))
    with pytest.raises(AssertionError, match=reason):
        fuzz.run_case(_target(_raise(error)), path, random.Random(0), 5.0)


def test_harness_reports_a_hang_and_a_warning(tmp_path: Path) -> None:
    def hang(path: Path, rng: random.Random) -> object:
        while True:
            time.sleep(0.01)

    def warn(path: Path, rng: random.Random) -> object:
        import numpy as np

        return np.array([1e300]) * 1e300  # overflow: a RuntimeWarning

    path = tmp_path / "case.bin"
    with pytest.raises(AssertionError, match="no answer after 0.2 s"):
        fuzz.run_case(_target(hang), path, random.Random(0), 0.2)
    with pytest.raises(AssertionError, match="RuntimeWarning"):
        fuzz.run_case(_target(warn), path, random.Random(0), 5.0)


def test_harness_accepts_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "case.bin"
    error = RecordError("bad", path=path, line=2, column="Bytes")
    assert fuzz.run_case(_target(_raise(error)), path, random.Random(0), 5.0) == (
        "RecordError"
    )


# cases the fuzzer found, kept as plain tests


@pytest.mark.parametrize("depth", [2000, 50_000])
def test_deeply_nested_toml_is_a_config_error(depth: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * depth + "]" * depth + "\n")
    for load in (load_config, load_topology):
        with pytest.raises(ConfigError, match="nested too deeply") as caught:
            load(path)
        assert str(caught.value).startswith(f"{path}: ")


def test_overlong_time_zone_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "fosrd.toml"
    path.write_text('[clock]\ntimezone = "' + "a" * 300 + '"\n')
    with pytest.raises(ConfigError, match="clock.timezone"):
        load_config(path)


UGR16_HEADER = "te,td,sa,da,sp,dp,pr,flg,fwd,stos,pkt,byt,lable\n"
UGR16_ROW = (
    "2016-04-11 08:00:01,{td},1.2.3.4,1.2.3.5,{sp},80,TCP,.A....,0,0,{pkt},2,x\n"
)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (UGR16_ROW.format(td="1e300", sp="1", pkt="1"), "td"),  # int64 cast
        (UGR16_ROW.format(td="0.1", sp="9" * 30, pkt="1"), "sp"),  # port overflow
        (UGR16_ROW.format(td="0.1", sp="1", pkt="9" * 30), "pkt"),  # count overflow
    ],
)
def test_numbers_past_int64_are_record_errors(
    row: str, column: str, tmp_path: Path
) -> None:
    path = tmp_path / "records.csv"
    path.write_text(UGR16_HEADER + row)
    with pytest.raises(RecordError) as caught:
        read_flow_records(path)
    assert caught.value.column == column
    assert caught.value.path == str(path)


def test_header_field_past_csv_limit_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text('"' + "x" * 200_000 + "\n1,2\n")
    with pytest.raises(InputError) as caught:
        read_flow_records(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", ["true", "5", "1.5"])
def test_outside_range_must_be_a_string(value: str, tmp_path: Path) -> None:
    path = tmp_path / "topology.toml"
    path.write_text(f"[outside]\nranges = [{value}]\n")
    with pytest.raises(ConfigError, match=r"outside\.ranges\[0\]: .* is not a string"):
        load_topology(path)
