"""POP3 server and client, sans-IO (RFC 1939, with RFC 2449 CAPA and RESP-CODES).

Scope:

- :class:`Pop3Server` speaks RFC 1939 in its three states (AUTHORIZATION,
  TRANSACTION, UPDATE) with USER/PASS and APOP, STAT, LIST, RETR, DELE, NOOP,
  RSET, TOP, UIDL, QUIT, plus RFC 2449's CAPA and the ``[IN-USE]`` and
  RFC 3206 ``[AUTH]``/``[SYS/...]`` response codes.  Passwords are checked
  through the injected :class:`Authenticator`; storage is an effect: the
  server asks its driver to open (lock and list) a maildrop, read a message,
  commit the deletions or release the maildrop (:class:`OpenMaildrop`,
  :class:`ReadMessage`, :class:`CommitMaildrop`, :class:`ReleaseMaildrop`),
  and waits for the answer (:meth:`Pop3Server.complete`) before it replies or
  reads the next command.  So this module does no file I/O, and the driver
  chooses the store (a durable Maildir off the event loop, or a scratch one
  answered at once).  DELE takes effect only in the UPDATE state, when the
  store has committed it after QUIT; a lost connection or the RFC 1939
  ten-minute autologout releases the maildrop without removing anything.
- Replies go out as the transport takes them (:meth:`Pop3Server.output`
  hands out one piece at a time; the next pipelined command waits while a
  reply's worth is queued), logins are answered at one time whatever the
  answer and throttled per user and client address, and RFC 2595 STLS
  switches the session to TLS (:mod:`dialsim.proto.stream`).
- :class:`Pop3Client` sends commands (several may be outstanding: RFC 2449
  PIPELINING) and parses the replies in order, single- and multi-line, from any
  chunking, removing the byte-stuffing of multi-line responses.

Both follow :class:`dialsim.proto.machine.Machine`: ``receive(data, now)``,
``output(now)``, ``events()``, ``next_deadline()``, ``on_timer(now)``, plus
``connection_lost(now)`` for the loss of the transport.  Nothing here reads a
clock.  Peer garbage never raises out of ``receive``: the server answers
``-ERR`` and counts it, the client reports an error response and counts it.
Multi-line bodies are stuffed and un-stuffed with :mod:`re`; terminators are
found with ``bytes.find`` resumed where the previous search stopped, so there
is no per-byte Python loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
    "AUTHORIZATION",
    "TRANSACTION",
    "UPDATE",
    "CLOSED",
    "MAX_COMMAND_LINE",
    "Authenticator",
    "LoginThrottle",
    "LoginFailed",
    "MaildropListing",
    "MaildropEffect",
    "OpenMaildrop",
    "ReadMessage",
    "CommitMaildrop",
    "ReleaseMaildrop",
    "GreetingReceived",
    "ResponseReceived",
    "ConnectionLost",
    "Pop3Server",
    "Pop3Client",
    "apop_digest",
    "dot_stuff",
    "dot_unstuff",
]

# ---------------------------------------------------------------------------
# Password checks, injected by the caller (dialsim.mail.accounts implements it).


class Authenticator(Protocol):
    def check_password(self, user: str, password: str) -> bool: ...

    def apop_secret(self, user: str) -> str | None: ...


class LoginThrottle(Protocol):
    """Slows down password guessing across sessions (see
    :class:`dialsim.mail.accounts.LoginThrottle`)."""

    def delay(self, user: str, peer: str, now: float) -> float:
        """Seconds to hold the answer to a login of ``user`` from ``peer`` now."""
        ...

    def record(self, user: str, peer: str, ok: bool, now: float) -> None:
        """The outcome of a password check."""
        ...


# ---------------------------------------------------------------------------
# Storage effects: what the server asks its driver to do with the maildrop.


@dataclass(frozen=True, slots=True)
class MaildropEffect(Effect):
    """Base of the POP3 server's storage requests."""


@dataclass(frozen=True, slots=True)
class OpenMaildrop(MaildropEffect):
    """Lock ``user``'s maildrop and list it (RFC 1939 section 8: locked for the
    TRANSACTION state).  Answer: a :class:`MaildropListing`, or None when the
    maildrop is locked already ([IN-USE])."""

    user: str


@dataclass(frozen=True, slots=True)
class MaildropListing:
    """The answer to :class:`OpenMaildrop`: the store's ``handle`` for this
    session's locked maildrop (handed back in the later effects) and
    ``(size in CRLF octets, uidl)`` per message, in message-number order."""

    handle: object
    messages: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class ReadMessage(MaildropEffect):
    """Read message ``index`` (0-based) of the open maildrop.  Answer: its
    bytes with CRLF line ends.  ``top_lines`` is TOP's line count (the server
    cuts the message itself), None for RETR."""

    handle: object
    index: int
    top_lines: int | None = None


@dataclass(frozen=True, slots=True)
class CommitMaildrop(MaildropEffect):
    """UPDATE state: remove the ``deleted`` messages (0-based) durably, then
    unlock.  Answer: None once done."""

    handle: object
    deleted: frozenset[int]


@dataclass(frozen=True, slots=True)
class ReleaseMaildrop(MaildropEffect):
    """Unlock the maildrop without any change.  The session is over: nobody
    waits for the answer."""

    handle: object


# ---------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class GreetingReceived(SessionEvent):
    """The client read the server's greeting line."""

    ok: bool
    text: str
    apop_challenge: str | None
    now: float


@dataclass(frozen=True, slots=True)
class ResponseReceived(SessionEvent):
    """The client read the whole response to one command.

    ``body`` is the un-stuffed multi-line body with CRLF line ends and without
    the terminating ".", or None for single-line responses.  ``bytes_up`` is the
    octets of the command line, ``bytes_down`` those of the whole response as on
    the wire (status line, stuffed body, terminator).
    """

    verb: str
    arg_shown: str
    ok: bool
    text: str
    body: bytes | None
    t_sent: float
    t_first_byte: float
    t_done: float
    bytes_up: int
    bytes_down: int


@dataclass(frozen=True, slots=True)
class LoginFailed(SessionEvent):
    """Server: a PASS or APOP for ``user`` from client address ``peer`` was
    wrong (for the log; the password is never kept)."""

    user: str
    peer: str
    now: float


@dataclass(frozen=True, slots=True)
class ConnectionLost(SessionEvent):
    """The client's transport went away; ``unanswered`` are the verbs still
    outstanding, ``partial_octets`` what had arrived of the first one's answer."""

    unanswered: tuple[str, ...]
    now: float
    partial_octets: int = 0


# ---------------------------------------------------------------------------
# Helpers

AUTHORIZATION = "AUTHORIZATION"
TRANSACTION = "TRANSACTION"
UPDATE = "UPDATE"
CLOSED = "CLOSED"

MAX_COMMAND_LINE = 255  # RFC 2449 section 4, including CRLF
MAX_RESPONSE_LINE = 512  # RFC 2449 section 4, status line including CRLF

_TERMINATOR = b"\r\n.\r\n"
_CHALLENGE_RE = re.compile(r"<[^<>\s]+>")


def _stuffed_body(message: bytes) -> bytes:
    """``message`` with a "." added to every line that starts with one and a
    final CRLF (the same object when there is nothing to change: no copy).
    A line starts at the beginning and after every LF (CRLF or bare LF)."""
    body = message.replace(b"\n.", b"\n..")
    if body[:1] == b".":
        body = b"." + body
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body


def dot_stuff(message: bytes) -> bytes:
    """A message as the body of a multi-line response, terminator included.

    Lines starting with "." get another "."; a missing final CRLF is added;
    then ".\\r\\n" ends the response (RFC 1939 section 3).
    """
    return _stuffed_body(message) + b".\r\n"


def dot_unstuff(body: bytes) -> bytes:
    """Remove byte-stuffing from a multi-line body (terminator already removed):
    the first "." of every line that starts with one (after any LF)."""
    body = body.replace(b"\n.", b"\n")
    return body[1:] if body[:1] == b"." else body


def apop_digest(challenge: str, secret: str) -> str:
    """RFC 1939 section 7: hex MD5 of the greeting's timestamp followed by the secret."""
    return hashlib.md5((challenge + secret).encode("utf-8")).hexdigest()


def _parse_number(arg: str) -> int | None:
    if not arg.isdigit() or len(arg) > 9:
        return None
    return int(arg)


def _top(msg: bytes, nlines: int) -> bytes:
    """RFC 1939 TOP: the headers, the blank line and the first ``nlines`` body lines."""
    head, sep, body = msg.partition(b"\r\n\r\n")
    if not sep:
        return head
    if nlines and body:
        cut = 0
        for _ in range(nlines):  # one step per requested line, not per byte
            nxt = body.find(b"\r\n", cut)
            if nxt < 0:
                cut = len(body)
                break
            cut = nxt + 2
        body = body[:cut]
    else:
        body = b""
    return head + sep + body

# ---------------------------------------------------------------------------
# Server

_SESSION_ENDS = ("quit", "autologout", "connection_lost", "errors", "shutdown", "busy", "tls_failed")

# State transitions of the server, in one table: {state: {trigger: next_state}}.
_TRANSITIONS: dict[str, dict[str, str]] = {
    AUTHORIZATION: {"logged_in": TRANSACTION, **{end: CLOSED for end in _SESSION_ENDS}},
    TRANSACTION: {
        "quit": UPDATE,
        **{end: CLOSED for end in _SESSION_ENDS if end != "quit"},
    },
    UPDATE: {"committed": CLOSED, "connection_lost": CLOSED},
    CLOSED: {"connection_lost": CLOSED},
}

# Which commands each state accepts.
_ALLOWED: dict[str, frozenset[str]] = {
    AUTHORIZATION: frozenset({"USER", "PASS", "APOP", "QUIT", "CAPA", "NOOP", "STLS"}),
    TRANSACTION: frozenset(
        {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "QUIT", "CAPA"}
    ),
    UPDATE: frozenset(),
    CLOSED: frozenset(),
}

_CAPABILITIES = (
    "TOP",
    "UIDL",
    "USER",
    "RESP-CODES",
    "PIPELINING",
    "EXPIRE NEVER",
    "IMPLEMENTATION dialsim",
)

_ECHO_RE = re.compile(r"[\x21-\x7e]{1,64}")  # a USER name safe to echo


class Pop3Server:
    """One POP3 server session (RFC 1939), from greeting to close.

    Feed bytes with :meth:`receive`, collect replies with :meth:`output` and
    events with :meth:`events`.  A :class:`MaildropEffect` among the events is
    a storage request: carry it out and hand the answer (or the exception it
    raised) to :meth:`complete`; until then the server reads no further
    command.  Replies are produced as they are taken: while more than
    :data:`HIGH_WATER` octets wait in :meth:`output`, the next
    pipelined command waits too, so a client that sends forty RETRs and reads
    nothing holds one message's worth in the server, not forty.

    Logins: every answer to PASS and APOP is held until ``auth_delay`` after
    the command (success and failure alike, so the time of the answer tells
    nothing), a failure at least ``login_failure_delay``, plus what the
    injected ``throttle`` asks for the user and the client address ``peer``;
    each failure is reported as :class:`LoginFailed` (never the password).
    ``login_delay`` is RFC 2449's LOGIN-DELAY (least time between two logins
    of one user).  ``tls_context`` offers RFC 2595 STLS.  ``busy`` refuses the
    session at once with ``-ERR [SYS/TEMP]``.  Timers: the autologout
    (``idle_timeout``, RFC 1939's ten minutes) and held login answers, both
    reported by :meth:`next_deadline`.
    """

    _COMMANDS: dict[str, Callable[[Pop3Server, str, float], None]]

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        hostname: str = "pop.isp.example",
        apop_challenge: str | None = None,
        now: float,
        idle_timeout: float = 600.0,
        login_failure_delay: float = 2.0,
        auth_delay: float = 0.0,
        max_errors: int = 10,
        login_delay: float = 0.0,
        last_logins: dict[str, float] | None = None,
        throttle: LoginThrottle | None = None,
        peer: str = "",
        tls_context: ssl.SSLContext | None = None,
        busy: str | None = None,
    ) -> None:
        self._auth = authenticator
        self.hostname = hostname
        if apop_challenge is not None and not _CHALLENGE_RE.fullmatch(apop_challenge):
            apop_challenge = f"<{apop_challenge}>"
        self.apop_challenge = apop_challenge
        self.idle_timeout = idle_timeout
        self.login_failure_delay = login_failure_delay
        self.auth_delay = auth_delay
        self.max_errors = max_errors
        # RFC 2449 LOGIN-DELAY: the least time between two logins of one user;
        # ``last_logins`` (user -> time of the last login) outlives a session,
        # so the caller keeps it and hands the same dict to every server.
        self.login_delay = login_delay
        self.last_logins = last_logins if last_logins is not None else {}
        self.throttle = throttle
        self.peer = peer
        self.tls_context = tls_context

        self.state = AUTHORIZATION
        self.user: str | None = None
        self.errors = 0  # -ERR answers caused by the client
        self.lines_too_long = 0
        self.unknown_commands = 0
        self.failed_logins = 0
        self.messages_deleted = 0  # removed in UPDATE state

        self._stream = SessionStream()
        self._in = bytearray()
        self._discarding = False  # inside an over-long line
        self._events: list[Event] = []
        self._last_activity = now
        self._held_until: float | None = None  # a login answer waits until then
        self._held_reply = b""
        self._answer_at: float | None = None  # the pending login's answer time
        self._pending_user: str | None = None
        self._awaiting: MaildropEffect | None = None  # the effect whose answer we wait for
        self._top_lines: int | None = None  # the TOP line count of a pending ReadMessage
        self._handle: object | None = None  # the store's handle of our locked maildrop
        self._held_error = False
        self._shutting_down = False
        self.tls_failure: str | None = None
        self._sizes: list[int] = []
        self._uidls: list[str] = []
        self._deleted: set[int] = set()

        if busy is not None:
            self._reply(f"-ERR [SYS/TEMP] {busy}")
            self._end("busy", now)
            return
        greeting = "+OK POP3 server ready"
        if apop_challenge:
            greeting += " " + apop_challenge
        self._reply(greeting)

    def __repr__(self) -> str:
        return f"<Pop3Server state={self.state} user={self.user!r} errors={self.errors}>"

    # -- public interface --------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the client."""
        if self.state in (CLOSED, UPDATE):
            return
        data = self._stream.receive(data)
        tls = self._stream.tls
        if tls is not None and tls.failed:
            self.tls_failure = tls.failed
            self._end("tls_failed", now)
            return
        if data:
            self._last_activity = now
        self._in += data
        self._release_held(now)
        self._process_lines(now)

    def output(self, now: float) -> list[bytes]:
        """The next replies, at most :data:`~dialsim.proto.stream.CHUNK` octets
        (TLS records under STLS); taking them lets held pipelined commands go on."""
        chunks = take_replies(self._stream, self._process_lines, now)
        if chunks:  # still sending to the client: not idle (a slow reader mid-RETR)
            self._last_activity = max(self._last_activity, now)
        return chunks

    def events(self) -> list[Event]:
        evs = self._events
        self._events = []
        return evs

    def complete(self, effect: MaildropEffect, result: object, now: float) -> None:
        """The answer to a storage request: the store's result, or the exception it raised.

        Answers to a request the session no longer waits for (it ended in the
        meantime) are tidied up: a maildrop locked for a gone session is
        released.
        """
        if effect is not self._awaiting or self.state == CLOSED:
            if effect is self._awaiting:
                self._awaiting = None
            if isinstance(effect, OpenMaildrop) and isinstance(result, MaildropListing):
                self._events.append(ReleaseMaildrop(result.handle))
            return
        self._awaiting = None
        match effect:
            case OpenMaildrop(user=user):
                self._opened(user, result, now)
            case ReadMessage(index=index):
                self._send_message(index, result, now)
            case CommitMaildrop():
                self._committed(result, now)
        if self._shutting_down:
            self.shutdown(now)
        self._process_lines(now)

    def shutdown(self, now: float) -> None:
        """The host is going down: answer ``-ERR [SYS/TEMP]`` and close; the
        maildrop is released unchanged.  A commit under way (UPDATE) completes
        first and the session ends as after any QUIT; a storage request under
        way is answered first."""
        if self.state in (CLOSED, UPDATE):
            return
        self._shutting_down = True
        if self._awaiting is not None:
            return
        self._release_held(float("inf"))
        if self.state != CLOSED:
            self._reply("-ERR [SYS/TEMP] server shutting down, try again later")
            self._end("shutdown", now)

    def transport_busy(self, now: float) -> None:
        """The transport is still carrying our output (a real server would be
        blocked in write(), not waiting for a command): not idle, so the
        inactivity timer restarts from ``now``."""
        self._last_activity = max(self._last_activity, now)

    def next_deadline(self) -> float | None:
        if self.state in (CLOSED, UPDATE):
            return None
        if self._held_until is not None:
            return min(self._held_until, self._last_activity + self.idle_timeout)
        return self._last_activity + self.idle_timeout

    def on_timer(self, now: float) -> None:
        if self.state in (CLOSED, UPDATE):
            return
        self._release_held(now)
        self._process_lines(now)
        if self.state not in (CLOSED, UPDATE) and now >= self._last_activity + self.idle_timeout:
            # RFC 1939 section 3: an autologout does not enter the UPDATE state.
            self._reply("-ERR [SYS/TEMP] autologout: idle for too long")
            self._end("autologout", now)

    def connection_lost(self, now: float) -> None:
        """The transport is gone: release the maildrop, DELE never takes effect."""
        if self.state == CLOSED:
            return
        if self.state == UPDATE:
            # The commit is in the store's hands already; it completes or fails there.
            self.state = _TRANSITIONS[UPDATE]["connection_lost"]
            self._events.append(SessionEnded("connection_lost", now))
            return
        self._end("connection_lost", now, close=False)

    @property
    def deleted(self) -> frozenset[int]:
        """0-based indexes marked deleted in this session (not yet committed)."""
        return frozenset(self._deleted)

    @property
    def tls_active(self) -> bool:
        return self._stream.tls_active

    # -- plumbing ------------------------------------------------------------

    def _transition(self, trigger: str) -> None:
        try:
            self.state = _TRANSITIONS[self.state][trigger]
        except KeyError:
            raise LocalProtocolError(f"no transition {trigger!r} from {self.state}") from None

    def _reply(self, line: str) -> None:
        self._stream.write(line.encode("utf-8", "replace") + b"\r\n")

    def _ask(self, effect: MaildropEffect) -> None:
        self._awaiting = effect
        self._events.append(effect)

    def _error(self, text: str, now: float) -> None:
        self._reply("-ERR " + text)
        self._count_error(now)

    def _count_error(self, now: float) -> None:
        self.errors += 1
        if self.errors >= self.max_errors and self.state in (AUTHORIZATION, TRANSACTION):
            self._reply("-ERR too many errors, closing connection")
            self._end("errors", now)

    def _end(self, reason: str, now: float, *, close: bool = True) -> None:
        """Leave the session without the UPDATE state: nothing is committed."""
        if self._handle is not None:
            self._events.append(ReleaseMaildrop(self._handle))
            self._handle = None
        self._transition(reason)
        self._held_until = None
        self._held_reply = b""
        self._in.clear()
        self._events.append(SessionEnded(reason, now))
        if close:
            self._stream.close_tls()
            self._events.append(CloseRequested(now))

    # -- login answers: held to one time, whatever they say --------------------

    def _begin_login(self, user: str, now: float) -> None:
        """A PASS or APOP arrived for ``user``: fix when its answer may go."""
        delay = self.auth_delay
        if self.throttle is not None:
            delay += self.throttle.delay(user, self.peer, now)
        self._answer_at = now + delay

    def _login_answer(
        self, line: str, now: float, *, error: bool = False, failure: bool = False
    ) -> None:
        """Send the answer to PASS/APOP at its time (a deadline, no sleeping).

        ``error``: it counts against the error budget; ``failure``: a wrong
        password, held at least ``login_failure_delay``.
        """
        at = self._answer_at if self._answer_at is not None else now
        self._answer_at = None
        if failure:
            at = max(at, now + self.login_failure_delay)
        reply = line.encode("utf-8", "replace") + b"\r\n"
        if at <= now:
            self._stream.write(reply)
            if error:
                self._count_error(now)
            return
        self._held_reply = reply
        self._held_until = at
        self._held_error = error

    def _release_held(self, now: float) -> None:
        if self._held_until is not None and now >= self._held_until:
            self._stream.write(self._held_reply)
            self._held_until = None
            self._held_reply = b""
            if self._held_error:
                self._count_error(now)

    def _login_failed(self, user: str, text: str, now: float) -> None:
        self.failed_logins += 1
        if self.throttle is not None:
            self.throttle.record(user, self.peer, False, now)
        self._events.append(LoginFailed(user, self.peer, now))
        self._login_answer("-ERR " + text, now, error=True, failure=True)

    # -- command lines ---------------------------------------------------------

    def _process_lines(self, now: float) -> None:
        buf = self._in
        while (
            self.state in (AUTHORIZATION, TRANSACTION)
            and self._held_until is None
            and self._awaiting is None
            and self._stream.backlog < HIGH_WATER
        ):
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_COMMAND_LINE:
                    # Over-long line with no end yet: drop what we hold, answer at its end.
                    self._discarding = True
                    buf.clear()
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if self._discarding or nl + 1 > MAX_COMMAND_LINE:
                self._discarding = False
                self.lines_too_long += 1
                self._error("command line too long", now)
                continue
            self._dispatch(line.rstrip(b"\r"), now)

    def _dispatch(self, line: bytes, now: float) -> None:
        verb, _, raw = line.lstrip(b" ").partition(b" ")
        verb_text = verb.decode("latin-1").upper()
        handler = self._COMMANDS.get(verb_text)
        if handler is None:
            self.unknown_commands += 1
            self._events.append(CommandReceived(verb_text[:16] or "?", now))
            self._error("unknown command", now)
            return
        self._events.append(CommandReceived(verb_text, now))
        if verb_text not in _ALLOWED[self.state]:
            self._error(f"{verb_text} not allowed in {self.state} state", now)
            return
        if verb_text == "PASS":  # RFC 1939: the rest of the line, spaces and all
            arg = raw.decode("utf-8", "surrogateescape")
        else:
            arg = raw.decode("latin-1").strip(" ")
        handler(self, arg, now)

    # -- AUTHORIZATION state -------------------------------------------------

    def cmd_USER(self, arg: str, now: float) -> None:
        if not arg or " " in arg:
            self._error("USER needs one argument", now)
            return
        self._pending_user = arg
        # Same answer for every name: no user enumeration.  Echo only a name
        # that is safe to echo (no control octets, not over-long).
        if _ECHO_RE.fullmatch(arg):
            self._reply(f"+OK {arg} is a real hoopy frood")
        else:
            self._reply("+OK send PASS")

    def cmd_PASS(self, arg: str, now: float) -> None:
        user = self._pending_user
        self._pending_user = None
        if user is None:
            self._error("USER first", now)
            return
        self._begin_login(user, now)
        if not self._auth.check_password(user, arg):
            self._login_failed(user, "[AUTH] invalid user name or password", now)
            return
        self._open_maildrop(user, now)

    def cmd_APOP(self, arg: str, now: float) -> None:
        self._pending_user = None
        if self.apop_challenge is None:
            self._error("APOP not available", now)
            return
        parts = arg.split()
        if len(parts) != 2:
            self._error("APOP needs a name and a digest", now)
            return
        user, digest = parts
        self._begin_login(user, now)
        secret = self._auth.apop_secret(user)
        expected = apop_digest(self.apop_challenge, secret) if secret is not None else "-"
        if secret is None or not hmac.compare_digest(expected, digest.lower()):
            self._login_failed(user, "[AUTH] permission denied", now)
            return
        self._open_maildrop(user, now)

    def cmd_STLS(self, arg: str, now: float) -> None:
        """RFC 2595 section 4: TLS from the next octet on; the client starts over."""
        if self.tls_context is None:
            self._error("STLS not available", now)
            return
        if self._stream.tls_active:
            self._error("TLS already active", now)
            return
        self._reply("+OK Begin TLS negotiation")
        self._pending_user = None
        self._in.clear()  # nothing sent before the handshake may count (no command injection)
        self._stream.start_tls(self.tls_context)

    def _open_maildrop(self, user: str, now: float) -> None:
        if self.throttle is not None:
            self.throttle.record(user, self.peer, True, now)
        last = self.last_logins.get(user)
        if self.login_delay and last is not None and now - last < self.login_delay:
            wait = self.login_delay - (now - last)
            self._login_answer(f"-ERR [LOGIN-DELAY] minimum time between logins is "
                               f"{self.login_delay:g} s; try again in {wait:.0f} s", now, error=True)
            return
        self._ask(OpenMaildrop(user))

    def _opened(self, user: str, listing: object, now: float) -> None:
        if listing is None:
            self._login_answer("-ERR [IN-USE] maildrop already locked", now, error=True)
            return
        if not isinstance(listing, MaildropListing):  # the store failed: RFC 3206
            self._login_answer("-ERR [SYS/TEMP] unable to read maildrop", now, error=True)
            return
        self._handle = listing.handle
        if self._shutting_down:
            return
        self.user = user
        self._sizes = [size for size, _ in listing.messages]
        self._uidls = [uidl for _, uidl in listing.messages]
        self._deleted = set()
        self._transition("logged_in")
        self.last_logins[user] = now
        n, octets = self._totals()
        self._login_answer(f"+OK {user}'s maildrop has {n} messages ({octets} octets)", now)

    # -- TRANSACTION state ---------------------------------------------------

    def _totals(self) -> tuple[int, int]:
        live = [s for i, s in enumerate(self._sizes) if i not in self._deleted]
        return len(live), sum(live)

    def _message(self, arg: str, now: float) -> int | None:
        """0-based index of a live message named by ``arg``, or answer -ERR."""
        n = _parse_number(arg)
        if n is None:
            self._error("message number required", now)
            return None
        if not 1 <= n <= len(self._sizes):
            self._error(f"no such message, only {len(self._sizes)} messages in maildrop", now)
            return None
        if n - 1 in self._deleted:
            self._error(f"message {n} already deleted", now)
            return None
        return n - 1

    def _listing(self, lines: list[str]) -> None:
        self._stream.write(("\r\n".join([*lines, "."]) + "\r\n").encode())

    def cmd_STAT(self, arg: str, now: float) -> None:
        n, octets = self._totals()
        self._reply(f"+OK {n} {octets}")

    def cmd_LIST(self, arg: str, now: float) -> None:
        if arg:
            i = self._message(arg, now)
            if i is not None:
                self._reply(f"+OK {i + 1} {self._sizes[i]}")
            return
        n, octets = self._totals()
        lines = [f"+OK {n} messages ({octets} octets)"]
        lines += [f"{i + 1} {s}" for i, s in enumerate(self._sizes) if i not in self._deleted]
        self._listing(lines)

    def cmd_UIDL(self, arg: str, now: float) -> None:
        if arg:
            i = self._message(arg, now)
            if i is not None:
                self._reply(f"+OK {i + 1} {self._uidls[i]}")
            return
        lines = ["+OK unique-id listing follows"]
        lines += [f"{i + 1} {u}" for i, u in enumerate(self._uidls) if i not in self._deleted]
        self._listing(lines)

    def cmd_RETR(self, arg: str, now: float) -> None:
        i = self._message(arg, now)
        if i is None:
            return
        self._top_lines = None
        self._ask(ReadMessage(self._handle, i, None))

    def cmd_TOP(self, arg: str, now: float) -> None:
        parts = arg.split()
        if len(parts) != 2 or _parse_number(parts[1]) is None:
            self._error("TOP needs a message number and a line count", now)
            return
        i = self._message(parts[0], now)
        if i is None:
            return
        self._top_lines = int(parts[1])
        self._ask(ReadMessage(self._handle, i, self._top_lines))

    def _send_message(self, index: int, msg: object, now: float) -> None:
        """The answer to RETR or TOP: the message read, or the store's failure."""
        if self._shutting_down:
            return
        if not isinstance(msg, bytes | bytearray):  # the store failed: RFC 3206
            self._error("[SYS/TEMP] unable to read message", now)
            return
        if self._top_lines is None:
            self._reply(f"+OK {self._sizes[index]} octets")
            self._stream.write(_stuffed_body(bytes(msg)))
        else:
            self._reply("+OK top of message follows")
            self._stream.write(_stuffed_body(_top(bytes(msg), self._top_lines)))
        self._stream.write(b".\r\n")

    def cmd_DELE(self, arg: str, now: float) -> None:
        i = self._message(arg, now)
        if i is None:
            return
        self._deleted.add(i)
        self._reply(f"+OK message {i + 1} deleted")

    def cmd_RSET(self, arg: str, now: float) -> None:
        self._deleted.clear()
        n, octets = self._totals()
        self._reply(f"+OK maildrop has {n} messages ({octets} octets)")

    def cmd_NOOP(self, arg: str, now: float) -> None:
        self._reply("+OK")

    def cmd_CAPA(self, arg: str, now: float) -> None:
        lines = ["+OK Capability list follows", *_CAPABILITIES]
        if self.tls_context is not None and not self._stream.tls_active:
            lines.append("STLS")
        lines.append(f"LOGIN-DELAY {int(self.login_delay)}")
        self._listing(lines)

    def cmd_QUIT(self, arg: str, now: float) -> None:
        if self.state == AUTHORIZATION:
            self._reply(f"+OK {self.hostname} POP3 server signing off")
            self._end("quit", now)
            return
        # UPDATE state: now, and only now, DELE takes effect -- once the store says so.
        self._transition("quit")
        handle, self._handle = self._handle, None
        self._in.clear()
        self._ask(CommitMaildrop(handle, frozenset(self._deleted)))

    def _committed(self, result: object, now: float) -> None:
        if isinstance(result, BaseException):
            self._reply("-ERR [SYS/TEMP] some deleted messages not removed")
        else:
            self.messages_deleted = len(self._deleted)
            left = len(self._sizes) - len(self._deleted)
            tail = "(maildrop empty)" if left == 0 else f"({left} messages left)"
            self._reply(f"+OK {self.hostname} POP3 server signing off {tail}")
        self._transition("committed")
        self._stream.close_tls()
        self._events.append(SessionEnded("quit", now))
        self._events.append(CloseRequested(now))


Pop3Server._COMMANDS = {
    name[4:]: func for name, func in vars(Pop3Server).items() if name.startswith("cmd_")
}


# ---------------------------------------------------------------------------
# Client


@dataclass(slots=True)
class _Outstanding:
    verb: str
    arg_shown: str
    multiline: bool  # if the answer is +OK
    t_sent: float
    bytes_up: int


class Pop3Client:
    """The client side of a POP3 session: commands out, parsed responses in.

    Commands may be issued before earlier ones are answered (pipelining);
    responses are matched to commands in order.  The greeting is always the
    first thing parsed.
    """

    def __init__(self, *, now: float) -> None:
        self._out = bytearray()
        self._in = bytearray()
        self._events: list[Event] = []
        self._queue: deque[_Outstanding] = deque()
        self._greeted = False
        self._status_end: int | None = None  # end of parsed status line in _in
        self._status: tuple[bool, str] | None = None
        self._scan_from = 0  # where to resume looking for CRLF / terminator
        self._t_first: float | None = None
        self.closed = False
        self.bad_responses = 0  # status lines neither +OK nor -ERR
        self.unexpected_octets = 0  # bytes with no command outstanding
        self.created = now

    def __repr__(self) -> str:
        return f"<Pop3Client outstanding={[o.verb for o in self._queue]} closed={self.closed}>"

    # -- commands ----------------------------------------------------------

    @property
    def outstanding(self) -> int:
        return len(self._queue)

    @property
    def pending_response(self) -> tuple[str, str, int] | None:
        """(verb, argument shown, octets arrived so far) of the answer being
        read, or None when no command is outstanding."""
        if not self._queue or self.closed:
            return None
        head = self._queue[0]
        return head.verb, head.arg_shown, len(self._in)

    def command(self, verb: str, *args: str | int, now: float) -> None:
        """Queue one command line for sending."""
        if self.closed:
            raise LocalProtocolError("connection is closed")
        verb = verb.upper()
        if not verb.isalpha() or not 3 <= len(verb) <= 4:
            raise LocalProtocolError(f"bad POP3 verb {verb!r}")
        sargs = [str(a) for a in args]
        for a in sargs:
            if not a or any(c in a for c in "\r\n\0 "):
                raise LocalProtocolError("POP3 arguments must be non-empty without spaces or CR/LF")
        line = " ".join([verb, *sargs]).encode("utf-8") + b"\r\n"
        if len(line) > MAX_COMMAND_LINE:
            raise LocalProtocolError("command line longer than 255 octets")
        if verb == "PASS":
            shown = "****"
        else:
            shown = " ".join(sargs)
        multiline = verb in ("RETR", "TOP", "CAPA") or (verb in ("LIST", "UIDL") and not sargs)
        self._queue.append(_Outstanding(verb, shown, multiline, now, len(line)))
        self._out += line

    def user(self, name: str, *, now: float) -> None:
        self.command("USER", name, now=now)

    def pass_(self, password: str, *, now: float) -> None:
        self.command("PASS", password, now=now)

    def apop(self, user: str, secret: str, challenge: str, *, now: float) -> None:
        self.command("APOP", user, apop_digest(challenge, secret), now=now)

    def stat(self, *, now: float) -> None:
        self.command("STAT", now=now)

    def list(self, msg: int | None = None, *, now: float) -> None:
        self.command("LIST", *(() if msg is None else (msg,)), now=now)

    def uidl(self, msg: int | None = None, *, now: float) -> None:
        self.command("UIDL", *(() if msg is None else (msg,)), now=now)

    def retr(self, msg: int, *, now: float) -> None:
        self.command("RETR", msg, now=now)

    def dele(self, msg: int, *, now: float) -> None:
        self.command("DELE", msg, now=now)

    def top(self, msg: int, lines: int, *, now: float) -> None:
        self.command("TOP", msg, lines, now=now)

    def capa(self, *, now: float) -> None:
        self.command("CAPA", now=now)

    def noop(self, *, now: float) -> None:
        self.command("NOOP", now=now)

    def rset(self, *, now: float) -> None:
        self.command("RSET", now=now)

    def quit(self, *, now: float) -> None:
        self.command("QUIT", now=now)

    # -- I/O -----------------------------------------------------------------

    def output(self, now: float) -> list[bytes]:
        """The command lines queued since the last call (one chunk, or nothing)."""
        if not self._out:
            return []
        out = bytes(self._out)
        self._out.clear()
        return [out]

    def events(self) -> list[Event]:
        evs = self._events
        self._events = []
        return evs

    def next_deadline(self) -> float | None:
        return None  # the retrieval strategy owns any timeouts

    def on_timer(self, now: float) -> None:
        return None

    def connection_lost(self, now: float) -> None:
        if self.closed:
            return
        self.closed = True
        unanswered = tuple(o.verb for o in self._queue)
        partial = len(self._in) if self._queue else 0
        self._queue.clear()
        self._in.clear()
        self._out.clear()
        self._events.append(ConnectionLost(unanswered, now, partial))

    def receive(self, data: bytes, now: float) -> None:
        """Bytes from the server, in any chunking."""
        if self.closed or not data:
            return
        if not self._in:
            self._t_first = now
        self._in += data
        while self._parse_one(now):
            if self._in:
                self._t_first = now

    def _parse_one(self, now: float) -> bool:
        """Parse one complete greeting or response from the buffer, if there is one."""
        buf = self._in
        if not buf:
            return False
        if self._greeted and not self._queue:
            # Nothing asked: drop whole lines (e.g. an autologout notice).
            nl = buf.find(b"\r\n")
            if nl < 0:
                return False
            self.unexpected_octets += nl + 2
            del buf[: nl + 2]
            self._scan_from = 0
            return True
        if self._status_end is None:
            nl = buf.find(b"\r\n", self._scan_from)
            if nl < 0:
                self._scan_from = max(0, len(buf) - 1)
                if len(buf) > 64 * MAX_RESPONSE_LINE:
                    # A runaway status line: treat what we have as one bad line.
                    buf += b"\r\n"
                    nl = len(buf) - 2
                else:
                    return False
            line = bytes(buf[:nl]).decode("utf-8", "replace")
            if line.startswith("+OK"):
                ok, text = True, line[3:].lstrip(" ")
            elif line.startswith("-ERR"):
                ok, text = False, line[4:].lstrip(" ")
            else:
                self.bad_responses += 1
                ok, text = False, line
            self._status_end = nl + 2
            self._status = (ok, text)
            self._scan_from = nl  # the terminator search may use the status CRLF
        ok, text = self._status  # type: ignore[misc]
        t_first = self._t_first if self._t_first is not None else now
        if not self._greeted:
            self._greeted = True
            m = _CHALLENGE_RE.search(text)
            self._events.append(
                GreetingReceived(ok, text, m.group(0) if m and ok else None, t_first)
            )
            self._consume(self._status_end)
            return True
        head = self._queue[0]
        body: bytes | None = None
        end = self._status_end
        if ok and head.multiline:
            term = buf.find(_TERMINATOR, self._scan_from)
            if term < 0:
                self._scan_from = max(self._status_end - 2, len(buf) - 4)
                return False
            body = dot_unstuff(bytes(buf[self._status_end : term + 2]))
            end = term + len(_TERMINATOR)
        self._queue.popleft()
        self._events.append(
            ResponseReceived(
                verb=head.verb,
                arg_shown=head.arg_shown,
                ok=ok,
                text=text,
                body=body,
                t_sent=head.t_sent,
                t_first_byte=t_first,
                t_done=now,
                bytes_up=head.bytes_up,
                bytes_down=end,
            )
        )
        if head.verb == "QUIT":
            self.closed = True
        self._consume(end)
        return True

    def _consume(self, n: int) -> None:
        del self._in[:n]
        self._status_end = None
        self._status = None
        self._scan_from = 0
