"""Limits: positive ints, defaults as documented."""

from __future__ import annotations

import pytest

from fosr.bundle import Limits


def test_limits_defaults_are_the_documented_ones() -> None:
    limits = Limits()
    assert limits.max_file_bytes == 256 << 20
    assert limits.max_total_bytes == 512 << 20
    assert limits.max_json_depth == 64


@pytest.mark.parametrize("value", [0, -1, 1.5, True, None])
def test_limits_refuse_a_value_that_is_not_a_positive_int(value: object) -> None:
    with pytest.raises(ValueError, match="max_members must be a positive int"):
        Limits(max_members=value)  # type: ignore[arg-type]
