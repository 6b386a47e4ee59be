"""systemd/fosrd.service: the directives it must hold, and systemd's verdict.

``systemd-analyze verify`` refuses a unit whose ExecStart= binary does not
exist, and /usr/local/bin/fosrd exists only once installed; so it checks a
copy whose ExecStart= and ExecReload= point at an existing program, with
every other line unchanged.  It also exits 0 on unknown keys and bad
values (it only warns), so the test requires an empty stderr, and a control
case with a typo shows that the check can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "fosrd.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (apt-get install systemd)",
)


def directives(text: str) -> dict[str, list[str]]:
    """Return ``Section.Key`` -> values, in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


UNIT_DIRECTIVES = directives(UNIT.read_text())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("User", "fosrd"),
        ("AmbientCapabilities", "CAP_NET_RAW"),
        ("CapabilityBoundingSet", "CAP_NET_RAW"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_PACKET AF_NETLINK AF_INET AF_INET6"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("SystemCallFilter", "@system-service"),
        ("StateDirectory", "fosrd"),
        ("RuntimeDirectory", "fosrd"),
        ("UMask", "0027"),
    ],
)
def test_unit_sets(key: str, value: str) -> None:
    assert UNIT_DIRECTIVES.get(f"Service.{key}") == [value]


def test_unit_leaves_out_what_breaks_emission() -> None:
    for key in ("PrivateNetwork", "PrivateUsers", "MemoryDenyWriteExecute"):
        assert f"Service.{key}" not in UNIT_DIRECTIVES, key


def test_unit_has_a_watchdog_and_a_waiting_reload() -> None:
    watchdog = UNIT_DIRECTIVES["Service.WatchdogSec"][0]
    assert 10 <= int(watchdog) <= 120
    start = UNIT_DIRECTIVES["Service.ExecStart"][0].split()
    assert start[:3] == ["/usr/local/bin/fosrd", "--config", "/etc/fosrd/fosrd.toml"]
    # the socket in the runtime folder, the ring in the state folder
    assert start[start.index("--socket") + 1] == "/run/fosrd/control.sock"
    assert start[start.index("--ring-dir") + 1].startswith("/var/lib/fosrd/")
    assert UNIT_DIRECTIVES["Service.ExecReload"] == [
        "/usr/local/bin/fosrctl --socket /run/fosrd/control.sock reload"
    ]


def test_command_lines_use_flags_the_programs_accept() -> None:
    for module, flags in (
        ("fosrd", ["--config", "--socket", "--ring-dir"]),
        ("fosrd.ctl", ["--socket", "reload"]),
    ):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        for flag in flags:
            assert flag in result.stdout, (module, flag)


def verifiable_copy(tmp_path: Path, extra: str = "") -> Path:
    """Write the unit with its programs replaced by one that exists."""
    true = shutil.which("true")
    assert true is not None
    text = UNIT.read_text()
    text = text.replace("/usr/local/bin/fosrd ", f"{true} ")
    text = text.replace("/usr/local/bin/fosrctl ", f"{true} ")
    text = text.replace("[Service]\n", f"[Service]\n{extra}", 1)
    copy = tmp_path / "fosrd.service"
    copy.write_text(text)
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60)


@needs_analyze
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    result = analyze("verify", str(verifiable_copy(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@needs_analyze
def test_systemd_analyze_verify_catches_a_typo(tmp_path: Path) -> None:
    # control case: the check above must be able to fail
    result = analyze("verify", str(verifiable_copy(tmp_path, "WatchdgSec=30\n")))
    assert "Unknown key" in result.stderr


@needs_analyze
def test_systemd_analyze_security_exposure_is_low(tmp_path: Path) -> None:
    result = analyze("security", "--offline=yes", str(verifiable_copy(tmp_path)))
    if "--offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze has no --offline: {result.stderr.strip()}")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout[-500:]
    # 10 is unprotected; with CAP_NET_RAW and AF_PACKET, about 2 is the floor
    assert float(match.group(1)) <= 3.0
