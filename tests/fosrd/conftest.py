"""Network namespaces, veth pairs and a peer-side capture for fosrd tests.

``veth`` makes two fresh network namespaces joined by a veth pair, both
ends up, names suffixed with a uuid so that parallel or aborted runs never
collide; it removes them afterwards whatever happens.  Traffic is only ever
sent into namespaces a test made.  ``open_capture`` receives on the peer
end with a raw packet socket made inside the peer namespace: a capture on
the sending end would miss frames sent with qdisc bypass (PLATFORM.md
section 5).  Tests that use them are marked ``root`` and skip with the
reason when the process cannot create namespaces.
"""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Callable, Iterator

import pytest
from netns_lab import Capture, VethPair, quiet_namespace, require_netns


@pytest.fixture
def veth() -> Iterator[VethPair]:
    """Yield a fresh veth pair between two fresh namespaces; remove them after."""
    require_netns()
    from pyroute2 import netns

    tag = uuid.uuid4().hex[:8]
    pair = VethPair(f"fosrt-tx-{tag}", f"fosrt-rx-{tag}", f"ft{tag}", f"fr{tag}")
    made: list[str] = []
    try:
        for name in (pair.tx_ns, pair.rx_ns):
            try:
                netns.create(name)
            except OSError as exc:
                _collect_quietly()
                pytest.skip(f"cannot create network namespace {name}: {exc}")
            made.append(name)
            quiet_namespace(name)
        pair.create_link()
        yield pair
    finally:
        for name in made:
            netns.remove(name)


@pytest.fixture
def open_capture() -> Iterator[Callable[[str, str], Capture]]:
    """Yield a function opening a capture on (namespace, interface)."""
    opened: list[Capture] = []

    def open_one(ns: str, ifname: str) -> Capture:
        capture = Capture(ns, ifname)
        opened.append(capture)
        return capture

    yield open_one
    for capture in opened:
        capture.close()


def _collect_quietly() -> None:
    """Collect the sockets pyroute2 leaves behind when a netns call fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
