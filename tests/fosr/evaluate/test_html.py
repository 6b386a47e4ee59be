"""The HTML page of a report: layout, number formatting, escaping, images."""

from __future__ import annotations

import base64
import io
import re
import shutil
import struct
import zlib
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from fosr import __version__
from fosr.evaluate._html import format_cell, render_html
from fosr.evaluate.report import Cell, Figure, Report, Section, Table
from fosr.samples import build_lab_capture

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    """Return a valid grey PNG, built by hand (no plotting library needed)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def sample_report(inputs: dict[str, str] | None = None) -> Report:
    table = Table(
        "Distances <per> service",
        ["Service", "Flows", "JS", "± std", "Note"],
        [
            ["TCP/443", 12476, 0.012345, 0.001, "fine & dandy"],
            ["UDP/53", 3, None, None, None],
        ],
        note="Empty cells: nothing to compare.",
    )
    return Report(
        title="Packets: synthetic against real",
        kind="packets",
        inputs=inputs or {"real": "real.pcap", "synthetic": "synthetic.pcap"},
        results={"answer": 42},
        sections=[
            Section(
                "Summary", text="First paragraph.\n\nSecond paragraph.", tables=[table]
            ),
            Section(
                "Plots",
                figures=[Figure("Packet sizes", tiny_png(), caption="CDFs.")],
            ),
        ],
    )


class PageParser(HTMLParser):
    """Collect ids, image sources and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag == "img":
            self.images.append(found)
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12476, "12,476"),
        (0, "0"),
        (0.0, "0"),
        (0.012345, "0.0123"),
        (4.8183, "4.82"),
        (-0.5, "-0.500"),
        (2.0, "2"),
        (149.0, "149"),
        (175.3, "175"),
        (1234.6, "1,235"),
        (999.7, "1,000"),
        (0.99999, "1.00"),
        (0.000412, "0.000412"),
        (1.23e-7, "1.23e-07"),
        (float("nan"), "\u2014"),
        (float("inf"), "\u2014"),
        (None, "\u2014"),
        ("TCP/443", "TCP/443"),
    ],
)
def test_format_cell(value: Cell, text: str) -> None:
    assert format_cell(value) == text


def test_render_html_lays_out_header_contents_and_sections() -> None:
    page = render_html(sample_report(), now=NOW)
    parsed = parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "2026-01-02 03:04 UTC" in page
    assert f"fosr {__version__}" in page
    # every link of the table of contents leads somewhere on the page
    anchors = [link.removeprefix("#") for link in parsed.links]
    assert anchors and set(anchors) <= set(parsed.ids)
    assert "<p>First paragraph.</p>" in page
    assert "<p>Second paragraph.</p>" in page
    assert parsed.scripts == 0
    assert "http://" not in page and "https://" not in page


def test_render_html_formats_table_cells() -> None:
    page = render_html(sample_report(), now=NOW)
    assert "<caption>Distances &lt;per&gt; service</caption>" in page
    assert '<td class="num">12,476</td>' in page
    assert '<td class="num">0.0123</td>' in page
    assert '<td class="num std">± 0.00100</td>' in page
    assert '<td class="num empty">\u2014</td>' in page
    assert '<th scope="row" class="text">TCP/443</th>' in page
    assert "fine &amp; dandy" in page
    assert "Empty cells: nothing to compare." in page


def test_render_html_escapes_text() -> None:
    hostile = "<script>alert(1)</script>.pcap"
    page = render_html(sample_report({"real": hostile, "synthetic": 'a"b.pcap'}))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.pcap" in page
    assert hostile in "".join(parse(page).text)
    assert parse(page).scripts == 0


def test_render_html_embeds_png_images() -> None:
    page = render_html(sample_report(), now=NOW)
    (image,) = parse(page).images
    source = str(image["src"])
    assert source.startswith("data:image/png;base64,")
    assert base64.b64decode(source.split(",", 1)[1]) == tiny_png()
    assert (image["width"], image["height"]) == ("3", "2")
    assert image["alt"] == "Packet sizes"


def test_render_html_shows_raw_json() -> None:
    page = render_html(sample_report(), now=NOW)
    assert "<details>" in page
    assert "&quot;answer&quot;: 42" in page


def test_report_to_html_uses_renderer() -> None:
    assert "<title>Packets: synthetic against real</title>" in sample_report().to_html()


@pytest.mark.skipif(
    shutil.which("tshark") is None,
    reason="tshark is not installed (Debian package tshark)",
)
def test_packet_report_page_end_to_end(tmp_path: Path) -> None:
    from PIL import Image

    from fosr.evaluate.packets import evaluate_packets

    # a capture whose name would be markup if it were not escaped
    real = tmp_path / "<script>alert(1)<script>.pcap"  # no "/" in a file name
    synthetic = tmp_path / "synthetic.pcap"
    build_lab_capture(real, seed=1, sessions=6)
    build_lab_capture(synthetic, seed=2, sessions=6)
    page = evaluate_packets(real, synthetic, top_services=3).to_html()

    parsed = parse(page)
    assert parsed.scripts == 0
    assert "&lt;script&gt;alert(1)&lt;script&gt;.pcap" in page
    assert "<script>" not in page
    for caption in (
        "Distances over all connections",
        "Packets tshark marks",
        "Distances per service",
        "Medians per service",
    ):
        assert f"<caption>{caption}</caption>" in page
    sources = [str(image["src"]) for image in parsed.images]
    assert len(sources) >= 3
    for source in sources:
        png = base64.b64decode(source.removeprefix("data:image/png;base64,"))
        assert png.startswith(PNG_SIGNATURE)
        with Image.open(io.BytesIO(png)) as decoded:
            decoded.verify()
    # the ranking tables come before the first plot
    assert page.index("<table") < page.index("<img")
    assert re.search(r"<h2>1\. Summary</h2>", page)
