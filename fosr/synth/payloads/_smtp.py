"""An SMTP mail submission dialogue (RFC 5321).

The dialogue follows a script: greeting, EHLO, MAIL FROM, RCPT TO, DATA,
the message, QUIT.  Each turn of the flow plays the next script step of
its side, skipping the other side's steps when the flow's turns do not
alternate; after the script, the client sends NOOP and the server "250".

Sizes: server replies reach the wished size with longer reply text (and
continuation lines, each at most 512 bytes, RFC 5321 section 4.5.3.1.5);
the message body reaches it with text lines of at most 78 bytes; the
client's commands keep their real size.
"""

from __future__ import annotations

import ipaddress

from fosr.synth.payloads._dialogue import Dialogue, FlowContext, filler_text

__all__ = ["SmtpDialogue", "smtp_reply"]

MAX_REPLY_LINE = 512  # including CRLF
_BODY_LINE = 76  # text characters per body line, as RFC 5322 suggests (78)


def smtp_reply(code: int, lines: list[str], wished: int) -> bytes:
    """Return a reply of ``lines`` (multi-line when several), ``wished`` bytes.

    Padding lengthens the last line up to 512 bytes, then adds
    continuation lines; below the reply's own size it is left as is.
    """
    text = [line.encode() for line in lines]
    size = sum(len(line) + 6 for line in text)
    extra = max(wished - size, 0)
    grow = min(extra, MAX_REPLY_LINE - 6 - len(text[-1]) - 1)
    more = extra - grow
    if 0 < more < 7:
        grow -= 7 - more  # room for one continuation line of 7 bytes
        more = 7
    if grow > 0:
        text[-1] += b" " + filler_text(grow - 1)
    while more > 0:
        line = min(more, MAX_REPLY_LINE)
        if 0 < more - line < 7:
            line -= 7
        text.insert(-1, filler_text(line - 6, more).strip(b" ").ljust(line - 6, b"x"))
        more -= line
    head = [b"%d-%s\r\n" % (code, line) for line in text[:-1]]
    return b"".join(head) + b"%d %s\r\n" % (code, text[-1])


class SmtpDialogue(Dialogue):
    """A client submitting one message to a server."""

    def __init__(self, flow: FlowContext) -> None:
        super().__init__(flow)
        server = flow.hostname or _literal(flow.server)
        client = _literal(flow.client)
        self.script: list[tuple[bool, str]] = [
            (False, f"220 {server} ESMTP"),
            (True, f"EHLO {client}"),
            (False, f"250 {server}|PIPELINING|SIZE 10240000|8BITMIME|SMTPUTF8"),
            (True, "MAIL FROM:<alice@example.com>"),
            (False, "250 2.1.0 Ok"),
            (True, "RCPT TO:<bob@example.org>"),
            (False, "250 2.1.5 Ok"),
            (True, "DATA"),
            (False, "354 End data with <CR><LF>.<CR><LF>"),
            (True, ""),  # the message
            (False, "250 2.0.0 Ok: queued"),
            (True, "QUIT"),
            (False, "221 2.0.0 Bye"),
        ]
        self.step = 0

    def push(self, forward: bool, wished: int, ts_ns: int) -> bytes:
        line = "NOOP" if forward else "250 2.0.0 Ok"
        for at in range(self.step, len(self.script)):
            if self.script[at][0] == forward:
                line = self.script[at][1]
                self.step = at + 1
                break
        else:
            self.step = len(self.script)
        if not forward:
            code, _, text = line.partition(" ")
            return smtp_reply(int(code), text.split("|"), wished)
        if line:
            return line.encode() + b"\r\n"
        return self.message(wished)

    def message(self, wished: int) -> bytes:
        """Return a message ending in CRLF.CRLF, ``wished`` bytes if it fits."""
        head = (
            b"From: Alice <alice@example.com>\r\nTo: Bob <bob@example.org>\r\n"
            b"Subject: report\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        )
        end = b"\r\n.\r\n"
        room = max(wished - len(head) - len(end), 1)

        # text with a CRLF every 78 bytes, only where both bytes fit
        text = bytearray(filler_text(room))
        for at in range(_BODY_LINE, room - 1, _BODY_LINE + 2):
            text[at : at + 2] = b"\r\n"
        return head + bytes(text) + end


def _literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Return an address literal: ``[192.0.2.1]``, ``[IPv6:2001:db8::1]``.

    RFC 5321 section 4.1.3.
    """
    if address.version == 6:
        return f"[IPv6:{address}]"
    return f"[{address}]"
