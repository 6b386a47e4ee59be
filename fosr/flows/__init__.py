"""Flow records: the table, readers and writers of record formats, pairing."""

from fosr.flows.table import (
    FLOW_COLUMNS,
    PROTO_NAMES,
    PROTO_NUMBERS,
    FlowTable,
    format_tcp_flags,
    parse_tcp_flags,
)

__all__ = [
    "FLOW_COLUMNS",
    "PROTO_NAMES",
    "PROTO_NUMBERS",
    "FlowTable",
    "format_tcp_flags",
    "parse_tcp_flags",
]
