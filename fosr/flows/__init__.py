"""Flow records: the table, readers and writers of record formats, pairing."""

from fosr.flows.oneway import OneWayTable
from fosr.flows.pairing import pair_oneway
from fosr.flows.readers import (
    FORMATS,
    ReadReport,
    read_flow_records,
    read_flows_csv,
    read_nfdump_csv,
    read_ugr16_csv,
    read_zeek_conn,
    sniff_format,
    write_flows_csv,
)
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
    "FORMATS",
    "PROTO_NAMES",
    "PROTO_NUMBERS",
    "FlowTable",
    "OneWayTable",
    "ReadReport",
    "format_tcp_flags",
    "pair_oneway",
    "parse_tcp_flags",
    "read_flow_records",
    "read_flows_csv",
    "read_nfdump_csv",
    "read_ugr16_csv",
    "read_zeek_conn",
    "sniff_format",
    "write_flows_csv",
]
