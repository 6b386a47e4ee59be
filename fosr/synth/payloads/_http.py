"""HTTP/1.1 requests and responses (RFC 9112) of the wished sizes.

Client turn k is request k, server turn k the response to it.  A request
is a GET whose target grows a query string to reach the wished size, or,
above 512 bytes of padding, a POST with a body.  A response is ``200 OK``
whose Content-Length is exactly what follows the head, and whose body
suits the resource asked for (HTML, JavaScript, CSS or JSON text; random
bytes as ``application/octet-stream`` above 64 KiB).  Both keep the wished
size whenever it is at least their head (about 150 bytes); below that they
keep their real size.  A server turn with no request left to answer is a
``408 Request Timeout`` of the wished size, as servers send on idle
keep-alive connections.
"""

from __future__ import annotations

from collections import deque

from fosr.synth.payloads._dialogue import Dialogue, FlowContext, filler_text

__all__ = ["HttpDialogue", "fit_content_length"]

_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
_PATHS = ("/", "/index.html", "/static/app.js", "/static/style.css", "/api/items")
_QUERY_MAX = 512  # longer padding goes into a POST body instead
_TEXT_MAX = 1 << 16  # larger bodies are sent as binary downloads
_HTML = "text/html"
# content type and the text around the filler of each resource's body
_BODIES: dict[str, tuple[str, bytes, bytes]] = {
    "/": (_HTML, b"<!DOCTYPE html>\n<html><head><title>lab</title></head><body><p>",
          b"</p></body></html>\n"),
    "/index.html": (_HTML, b"<!DOCTYPE html>\n<html><body><p>",
                    b"</p></body></html>\n"),
    "/static/app.js": ("application/javascript", b'const text = "', b'";\n'),
    "/static/style.css": ("text/css", b"/* ", b" */\n"),
    "/api/items": ("application/json", b'{"items": "', b'"}'),
}  # fmt: skip


def fit_content_length(total: int, head: int) -> tuple[int, int] | None:
    """Split ``total`` bytes into a head, a Content-Length value and a body.

    ``head`` is the head's size without the Content-Length digits and
    without the one optional byte the caller can add.  Returns (body
    size, extra bytes 0 or 1), or None when ``total`` is too small.
    """
    for digits in range(1, 11):
        for extra in (0, 1):
            body = total - head - digits - extra
            if body >= 0 and len(str(body)) == digits:
                return body, extra
    return None


class HttpDialogue(Dialogue):
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, flow: FlowContext) -> None:
        super().__init__(flow)
        literal = str(flow.server)
        if flow.server.version == 6:
            literal = f"[{literal}]"  # RFC 3986 section 3.2.2
        self.host = flow.hostname or literal
        self.requests = 0
        self.asked: deque[str] = deque()

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        if forward:
            self.requests += 1
            return self.request(wished)
        if not self.asked:
            return self.response(wished, "408 Request Timeout", "/")
        return self.response(wished, "200 OK", self.asked.popleft())

    def request(self, wished: int) -> bytes:
        path = _PATHS[(self.requests - 1) % len(_PATHS)]
        self.asked.append(path)
        fields = (
            f"Host: {self.host}\r\nUser-Agent: {_AGENT}\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n"
        )
        get = f"GET {path} HTTP/1.1\r\n{fields}\r\n".encode()
        pad = wished - len(get)
        if pad <= 0:
            return get
        if pad <= _QUERY_MAX:
            query = b"?" + filler_text(pad - 1, self.requests).replace(b" ", b"+")
            return get.replace(path.encode(), path.encode() + query, 1)

        # a POST whose body fills the rest
        head = (
            f"POST /upload HTTP/1.1\r\n{fields}"
            "Content-Type: application/octet-stream\r\nContent-Length: \r\n\r\n"
        )
        body, extra = fit_content_length(wished, len(head)) or (0, 0)
        target = "/uploads" if extra else "/upload"
        return (
            f"POST {target} HTTP/1.1\r\n{fields}"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {body}\r\n\r\n"
        ).encode() + self.random(body)

    def response(self, wished: int, status: str, path: str) -> bytes:
        kind, before, after = _BODIES.get(path, _BODIES["/"])
        if wished > _TEXT_MAX:
            kind = "application/octet-stream"
        template = (
            f"HTTP/1.1 {status}\r\nServer: nginx\r\nContent-Type: {kind}\r\n"
            "Cache-Control: max-age=60{extra}\r\n"
            "Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n"
        )
        head = len(template.format(extra="", length=""))
        body, extra = fit_content_length(wished, head) or (0, 0)
        text = template.format(extra="0" * extra, length=body)
        return text.encode() + self.body(kind, before, after, body)

    def body(self, kind: str, before: bytes, after: bytes, size: int) -> bytes:
        """Return ``size`` bytes of content of type ``kind``."""
        if kind == "application/octet-stream":
            return self.random(size)
        room = size - len(before) - len(after)
        if room < 0:
            # too small for the wrapping: digits are valid JSON and text
            return b"1" * size
        return before + filler_text(room, self.requests) + after
