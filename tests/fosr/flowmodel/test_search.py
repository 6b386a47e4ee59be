"""Binary search of many values at once."""

from __future__ import annotations

import numpy as np
import pytest

from fosr.flowmodel._search import search_many


@pytest.mark.parametrize("n_values", [0, 10, 50_000])
def test_search_many_equals_searchsorted(n_values: int) -> None:
    rng = np.random.default_rng(n_values)
    keys = np.sort(rng.integers(0, 1000, 20_000))
    values = rng.integers(-5, 1005, n_values)
    found = search_many(keys, values)
    assert found.dtype == np.int64
    assert np.array_equal(found, np.searchsorted(keys, values))
