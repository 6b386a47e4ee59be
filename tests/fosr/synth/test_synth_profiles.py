"""Tests of fosr.synth._profiles: option layouts by operating system."""

from __future__ import annotations

import pytest

from fosr.synth import OS_PROFILES, OsProfile, profile_id
from fosr.synth._profiles import pack_options, syn_ack_tokens


def by_name(name: str) -> OsProfile:
    return OS_PROFILES[profile_id(name)]


def test_profile_id_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="plan9"):
        profile_id("plan9")


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        # p0f v3 olayout strings, written out as bytes
        ("linux", "020405b4 0402 080a0000000000000000 01 030307"),
        ("windows", "020405b4 01 030308 01 01 0402"),
        ("macos", "020405b4 01 030306 01 01 080a0000000000000000 0402 00 00"),
        ("iot", "020405b4"),
    ],
)
def test_pack_options_writes_the_syn_layout(name: str, wire: str) -> None:
    profile = by_name(name)
    layout = pack_options(profile.syn_options, profile)
    assert layout.data.hex() == wire.replace(" ", "")
    assert len(layout.data) % 4 == 0


def test_syn_ack_answers_only_offered_options() -> None:
    # Windows offers no timestamps, so a Linux server leaves them out
    tokens = syn_ack_tokens(by_name("linux"), by_name("windows"))
    assert tokens == ("mss", "sok", "nop", "ws")
    # an lwIP device offers MSS only
    assert syn_ack_tokens(by_name("macos"), by_name("iot")) == ("mss", "eol")


def test_syn_ack_between_equals_keeps_the_full_layout() -> None:
    linux = by_name("linux")
    assert syn_ack_tokens(linux, linux) == linux.syn_options
