"""Payloads that protocol dissectors accept, of the sizes the model wished.

:func:`make_payloads` turns a :class:`PayloadSpec` (flows, and per packet
the direction, TCP flags and wished size) into payload bytes: DNS queries
and answers, HTTP/1.1 exchanges, TLS 1.3 records, NTP, SMTP dialogues, and
random bytes for everything else.  :func:`link_dns` makes DNS flows ask
for the names of the flows that follow them and answer with their
addresses.
"""

from fosr.synth.payloads._make import make_payloads
from fosr.synth.payloads._spec import (
    DNS_KINDS,
    SERVICE_KINDS,
    Kind,
    PayloadSpec,
    classify,
    link_dns,
)

__all__ = [
    "DNS_KINDS",
    "SERVICE_KINDS",
    "Kind",
    "PayloadSpec",
    "classify",
    "link_dns",
    "make_payloads",
]
