"""SMTP server and client, sans-IO (RFC 5321).

Scope: the mail transaction as a 1990s ISP's mail host and its subscribers'
mail programs spoke it, with the service extensions a dial-up line profits from:

- RFC 5321 Simple Mail Transfer Protocol: HELO, EHLO, MAIL, RCPT, DATA, RSET,
  NOOP, QUIT, VRFY (answered 252); reply codes of section 4.2, the limits of
  section 4.5.3.1 (command line 512 octets, text line 1000 octets, 100
  recipients) and the timeouts of section 4.5.3.2; dot-stuffing of 4.5.2.
- RFC 1870 SIZE (declared size on MAIL, advertised limit honoured by the client),
- RFC 2920 PIPELINING (the server answers every command in a chunk, in order;
  the client sends MAIL, all RCPTs and DATA together),
- RFC 6152 8BITMIME (BODY=8BITMIME accepted, sent by the client for 8-bit data),
- RFC 2034 ENHANCEDSTATUSCODES (class.subject.detail after the reply code),
- RFC 3207 STARTTLS on the server, when given a TLS context
  (:mod:`dialsim.proto.stream`).

The server measures text lines as the data arrives (4.5.3.1.6, the
transparency dot not counted) at C speed, hands its replies out as the
transport takes them, accepts postmaster (4.5.1) and this host's address
literals (4.1.3) as local, and answers a shutdown with 421.

Not implemented: AUTH, CHUNKING/BDAT, SMTPUTF8, DSN, EXPN (502); STARTTLS on
the client.

The server checks recipients through an injected :class:`RecipientPolicy`;
storing a message is an effect: at the end of DATA it asks its driver to
deliver (:class:`DeliverMessage`) and reads no further command until the
answer comes (:meth:`SmtpServer.complete`).  Its reply 250 is sent only then,
when the store says the message is durable (RFC 5321 4.1.1.4 and 6.1); a
failure is answered 451.  The driver chooses the store (a durable Maildir off
the event loop, or a scratch one answered at once).  Both machines follow
:class:`dialsim.proto.machine.Machine` (``receive``, ``output``, ``events``,
``next_deadline``, ``on_timer``, plus ``connection_lost``); nothing here reads
a clock.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from enum import StrEnum
from typing import ClassVar, Protocol

from dialsim.proto.errors import LocalProtocolError
from dialsim.proto.events import (
    CloseRequested,
    CommandReceived,
    Effect,
    Event,
    SessionEnded,
    SessionEvent,
)
from dialsim.proto.stream import HIGH_WATER, SessionStream, take_replies

__all__ = [
    "RecipientPolicy",
    "DeliverMessage",
    "SmtpServer",
    "SmtpClient",
    "ClientState",
    "MessageAccepted",
    "MessageRejected",
    "GreetingReceived",
    "ReplyReceived",
    "MailSent",
    "ClientSessionEnded",
    "dot_stuff",
    "dot_unstuff",
    "SERVER_TIMEOUT",
    "MAX_COMMAND_LINE",
    "MAX_TEXT_LINE",
]

# RFC 5321 4.5.3.1.4 / 4.5.3.1.6: lengths include the CRLF.
MAX_COMMAND_LINE = 512
MAX_TEXT_LINE = 1000
MAX_RECIPIENTS = 100  # 4.5.3.1.8: the minimum a server must accept
SERVER_TIMEOUT = 300.0  # 4.5.3.2.7: server waits at least 5 minutes for a command

# Client timeouts, RFC 5321 4.5.3.2.1 .. 4.5.3.2.6 (seconds).
CLIENT_TIMEOUTS = {
    "GREETING": 300.0,
    "EHLO": 300.0,
    "HELO": 300.0,
    "MAIL": 300.0,
    "RCPT": 300.0,
    "DATA": 120.0,
    "EOM": 600.0,
    "RSET": 300.0,
    "NOOP": 300.0,
    "QUIT": 300.0,
}


# --------------------------------------------------------------------------- events


class RecipientPolicy(Protocol):
    """Which recipients the server accepts (see :mod:`dialsim.mail.delivery`)."""

    def recipient_ok(self, address: str, *, from_subscriber: bool) -> tuple[int, str]:
        """(250, "2.1.5 ...") to accept a recipient, or (550/551/553/554, "5.x.y ...")."""
        ...


@dataclass(frozen=True, slots=True)
class DeliverMessage(Effect):
    """Server: store this message for these recipients durably.  Answer: None
    once it is durable (the server then says 250), or the exception that
    prevented it (451)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageAccepted(SessionEvent):
    """Server: a message was delivered to the sink and answered 250."""

    sender: str
    recipients: tuple[str, ...]
    size: int
    now: float


@dataclass(frozen=True, slots=True)
class MessageRejected(SessionEvent):
    """Server: the message data was received but refused (552, 500, 451)."""

    code: int
    reason: str
    size: int
    now: float


@dataclass(frozen=True, slots=True)
class GreetingReceived(SessionEvent):
    """Client: the server's 220 greeting arrived."""

    code: int
    text: str
    now: float


@dataclass(frozen=True, slots=True)
class ReplyReceived(SessionEvent):
    """Client: one reply, with the timing and octets of the command it answers.

    ``command`` is the verb ("EHLO", "MAIL", "RCPT", "DATA", "RSET", "QUIT" ...),
    "GREETING" for the server's opening reply (``t_sent`` is the time the client
    was created, ``bytes_up`` 0) and "EOM" for the message content with its
    terminating "." (``bytes_up`` is the whole stuffed message).
    """

    command: str
    code: int
    text: str
    t_sent: float
    t_first_byte: float
    t_done: float
    bytes_up: int
    bytes_down: int
    mail_index: int | None = None


@dataclass(frozen=True, slots=True)
class MailSent(SessionEvent):
    """Client: the outcome of one ``send_mail`` (ok only after 250 to the end of data).

    ``code`` is the deciding reply code, 552 for a message skipped because it
    exceeds the server's SIZE, 0 when the connection ended first.
    """

    index: int
    ok: bool
    code: int
    recipients_accepted: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClientSessionEnded(SessionEvent):
    """Client: the session is over ("quit", "service closing", "timeout", ...)."""

    reason: str
    now: float


# --------------------------------------------------------------------------- helpers


def dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: double a leading "." on every line; ensure a final CRLF.

    Returns the message as it goes after DATA, *without* the terminating ".CRLF".
    """
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return (b"\r\n" + data).replace(b"\r\n.", b"\r\n..")[2:]


def dot_unstuff(data: bytes) -> bytes:
    """Undo :func:`dot_stuff`: drop the first "." of every line that starts with one."""
    return (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:]


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_STRING = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"'
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*"
_ADDR_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]+\]"
_MAILBOX = rf"(?:{_DOT_STRING}|{_QUOTED})@(?:{_DOMAIN}|{_ADDR_LITERAL})"
_ROUTE = rf"@{_DOMAIN}(?:,@{_DOMAIN})*:"
_PATH_RE = re.compile(rf"<(?:{_ROUTE})?({_MAILBOX})>")
_MAIL_RE = re.compile(r"FROM:\s*(<[^>]*>)(.*)", re.IGNORECASE | re.DOTALL)
_RCPT_RE = re.compile(r"TO:\s*(<[^>]*>)(.*)", re.IGNORECASE | re.DOTALL)
_PARAM_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?")
_VERB_RE = re.compile(rb"([A-Za-z]{1,16})(?: (.*))?", re.DOTALL)
_MAX_RUN = MAX_TEXT_LINE - 1  # octets of a text line before its LF: 998 of text and the CR
_REPLY_RE = re.compile(rb"(\d{3})([ -]?)(.*)", re.DOTALL)


def _parse_path(text: str) -> str | None:
    """``<user@domain>`` (with an optional source route, ignored) -> "user@domain"."""
    m = _PATH_RE.fullmatch(text)
    return m.group(1) if m else None


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, from "192.0.2.1", "::1" or an RFC 5321 4.1.3 address
    literal ("[192.0.2.1]", "[IPv6:::1]"); None if it is none."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text = text[5:]
        elif ":" in text:
            return None  # an IPv6 literal needs its "IPv6:" tag
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


def _format_reply(code: int, text: str) -> bytes:
    lines = text.split("\n")
    out = [f"{code}-{line}\r\n" for line in lines[:-1]]
    out.append(f"{code} {lines[-1]}\r\n")
    return "".join(out).encode("ascii", "replace")


# --------------------------------------------------------------------------- server

INIT, READY, MAIL, RCPT, DATA, CLOSED = "INIT", "READY", "MAIL", "RCPT", "DATA", "CLOSED"


class SmtpServer:
    """RFC 5321 server side of one connection.

    ``subscriber_client`` is True when the connection comes from a dial-up
    subscriber of this ISP: such clients may relay to any domain; anyone may
    send to ``local_domains``; everything else is refused 554 5.7.1.
    The greeting 220 is queued at construction.  At the end of a message's
    data the server emits :class:`DeliverMessage` and waits: the driver
    carries it out and calls :meth:`complete` with the store's answer.
    """

    # state -> {input: next state}.  An input missing from a state's row is a
    # bad sequence (503).  A handler returns True when the command succeeded;
    # only then is the transition taken.  "EOM" is the end of message data.
    TRANSITIONS: ClassVar[dict[str, dict[str, str]]] = {
        INIT: {
            "HELO": READY,
            "EHLO": READY,
            "RSET": INIT,
            "NOOP": INIT,
            "VRFY": INIT,
            "QUIT": CLOSED,
        },
        READY: {
            "HELO": READY,
            "EHLO": READY,
            "STARTTLS": INIT,  # RFC 3207 4.2: the session starts over under TLS
            "MAIL": MAIL,
            "RSET": READY,
            "NOOP": READY,
            "VRFY": READY,
            "QUIT": CLOSED,
        },
        MAIL: {
            "HELO": READY,
            "EHLO": READY,
            "RCPT": RCPT,
            "DATA": MAIL,
            "RSET": READY,
            "NOOP": MAIL,
            "VRFY": MAIL,
            "QUIT": CLOSED,
        },
        RCPT: {
            "HELO": READY,
            "EHLO": READY,
            "RCPT": RCPT,
            "DATA": DATA,
            "RSET": READY,
            "NOOP": RCPT,
            "VRFY": RCPT,
            "QUIT": CLOSED,
        },
        DATA: {"EOM": READY},
        CLOSED: {},
    }
    # Known to RFC 5321 or common extensions, but not offered here (STARTTLS
    # only without a certificate).
    NOT_IMPLEMENTED: ClassVar[frozenset[str]] = frozenset(
        {"EXPN", "HELP", "TURN", "ETRN", "BDAT", "STARTTLS", "AUTH", "SEND", "SOML", "SAML"}
    )
    _DISPATCH: ClassVar[dict[str, Callable[[SmtpServer, str, float], bool]]] = {}

    def __init__(
        self,
        policy: RecipientPolicy,
        *,
        hostname: str = "mail.isp.example",
        local_domains: Iterable[str] = ("isp.example",),
        subscriber_client: bool = False,
        max_size: int = 10 * 1024 * 1024,
        max_errors: int = 10,
        max_recipients: int = MAX_RECIPIENTS,
        timeout: float = SERVER_TIMEOUT,
        received_header: bool = False,
        local_addresses: Iterable[str] = (),
        tls_context: ssl.SSLContext | None = None,
        busy: str | None = None,
        now: float,
    ) -> None:
        self.policy = policy
        self.hostname = hostname
        domains = [d.lower() for d in local_domains]
        self.domain = domains[0] if domains else hostname.lower()
        self.local_domains = frozenset(domains)
        # RFC 5321 4.1.3 address literals naming this host: user@[192.0.2.1] is local
        self.local_addresses = frozenset(_ip(a) for a in local_addresses) - {None}
        self.tls_context = tls_context
        self.subscriber_client = subscriber_client
        self.max_size = max_size
        self.max_errors = max_errors
        self.max_recipients = max_recipients
        self.timeout = timeout
        self.received_header = received_header
        self.state = INIT
        self.esmtp = False
        self.helo_name = ""
        # counters
        self.commands = 0
        self.errors = 0  # 500/501/502/503/555 replies: the error budget
        self.long_lines = 0
        self.recipients_refused = 0
        self.messages_accepted = 0
        self.messages_rejected = 0
        # buffers
        self._inbuf = bytearray()
        self._stream = SessionStream()
        self._events: list[Event] = []
        self._awaiting: DeliverMessage | None = None  # the delivery whose answer we wait for
        self._shutting_down = False
        self._discarding = False
        self._last_activity = self._now = now
        self.tls_failure: str | None = None
        self._reset_transaction()
        if busy is not None:
            self._close(421, f"4.7.0 {hostname} {busy}", "busy")
            return
        self._reply(220, f"{hostname} ESMTP dialsim ready")

    # -- sans-IO surface
    def receive(self, data: bytes, now: float) -> None:
        """Feed bytes from the client; replies queue for ``output()``."""
        if self.state == CLOSED:
            return
        self._last_activity = self._now = now
        data = self._stream.receive(data)
        tls = self._stream.tls
        if tls is not None and tls.failed:  # no reply can reach the client any more
            self.tls_failure = tls.failed
            self.state = CLOSED
            self._events.append(SessionEnded("tls_failed", now))
            self._events.append(CloseRequested(now))
            return
        self._inbuf += data
        self._process(now)

    def output(self, now: float) -> list[bytes]:
        """The next replies, at most :data:`~dialsim.proto.stream.CHUNK` octets
        (TLS records after STARTTLS); taking them lets held pipelined commands go on."""
        chunks = take_replies(self._stream, self._process, now)
        if chunks:  # still sending to the client: not idle (a slow reader mid-RETR)
            self._last_activity = max(self._last_activity, now)
        return chunks

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def complete(self, effect: DeliverMessage, result: object, now: float) -> None:
        """The store's answer to :class:`DeliverMessage`: None when the message
        is durable, else the exception that prevented it."""
        if effect is not self._awaiting:
            return
        self._awaiting = None
        if self.state == CLOSED:  # the connection went away meanwhile
            return
        self._last_activity = self._now = now
        self._delivered(effect, result, now)
        if self._shutting_down:
            self.shutdown(now)
        self._process(now)

    def shutdown(self, now: float) -> None:
        """The host is going down: 421 and close.  A message still arriving is
        discarded (never half-stored); a delivery under way is answered first."""
        if self.state == CLOSED:
            return
        self._shutting_down = True
        if self._awaiting is None:
            self._now = now
            self._close(421, f"4.3.2 {self.hostname} shutting down, try again later", "shutdown")

    @property
    def tls_active(self) -> bool:
        return self._stream.tls_active

    def transport_busy(self, now: float) -> None:
        """The transport is still carrying our output (a real server would be
        blocked in write(), not waiting for a command): not idle, so the
        inactivity timer restarts from ``now``."""
        self._last_activity = max(self._last_activity, now)

    def next_deadline(self) -> float | None:
        if self.state == CLOSED or self._awaiting is not None:
            return None  # waiting for the store is not waiting for a command
        return self._last_activity + self.timeout

    def on_timer(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._now = now
            self._close(421, f"4.4.2 {self.hostname} timeout, closing connection", "timeout")

    def connection_lost(self, now: float) -> None:
        """The transport is gone; a message still in DATA is discarded."""
        if self.state != CLOSED:
            self.state = CLOSED
            self._inbuf.clear()
            self._msg = bytearray()
            self._events.append(SessionEnded("connection lost", now))

    # -- internals
    def _reset_transaction(self) -> None:
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.declared_size: int | None = None
        self._msg = bytearray()
        self._msg_dropped = 0  # octets of an oversize message not kept
        self._line_run = 0  # octets of the message's current line so far (CR included)
        self._line_dot = False  # the current line starts with "." (the stuffing dot)
        self._long_line = False  # a line over 1000 octets has arrived

    def _reply(self, code: int, text: str) -> None:
        self._stream.write(_format_reply(code, text))

    def _error(self, code: int, text: str) -> None:
        self._reply(code, text)
        self.errors += 1
        if self.errors >= self.max_errors and self.state != CLOSED:
            self._close(421, f"4.7.0 {self.hostname} too many errors, closing", "errors")

    def _close(self, code: int, text: str, reason: str) -> None:
        self._reply(code, text)
        self.state = CLOSED
        self._inbuf.clear()
        self._msg = bytearray()
        self._stream.close_tls()
        self._events.append(SessionEnded(reason, self._now))
        self._events.append(CloseRequested(self._now))

    def _process(self, now: float) -> None:
        buf = self._inbuf
        while self.state != CLOSED and self._awaiting is None:
            if self.state == DATA:  # message data: no replies, take it whatever the backlog
                if not self._take_data(now):
                    return
                continue
            if self._stream.backlog >= HIGH_WATER:
                return  # the client is not reading: answer more once it does
            i = buf.find(b"\n")
            if self._discarding:
                if i < 0:
                    buf.clear()
                    return
                del buf[: i + 1]
                self._discarding = False
                self.long_lines += 1
                self._error(500, "5.5.6 Line too long")
                continue
            if i < 0:
                if len(buf) >= MAX_COMMAND_LINE:
                    buf.clear()
                    self._discarding = True
                return
            line = bytes(buf[: i + 1])
            del buf[: i + 1]
            if len(line) > MAX_COMMAND_LINE:
                self.long_lines += 1
                self._error(500, "5.5.6 Line too long")
                continue
            self._command(line.rstrip(b"\r\n"), now)

    def _command(self, line: bytes, now: float) -> None:
        self.commands += 1
        m = _VERB_RE.fullmatch(line)
        if m is None:
            self._events.append(CommandReceived("", now))
            self._error(500, "5.5.2 Syntax error, command unrecognized")
            return
        verb = m.group(1).decode("ascii").upper()
        arg = (m.group(2) or b"").decode("latin-1").strip()
        self._events.append(CommandReceived(verb, now))
        handler = self._DISPATCH.get(verb)
        if verb == "STARTTLS" and self.tls_context is None:
            handler = None  # not offered without a certificate
        if handler is None:
            if verb in self.NOT_IMPLEMENTED:
                self._error(502, "5.5.1 Command not implemented")
            else:
                self._error(500, "5.5.2 Syntax error, command unrecognized")
            return
        row = self.TRANSITIONS[self.state]
        if verb not in row:
            self._error(503, "5.5.1 Bad sequence of commands")
            return
        if handler(self, arg, now) and self.state != CLOSED:
            self.state = row[verb]

    def _take_data(self, now: float) -> bool:
        """Move buffered input into the message; True once CRLF.CRLF ended it."""
        msg = self._msg
        start = max(0, len(msg) - 4)
        new = len(msg)
        msg += self._inbuf
        self._inbuf.clear()
        end = msg.find(b"\r\n.\r\n", start)
        self._measure_lines(bytes(msg[new : len(msg) if end < 0 else end + 2]))
        if end < 0:
            # Keep memory bounded: stuffing at most doubles a message, so past
            # this it is too big anyway; keep only what the end marker needs.
            if len(msg) > 2 * self.max_size + 1024:
                self._msg_dropped += len(msg) - 4
                del msg[:-4]
            return False
        rest = msg[end + 5 :]
        raw = bytes(msg[: end + 2])  # with the leading virtual CRLF
        self._msg = bytearray()
        self._inbuf[:0] = rest
        self._end_of_data(raw, now)
        return True

    def _end_of_data(self, raw: bytes, now: float) -> None:
        data = dot_unstuff(raw)[2:] if not self._msg_dropped else b""
        size = len(data) + self._msg_dropped
        if self._msg_dropped or size > self.max_size:
            self._refuse(552, "5.3.4 Message size exceeds fixed maximum message size", size, now)
        elif self._long_line:
            self.long_lines += 1
            self._refuse(500, "5.5.6 Line too long", size, now)
        else:
            if self.received_header:
                data = self._trace(now) + data
            self._awaiting = DeliverMessage(self.sender or "", tuple(self.recipients), data)
            self._events.append(self._awaiting)

    def _measure_lines(self, data: bytes) -> None:
        """RFC 5321 4.5.3.1.6, as the data arrives: a text line is at most 1000
        octets with its CRLF, the dot added for transparency not counted.

        Lengths come from ``bytes.split`` and ``max(map(len, ...))`` at C speed;
        only lines already over 999 octets are looked at one by one (at most
        one per 1000 octets received).
        """
        if self._long_line or not data:
            return
        parts = data.split(b"\n")
        head = parts[0]
        if self._line_run == 0 and head:  # a line starts here
            self._line_dot = head[:1] == b"."
        run = self._line_run + len(head)
        if len(parts) == 1:
            self._line_run = run
            self._long_line = run > _MAX_RUN + self._line_dot
            return
        middle = parts[1:-1]
        self._long_line = run > _MAX_RUN + self._line_dot or (
            bool(middle) and max(map(len, middle)) > _MAX_RUN and any(
                len(line) > _MAX_RUN + (line[:1] == b".") for line in middle
                if len(line) > _MAX_RUN
            )
        )  # fmt: skip
        tail = parts[-1]
        self._line_run = len(tail)
        self._line_dot = tail[:1] == b"."
        self._long_line |= self._line_run > _MAX_RUN + self._line_dot

    def _delivered(self, effect: DeliverMessage, result: object, now: float) -> None:
        if isinstance(result, BaseException):  # the store failed: the client must retry
            text = f"4.3.0 Local error in processing ({type(result).__name__})"
            self._refuse(451, text, len(effect.data), now)
            return
        self._reply(250, "2.0.0 OK: message accepted for delivery")
        self.messages_accepted += 1
        self._events.append(
            MessageAccepted(effect.sender, effect.recipients, len(effect.data), now)
        )
        self._end_transaction()

    def _refuse(self, code: int, text: str, size: int, now: float) -> None:
        self._reply(code, text)
        self.messages_rejected += 1
        self._events.append(MessageRejected(code, text, size, now))
        self._end_transaction()

    def _end_transaction(self) -> None:
        self._reset_transaction()
        self.state = self.TRANSITIONS[DATA]["EOM"]

    def _trace(self, now: float) -> bytes:
        # RFC 5321 4.4 trace line; off by default so that stored bytes equal sent bytes.
        return (
            f"Received: from {self.helo_name} by {self.hostname} with "
            f"{'ESMTP' if self.esmtp else 'SMTP'}; {formatdate(now, usegmt=True)}\r\n"
        ).encode("ascii", "replace")

    # -- command handlers (dispatch table built from the smtp_ prefix)
    def smtp_HELO(self, arg: str, now: float) -> bool:
        if not arg or " " in arg:
            self._error(501, "5.5.4 Syntax: HELO hostname")
            return False
        self._reset_transaction()
        self.helo_name, self.esmtp = arg, False
        self._reply(250, f"{self.hostname} Hello {arg}")
        return True

    def smtp_EHLO(self, arg: str, now: float) -> bool:
        if not arg or " " in arg:
            self._error(501, "5.5.4 Syntax: EHLO hostname")
            return False
        self._reset_transaction()
        self.helo_name, self.esmtp = arg, True
        lines = [
            f"{self.hostname} Hello {arg}",
            f"SIZE {self.max_size}",
            "PIPELINING",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
        ]
        if self.tls_context is not None and not self._stream.tls_active:
            lines.append("STARTTLS")
        self._reply(250, "\n".join(lines))
        return True

    def smtp_STARTTLS(self, arg: str, now: float) -> bool:
        """RFC 3207: TLS from the next octet on; the client starts over with EHLO."""
        if arg:
            self._error(501, "5.5.4 Syntax: STARTTLS (no parameters)")
            return False
        if self._stream.tls_active:
            self._error(503, "5.5.1 TLS already active")
            return False
        assert self.tls_context is not None
        self._reply(220, "2.0.0 Ready to start TLS")
        self._inbuf.clear()  # nothing sent before the handshake may count (no command injection)
        self._stream.start_tls(self.tls_context)
        self._reset_transaction()
        self.helo_name, self.esmtp = "", False
        return True

    def smtp_MAIL(self, arg: str, now: float) -> bool:
        m = _MAIL_RE.fullmatch(arg)
        if m is None:
            self._error(501, "5.5.4 Syntax: MAIL FROM:<address>")
            return False
        path = m.group(1)
        sender = "" if path == "<>" else _parse_path(path)
        if sender is None:
            self._error(501, "5.1.7 Bad sender address syntax")
            return False
        params = self._params(m.group(2))
        if params is None:
            return False
        size = None
        for key, value in params:
            if key == "SIZE" and value is not None and value.isdigit() and len(value) <= 20:
                size = int(value)
            elif key == "BODY" and value is not None and value.upper() in ("7BIT", "8BITMIME"):
                pass
            elif key in ("SIZE", "BODY"):
                self._error(501, f"5.5.4 Bad {key} parameter")
                return False
            else:
                self._error(555, f"5.5.4 Parameter {key} not recognized")
                return False
        if size is not None and size > self.max_size:
            self._reply(552, "5.3.4 Message size exceeds fixed maximum message size")
            return False
        self._reset_transaction()
        self.sender, self.declared_size = sender, size
        self._reply(250, "2.1.0 Sender OK")
        return True

    def smtp_RCPT(self, arg: str, now: float) -> bool:
        m = _RCPT_RE.fullmatch(arg)
        if m is None:
            self._error(501, "5.5.4 Syntax: RCPT TO:<address>")
            return False
        path = m.group(1)
        if path.lower() == "<postmaster>":  # RFC 5321 4.5.1: no domain needed
            address = "postmaster@" + self.domain
        else:
            address = _parse_path(path)
        if address is None:
            self._error(501, "5.1.3 Bad recipient address syntax")
            return False
        local_part, _, domain = address.rpartition("@")
        if domain.startswith("[") and _ip(domain) in self.local_addresses:
            address = f"{local_part}@{self.domain}"  # RFC 5321 4.1.3: this host's literal
        params = self._params(m.group(2))
        if params is None:
            return False
        if params:
            self._error(555, f"5.5.4 Parameter {params[0][0]} not recognized")
            return False
        if len(self.recipients) >= self.max_recipients:
            self._reply(452, "4.5.3 Too many recipients")
            return False
        local = _domain_of(address) in self.local_domains
        if not local and not self.subscriber_client:
            self.recipients_refused += 1
            self._reply(554, "5.7.1 Relay access denied")
            return False
        try:
            code, text = self.policy.recipient_ok(address, from_subscriber=self.subscriber_client)
        except Exception as exc:
            code, text = 451, f"4.3.0 Local error in processing ({type(exc).__name__})"
        if not 200 <= code < 300:
            self.recipients_refused += 1
            self._reply(code, text)
            return False
        self.recipients.append(address)
        self._reply(code, text)
        return True

    def smtp_DATA(self, arg: str, now: float) -> bool:
        if arg:
            self._error(501, "5.5.4 Syntax: DATA (no parameters)")
            return False
        if not self.recipients:  # state MAIL: every RCPT was refused (RFC 2920 3.1)
            self._reply(554, "5.5.1 No valid recipients")
            return False
        self._msg = bytearray(b"\r\n")  # virtual CRLF so a first-line "." is found
        self._reply(354, "End data with <CR><LF>.<CR><LF>")
        return True

    def smtp_RSET(self, arg: str, now: float) -> bool:
        if arg:
            self._error(501, "5.5.4 Syntax: RSET (no parameters)")
            return False
        self._reset_transaction()
        self._reply(250, "2.0.0 OK")
        return True

    def smtp_NOOP(self, arg: str, now: float) -> bool:
        self._reply(250, "2.0.0 OK")
        return True

    def smtp_VRFY(self, arg: str, now: float) -> bool:
        if not arg:
            self._error(501, "5.5.4 Syntax: VRFY address")
            return False
        self._reply(252, "2.1.5 Cannot VRFY user, but will accept message and attempt delivery")
        return True

    def smtp_QUIT(self, arg: str, now: float) -> bool:
        self._close(221, f"2.0.0 {self.hostname} closing connection", "quit")
        return True

    def _params(self, text: str) -> list[tuple[str, str | None]] | None:
        out = []
        for word in text.split():
            m = _PARAM_RE.fullmatch(word)
            if m is None:
                self._error(501, "5.5.4 Syntax error in parameters")
                return None
            out.append((m.group(1).upper(), m.group(2)))
        if out and not self.esmtp:
            self._error(555, "5.5.4 Parameters need EHLO")
            return None
        return out


SmtpServer._DISPATCH = {
    name[5:]: func for name, func in vars(SmtpServer).items() if name.startswith("smtp_")
}


# --------------------------------------------------------------------------- client


class ClientState(StrEnum):
    """The SMTP client's states, in the order of a session."""

    GREETING = "GREETING"  # waiting for the server's 220
    EHLO = "EHLO"  # EHLO sent
    HELO = "HELO"  # EHLO refused, HELO sent
    READY = "READY"  # greeted: the next message may start
    TRANSACTION = "TXN"  # one message in MAIL/RCPT/DATA
    QUIT = "QUIT"  # QUIT sent
    CLOSED = "CLOSED"


@dataclass(slots=True)
class _Sent:
    command: str
    t_sent: float
    bytes_up: int
    mail_index: int | None = None


@dataclass(slots=True)
class _Transaction:
    index: int
    sender: str
    recipients: list[str]
    wire: bytes  # dot-stuffed content + ".CRLF"
    size: int
    eight_bit: bool
    mail_ok: bool = False
    accepted: int = 0
    next_rcpt: int = 0
    fail_code: int = 0
    rcpt_code: int = 0  # last refusal of a RCPT
    fail_reason: str = ""
    pipelined: bool = False


class SmtpClient:
    """RFC 5321 client side of one connection: sends a queue of messages.

    The client waits for the 220 greeting, says EHLO (HELO if EHLO gets a 5xx),
    then sends each message queued with :meth:`send_mail`; with PIPELINING it
    sends MAIL, every RCPT and DATA in one chunk (RFC 2920).  A message larger
    than the server's SIZE is skipped and reported.  :meth:`quit` sends QUIT
    once the queue is done.
    """

    def __init__(self, *, helo_name: str, now: float) -> None:
        self.helo_name = helo_name
        self.state = ClientState.GREETING
        self.extensions: dict[str, str] = {}
        self.size_limit: int | None = None
        self.malformed_replies = 0
        self.unexpected_replies = 0
        self._out = bytearray()
        self._events: list[Event] = []
        self._rbuf = bytearray()
        self._reply_lines: list[bytes] = []
        self._reply_bytes = 0
        self._reply_start: float | None = None
        self._pending: deque[_Sent] = deque([_Sent("GREETING", now, 0)])
        self._queue: deque[_Transaction] = deque()
        self._txn: _Transaction | None = None
        self._count = 0
        self._quit_requested = False

    # -- user calls
    def send_mail(self, sender: str, recipients: list[str], data: bytes, now: float) -> int:
        """Queue one message; returns its index (reported in ``MailSent.index``)."""
        if self._quit_requested:
            raise LocalProtocolError("send_mail after quit()")
        if not recipients:
            raise LocalProtocolError("a message needs at least one recipient")
        for addr in (sender, *recipients):
            if any(c in addr for c in "\r\n<> "):
                raise LocalProtocolError(f"bad address {addr!r}")
        index = self._count
        self._count += 1
        if data and not data.endswith(b"\r\n"):
            data += b"\r\n"
        txn = _Transaction(
            index=index,
            sender=sender,
            recipients=list(recipients),
            wire=dot_stuff(data) + b".\r\n",
            size=len(data),
            eight_bit=not data.isascii(),  # C speed, no walk in Python
        )
        if self.state in (ClientState.QUIT, ClientState.CLOSED):
            self._events.append(MailSent(index, False, 0, 0, "session ending"))
            return index
        self._queue.append(txn)
        self._start_next(now)
        return index

    def quit(self, now: float) -> None:
        """Send QUIT once every queued message is done."""
        self._quit_requested = True
        self._start_next(now)

    # -- sans-IO surface
    def receive(self, data: bytes, now: float) -> None:
        if self.state == ClientState.CLOSED:
            return
        if not self._rbuf and not self._reply_lines:
            self._reply_start = now
        self._rbuf += data
        buf = self._rbuf
        while self.state != ClientState.CLOSED:
            i = buf.find(b"\n")
            if i < 0:
                return
            line = bytes(buf[: i + 1])
            del buf[: i + 1]
            m = _REPLY_RE.fullmatch(line.rstrip(b"\r\n"))
            if m is None or not 200 <= int(m.group(1)) < 600:
                self.malformed_replies += 1
                if not buf and not self._reply_lines:
                    self._reply_start = None
                continue
            self._reply_lines.append(m.group(3))
            self._reply_bytes += len(line)
            if m.group(2) == b"-":
                continue
            code = int(m.group(1))
            text = b"\n".join(self._reply_lines).decode("latin-1")
            down, start = self._reply_bytes, self._reply_start
            self._reply_lines, self._reply_bytes = [], 0
            self._reply_start = now if buf else None
            self._on_reply(code, text, down, start if start is not None else now, now)

    def output(self, now: float) -> list[bytes]:
        """The command lines and message data queued since the last call."""
        if not self._out:
            return []
        out = bytes(self._out)
        self._out.clear()
        return [out]

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> float | None:
        if self.state == ClientState.CLOSED or not self._pending:
            return None
        head = self._pending[0]
        return head.t_sent + CLIENT_TIMEOUTS.get(head.command, 300.0)

    def on_timer(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._shut("timeout", now, close=True)

    def connection_lost(self, now: float) -> None:
        if self.state != ClientState.CLOSED:
            reason = "quit" if self.state == ClientState.QUIT else "connection lost"
            self._shut(reason, now, close=False)

    # -- internals
    def _send(self, command: str, line: bytes, now: float, index: int | None = None) -> None:
        self._out += line
        self._pending.append(_Sent(command, now, len(line), index))

    def _shut(self, reason: str, now: float, *, close: bool) -> None:
        code = 421 if reason == "service closing" else 0
        for txn in ([self._txn] if self._txn else []) + list(self._queue):
            self._events.append(MailSent(txn.index, False, code, txn.accepted, reason))
        self._txn = None
        self._queue.clear()
        self._pending.clear()
        self.state = ClientState.CLOSED
        if close:
            self._events.append(CloseRequested(now))
        self._events.append(ClientSessionEnded(reason, now))

    def _on_reply(self, code: int, text: str, down: int, t_first: float, now: float) -> None:
        if not self._pending:
            self.unexpected_replies += 1
            if code == 421:
                self._shut("service closing", now, close=True)
            return
        sent = self._pending.popleft()
        self._events.append(
            ReplyReceived(
                sent.command,
                code,
                text,
                sent.t_sent,
                t_first,
                now,
                sent.bytes_up,
                down,
                sent.mail_index,
            )
        )
        if code == 421 and sent.command != "QUIT":
            self._shut("service closing", now, close=True)
            return
        handler = getattr(self, "_on_" + sent.command)
        handler(code, text, now)

    def _on_GREETING(self, code: int, text: str, now: float) -> None:
        if code == 220:
            self._events.append(GreetingReceived(code, text, now))
            self.state = ClientState.EHLO
            self._send("EHLO", f"EHLO {self.helo_name}\r\n".encode(), now)
        else:  # 554: no service here; RFC 5321 3.1 says send QUIT and wait
            self._refuse_all(code, "greeting refused")
            self._send_quit(now)

    def _on_EHLO(self, code: int, text: str, now: float) -> None:
        if 200 <= code < 300:
            self.extensions = {}
            for line in text.split("\n")[1:]:
                key, _, value = line.strip().partition(" ")
                if key:
                    self.extensions[key.upper()] = value.strip()
            size = self.extensions.get("SIZE", "")
            self.size_limit = int(size) if size.isdigit() and int(size) > 0 else None
            self._ready(now)
        elif 500 <= code < 600:
            self.state = ClientState.HELO
            self._send("HELO", f"HELO {self.helo_name}\r\n".encode(), now)
        else:
            self._refuse_all(code, "EHLO refused")
            self._send_quit(now)

    def _on_HELO(self, code: int, text: str, now: float) -> None:
        if 200 <= code < 300:
            self.extensions, self.size_limit = {}, None
            self._ready(now)
        else:
            self._refuse_all(code, "HELO refused")
            self._send_quit(now)

    def _ready(self, now: float) -> None:
        self.state = ClientState.READY
        self._start_next(now)

    def _refuse_all(self, code: int, reason: str) -> None:
        for txn in list(self._queue):
            self._events.append(MailSent(txn.index, False, code, 0, reason))
        self._queue.clear()

    def _send_quit(self, now: float) -> None:
        self.state = ClientState.QUIT
        self._send("QUIT", b"QUIT\r\n", now)

    def _start_next(self, now: float) -> None:
        if self.state != ClientState.READY or self._txn is not None:
            return
        while self._queue:
            txn = self._queue.popleft()
            if self.size_limit is not None and txn.size > self.size_limit:
                self._events.append(
                    MailSent(txn.index, False, 552, 0, f"exceeds server SIZE {self.size_limit}")
                )
                continue
            self._txn = txn
            self.state = ClientState.TRANSACTION
            params = ""
            if self.size_limit is not None or "SIZE" in self.extensions:
                params += f" SIZE={txn.size}"
            if txn.eight_bit and "8BITMIME" in self.extensions:
                params += " BODY=8BITMIME"
            self._send("MAIL", f"MAIL FROM:<{txn.sender}>{params}\r\n".encode(), now, txn.index)
            if "PIPELINING" in self.extensions:
                txn.pipelined = True
                for rcpt in txn.recipients:
                    self._send("RCPT", f"RCPT TO:<{rcpt}>\r\n".encode(), now, txn.index)
                txn.next_rcpt = len(txn.recipients)
                self._send("DATA", b"DATA\r\n", now, txn.index)
            return
        if self._quit_requested:
            self._send_quit(now)

    def _fail(self, txn: _Transaction, code: int, reason: str) -> None:
        if not txn.fail_code:
            txn.fail_code, txn.fail_reason = code, reason

    def _finish(self, ok: bool, code: int, now: float, *, rset: bool = False) -> None:
        txn = self._txn
        assert txn is not None
        self._events.append(
            MailSent(txn.index, ok, code, txn.accepted, "" if ok else txn.fail_reason)
        )
        self._txn = None
        if rset:  # the server still holds MAIL FROM: clear it before the next one
            self._send("RSET", b"RSET\r\n", now)
        else:
            self._ready(now)

    def _on_MAIL(self, code: int, text: str, now: float) -> None:
        txn = self._txn
        if txn is None:
            return
        if 200 <= code < 300:
            txn.mail_ok = True
            if not txn.pipelined:
                self._next_rcpt(txn, now)
            return
        self._fail(txn, code, "MAIL refused")
        if not txn.pipelined:
            self._finish(False, code, now)

    def _next_rcpt(self, txn: _Transaction, now: float) -> None:
        if txn.next_rcpt < len(txn.recipients):
            rcpt = txn.recipients[txn.next_rcpt]
            txn.next_rcpt += 1
            self._send("RCPT", f"RCPT TO:<{rcpt}>\r\n".encode(), now, txn.index)
        elif txn.accepted:
            self._send("DATA", b"DATA\r\n", now, txn.index)
        else:
            self._fail(txn, txn.rcpt_code, "every recipient refused")
            self._finish(False, txn.fail_code, now, rset=True)

    def _on_RCPT(self, code: int, text: str, now: float) -> None:
        txn = self._txn
        if txn is None:
            return
        if 200 <= code < 300:
            txn.accepted += 1
        else:
            txn.rcpt_code = code
        if not txn.pipelined:
            self._next_rcpt(txn, now)

    def _on_DATA(self, code: int, text: str, now: float) -> None:
        txn = self._txn
        if txn is None:
            return
        if code == 354:
            if txn.mail_ok and txn.accepted:
                self._send("EOM", txn.wire, now, txn.index)
            else:  # RFC 2920 3.1: 354 despite no recipients: send only the dot
                self._fail(txn, 554, "no valid recipients")
                self._send("EOM", b".\r\n", now, txn.index)
            return
        if txn.mail_ok and not txn.accepted:
            self._fail(txn, txn.rcpt_code, "every recipient refused")
        self._fail(txn, code, "DATA refused")
        self._finish(False, txn.fail_code, now, rset=txn.mail_ok)

    def _on_EOM(self, code: int, text: str, now: float) -> None:
        txn = self._txn
        if txn is None:
            return
        if 200 <= code < 300 and not txn.fail_code:
            self._finish(True, code, now)
        else:
            self._fail(txn, code, "message refused")
            self._finish(False, code if code >= 400 else txn.fail_code, now)

    def _on_RSET(self, code: int, text: str, now: float) -> None:
        self._ready(now)

    def _on_NOOP(self, code: int, text: str, now: float) -> None:
        pass

    def _on_QUIT(self, code: int, text: str, now: float) -> None:
        self._shut("quit", now, close=True)
