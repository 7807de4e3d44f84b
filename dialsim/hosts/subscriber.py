"""The subscriber: a home computer of the 1990s that dials its ISP, sends, fetches mail, hangs up.

A call, as :meth:`Subscriber.call` tells it:

1. **dialing** -- the modem dials (the NAS's hunt group, or a real modem's AT
   dialogue); busy or no answer ends the attempt, and the subscriber redials
   after a while;
2. **chat** -- at CONNECT, the dialer's login chat with the ISP's terminal
   server, when the ISP has one (``chat(8)``-style expect/send);
3. **link** -- PPP negotiates (LCP, PAP/CHAP, IPCP) or SLIP is up at once;
4. **outbox** -- the mail client sends its queued mail by SMTP (RFC 5321),
   "send queued messages, then check mail" as Eudora did;
5. **retrieval** -- POP3 (RFC 1939) by the client's strategy
   (:mod:`dialsim.hosts.retrieval`), in one session or, with batch commit, in
   several in a row;
6. **online** -- only for a dialer that does not hang up when the mail is in
   (``hangup="idle"``): the line stays up, the client checks again every
   ``check_every``, and the dialer hangs up after ``idle_hangup`` without
   traffic (or the ISP does first);
7. **hangup** -- QUIT done (or the carrier lost, or a failure): the modem
   hangs up and the call's row goes into the results.

:class:`Computer` is the machine on the line during a call (chat, framing,
TCP/IP), the same object the interop tests drive against slirp and the
kernel; :class:`CallSession` adds the mail client and the record of the call;
:class:`Subscriber` is the simpy story across a replication.  What the
subscriber keeps between calls (the UIDs it has seen, its inbox, its outbox)
is its :class:`Mailbox`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum

from dialsim.drivers.sim import serve_line
from dialsim.hosts.endpoint import AppBinding, FrameLog, IpEndpoint, IpHost
from dialsim.hosts.network import ISP_ADDR, POP3_PORT, SMTP_PORT, TCP_1990S
from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.hosts.terminal import ChatScript, PhasedLineHost
from dialsim.mail.maildrop import ClientInbox
from dialsim.proto.events import Event
from dialsim.proto.machine import earliest
from dialsim.proto.netstack import NetStack
from dialsim.proto.pop3 import GreetingReceived, Pop3Client, ResponseReceived
from dialsim.proto.ppp import (
    AuthFailed,
    AuthSucceeded,
    IpcpDown,
    IpcpUp,
    LcpDown,
    LcpUp,
    LinkTerminated,
    PppConnection,
)
from dialsim.proto.tcp import Closed, Connected, ConnectionReset, ConnectionTimedOut

__all__ = [
    "CallSession",
    "Computer",
    "LinkStatus",
    "Mailbox",
    "Phase",
    "Subscriber",
    "SubscriberSettings",
]

FRAMINGS = ("slip", "cslip", "ppp")
HANGUPS = ("when_done", "idle")


@dataclass(frozen=True, slots=True)
class SubscriberSettings:
    """How the subscriber's computer is set up (its dialer, TCP/IP and mail client).

    ``address``: SLIP's address, typed into the dialer (required for SLIP);
    for PPP the address to ask IPCP for (None: let the ISP assign one).
    ``isp_address``: the ISP's (mail host's) address; PPP gives it to an ISP
    whose IPCP asks for 0.0.0.0 (slirp does).  ``mtu``: SLIP's MTU or PPP's
    MRU.  ``login_chat``: (expect, send, timeout) steps.  ``ppp_dns``: ask
    for DNS servers (RFC 1877).  ``pop3_password``: what the mail client
    sends to POP3 (None: ``password``; a different one is a wrong password).
    ``hangup``: "when_done" (hang up after the mail check) or "idle" (stay
    online, check again every ``check_every`` seconds if set, hang up after
    ``idle_hangup`` seconds without traffic).
    """

    user: str = "alice"
    password: str = field(default="", repr=False)
    domain: str = "isp.example"
    framing: str = "ppp"
    mtu: int = 1500
    address: str | None = None
    isp_address: str = ISP_ADDR
    ppp_auth: str = "pap"
    ppp_accm: int = 0
    ppp_vj: bool = True
    ppp_dns: bool = True
    ppp_fcs32: bool = False
    login_chat: tuple[tuple[str, str, float], ...] = ()
    policy: RetrievalPolicy = field(default_factory=lambda: RetrievalPolicy("delete"))
    apop: bool = False
    pipelining: bool = False
    outbox_to: tuple[str, ...] = ("bob@elsewhere.example",)
    pop3_port: int = POP3_PORT
    smtp_port: int = SMTP_PORT
    tcp_options: dict = field(default_factory=lambda: dict(TCP_1990S))
    pop3_password: str | None = field(default=None, repr=False)
    hangup: str = "when_done"
    idle_hangup: float = 600.0
    check_every: float | None = None

    def __post_init__(self) -> None:
        if self.hangup not in HANGUPS:
            raise ValueError(f"hangup must be one of {', '.join(HANGUPS)}, not {self.hangup!r}")
        if self.framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, not {self.framing!r}")
        if self.framing != "ppp" and self.address is None:
            raise ValueError("SLIP has no address negotiation: give the subscriber an address")


# --------------------------------------------------------------------------
# The computer on the line


@dataclass
class LinkStatus:
    """Whether the IP link is up and what it negotiated (from the framing's link events).

    SLIP is up at once with the configured address; PPP when IPCP opens, with
    the address IPCP assigned.  ``events`` keeps every link event with its time.
    """

    framing: str
    up: bool = False
    local_ip: str | None = None
    peer_ip: str | None = None
    dns: tuple[str, ...] = ()
    vj: bool = False  # we send VJ-compressed TCP (CSLIP always; PPP if the peer acked it)
    t_up: float | None = None
    down_reason: str | None = None
    events: list[tuple[float, object]] = field(default_factory=list)

    def set_up(self, now: float) -> None:
        self.up = True
        self.down_reason = None
        if self.t_up is None:
            self.t_up = now


class Computer:
    """The subscriber's computer during one call: the dialer's login chat (if any),
    then PPP or SLIP under a TCP/IP stack -- a machine of the project's shape over
    the serial line's octets.

    ``rng`` seeds TCP (initial sequence numbers, ports), ``ppp_rng`` PPP's magic
    numbers (default: ``rng``).  The link starts at ``now``: the chat's first
    expect, or PPP's first Configure-Request.  ``events()`` hands out the link's
    events (LcpUp, AuthSucceeded, IpcpUp, LinkTerminated, ...); ``status`` has
    what they established.
    """

    def __init__(self, settings: SubscriberSettings, *, rng: random.Random, now: float,
                 ppp_rng: random.Random | None = None, capture: FrameLog | None = None,
                 ip=None) -> None:
        self.settings = settings
        s = settings
        self.status = LinkStatus(s.framing)
        if s.framing == "ppp":
            framing = PppConnection(
                "subscriber", rng=ppp_rng or rng, mru=s.mtu, accm=s.ppp_accm, auth=s.ppp_auth,
                username=s.user, password=s.password, local_ip=s.address,
                peer_ip_pool=s.isp_address, vj=s.ppp_vj, fcs32=s.ppp_fcs32,
                dns=("0.0.0.0", "0.0.0.0") if s.ppp_dns else None)
        else:
            from dialsim.proto.slip import SlipLink

            framing = SlipLink(mtu=s.mtu, vj=s.framing == "cslip")
        # The IP host: dialsim's own stack, or ``ip`` (the subscriber's kernel behind a
        # TUN device in dialsim shell).
        if ip is None:
            stack = NetStack(s.address or "0.0.0.0", mtu=s.mtu, rng=rng, tcp_options=s.tcp_options)
            self.endpoint = IpEndpoint(framing, stack, capture=capture)
        else:
            self.endpoint = IpEndpoint(framing, capture=capture, ip=ip)
        self.chat: ChatScript | None = None
        self.t_chat_done: float | None = None
        self._events: list[Event] = []
        if s.login_chat:
            self.chat = ChatScript(list(s.login_chat), now)
            self.line = PhasedLineHost(self.chat, self.endpoint, on_switch=self._link_start)
        else:
            self.line = self.endpoint
            self._link_start(now)

    @property
    def framing(self):
        return self.endpoint.framing

    @property
    def stack(self):
        return self.endpoint.stack

    @property
    def chat_failed(self) -> str | None:
        return self.chat.failed if self.chat is not None else None

    def connect(self, addr: str, port: int, now: float, make_binding) -> AppBinding:
        return self.endpoint.connect(addr, port, now, make_binding)

    def _link_start(self, now: float) -> None:
        self.t_chat_done = now
        framing = self.endpoint.framing
        if isinstance(framing, PppConnection):
            framing.lower_up(now)
            framing.open(now)
        else:
            st = self.status
            st.local_ip, st.peer_ip, st.vj = self.settings.address, self.settings.isp_address, \
                self.settings.framing == "cslip"
            st.set_up(now)

    def _on_link_event(self, ev: Event, now: float) -> None:
        st = self.status
        st.events.append((now, ev))
        match ev:
            case IpcpUp():
                ip = self.endpoint.ip
                stack = ip.stack if isinstance(ip, IpHost) else None
                if ev.local_ip:
                    st.local_ip = ev.local_ip
                    if stack is not None:
                        stack.address = ev.local_ip
                if stack is not None:  # the peer's MRU bounds the segments of new connections
                    stack.mtu = min(stack.mtu, self.endpoint.framing.mtu)
                st.peer_ip, st.dns, st.vj = ev.peer_ip, tuple(ev.dns), bool(ev.vj)
                st.set_up(now)
            case IpcpDown() | LcpDown() | LinkTerminated():
                if st.up or isinstance(ev, LinkTerminated):
                    st.down_reason = getattr(ev, "reason", None) or (
                        "IPCP down" if isinstance(ev, IpcpDown) else "LCP down")
                st.up = False

    # -- the machine
    def receive(self, data: bytes, now: float) -> None:
        self.line.receive(data, now)

    def output(self, now: float) -> list[bytes]:
        out = self.line.output(now)
        for ev in self.line.events():
            self._on_link_event(ev, now)
            self._events.append(ev)
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        return self.line.next_deadline()

    def on_timer(self, now: float) -> None:
        # The computer's deadline is its line's: called when that is due (and
        # the line's own on_timer checks its parts anyway).
        self.line.on_timer(now)


# --------------------------------------------------------------------------
# What the subscriber keeps between calls


@dataclass
class Provenance:
    """Where a retrieved message came from: when it reached the ISP, and how
    often the ISP has started sending it (RETR) so far."""

    t_arrived_s: float
    attempts: int = 0


class Mailbox:
    """The subscriber's side of the mail: the inbox (a real Maildir), the UIDs the
    client has seen, how often each message arrived, and the outbox.

    ``origin(sha256) -> Provenance | None`` tells whether a message is one the
    ISP stored (``intact``) and when it arrived there (mail latency); it is the
    experiment's knowledge, not the client's.
    """

    def __init__(self, inbox: ClientInbox, outbox: list[bytes],
                 origin: Callable[[str], Provenance | None]) -> None:
        self.inbox = inbox
        self.outbox = list(outbox)
        self.origin = origin
        self.seen_uidls: set[str] = set()
        self.retrieved_at: dict[str, float] = {}  # uidl -> first retrieved (leave on server)
        self.headers_seen: set[str] = set()  # uidls whose header alone was fetched
        self.retrieved_count: dict[str, int] = {}  # sha256 -> times retrieved
        self.sent_sha: set[str] = set()  # outbox mail the ISP answered 250 to

    def keep(self, data: bytes) -> tuple[str, int]:
        """File a retrieved message; (its sha256, how often it came before)."""
        sha = hashlib.sha256(data).hexdigest()
        before = self.retrieved_count.get(sha, 0)
        self.retrieved_count[sha] = before + 1
        self.inbox.add(data)
        return sha, before

    def sent(self, message: bytes) -> str:
        """The ISP accepted ``message`` (250 after DATA): it leaves the outbox."""
        if message in self.outbox:
            self.outbox.remove(message)
        sha = hashlib.sha256(message).hexdigest()
        self.sent_sha.add(sha)
        return sha


# --------------------------------------------------------------------------
# One call


class Phase(StrEnum):
    DIALING = "dialing"
    CHAT = "chat"
    LINK = "link"
    OUTBOX = "outbox"
    RETRIEVAL = "retrieval"
    ONLINE = "online"
    HANGUP = "hangup"


class CallSession:
    """One call of the subscriber's computer, with its mail client, as a line host.

    It writes what it does into ``recorder`` as it goes (commands, messages)
    and the call's own row at :meth:`hung_up`.  ``finished`` turns true when the
    session is over on its own (QUIT done, or a failure); the driver then hangs
    up.  ``mail_done`` says the last mail check ended with its QUIT answered.
    """

    def __init__(self, settings: SubscriberSettings, mailbox: Mailbox, recorder, *,
                 session: int, attempt: int, row: dict, now: float) -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.rec = recorder
        self.session = session
        self.phase = Phase.DIALING
        self.row = {"session": session, "attempt": attempt + 1, **row, "t_dial_s": now}
        self.computer: Computer | None = None
        self.retrieval: RetrievalSession | None = None
        self.end_reason: str | None = None
        self.mail_done = False
        self._pop3_opened = False
        self._queued: list[bytes] = []
        self._refused = False  # the POP3 connection was reset before any greeting
        self._greeted = False  # this POP3 session's greeting came
        self._t_traffic = now
        self._next_check: float | None = None
        self.counts = {"retrieved": 0, "octets": 0, "sent": 0, "octets_sent": 0,
                       "pop3_sessions": 0, "wasted": 0, "headers": 0}

    @property
    def finished(self) -> bool:
        return self.end_reason is not None

    # -- call progress from the driver
    def not_connected(self, outcome: str, now: float, t_answer: float | None = None) -> None:
        """The dial ended without a call: busy, no answer, no carrier."""
        self.end_reason = outcome
        self.phase = Phase.HANGUP
        self.row.update(t_end_s=now, end_reason=outcome, t_answer_s=_or_nan(t_answer))
        self.rec.session(**self.row)

    def connected(self, rate_down: float, rate_up: float, now: float, *,
                  rng: random.Random, ppp_rng: random.Random,
                  capture: FrameLog | None = None, t_answer: float | None = None) -> None:
        """CONNECT: the computer takes the line (chat, then PPP/SLIP)."""
        self.row.update(t_connect_s=now, connect_rate_bps=float(rate_down),
                        connect_rate_up_bps=float(rate_up), t_answer_s=_or_nan(t_answer))
        self.phase = Phase.CHAT if self.settings.login_chat else Phase.LINK
        self._t_traffic = now
        self.computer = Computer(self.settings, rng=rng, ppp_rng=ppp_rng, now=now, capture=capture)
        self._after(now)

    # -- the machine on the line
    def receive(self, data: bytes, now: float) -> None:
        if data:
            self._t_traffic = now
        self.computer.receive(data, now)

    def output(self, now: float) -> list[bytes]:
        out = self.computer.output(now)
        while self._after(now):
            out += self.computer.output(now)
        if out:
            self._t_traffic = now
        return out

    def events(self) -> list[Event]:
        return []

    def next_deadline(self) -> float | None:
        if self.computer is None:
            return None
        computer = self.computer.next_deadline()
        if self.phase is not Phase.ONLINE or self.finished:
            return computer  # mail in progress: only the computer's timers
        own = self._t_traffic + self.settings.idle_hangup
        if self._next_check is not None:
            own = min(own, self._next_check)
        return earliest([computer, own])

    def on_timer(self, now: float) -> None:
        self.computer.on_timer(now)  # its parts check their own deadlines
        if self.phase is not Phase.ONLINE or self.finished:
            return
        if self._next_check is not None and now >= self._next_check:
            self._next_check = None
            self._start_check(now)
        elif now >= self._t_traffic + self.settings.idle_hangup:
            self._finish("quit")  # the dialer's idle timer: the mail was in

    def _after(self, now: float) -> bool:
        """Act on what the link did; True if that gave the computer more to send."""
        for ev in self.computer.events():
            self._on_link(ev, now)
        if self.computer.chat_failed and not self.finished:
            self._finish("chat_failed")
        if self.phase is Phase.CHAT and self.computer.t_chat_done is not None:
            self.phase = Phase.LINK
        if self.phase is Phase.LINK and self.computer.status.up and not self.finished:
            return self._link_up(now)
        return False

    def _on_link(self, ev: Event, now: float) -> None:
        match ev:
            case LcpUp():
                self.row["t_lcp_up_s"] = now
            case AuthSucceeded():
                self.row["t_auth_s"] = now
            case IpcpUp():
                self.row["t_ipcp_up_s"] = now
            case AuthFailed():
                self._finish("ppp_auth_failed")
            case LinkTerminated():
                self._finish("ppp_terminated")

    def _link_up(self, now: float) -> bool:
        self.row["t_chat_done_s"] = self.computer.t_chat_done
        self.row["t_link_up_s"] = now
        if self.mailbox.outbox:
            self._send_outbox(now)
        else:
            self._open_pop3(now)
        return True

    def time_up(self) -> None:
        """The call's holding time ran out (a holding-time model): it ends here,
        its mail done or not."""
        self._finish("holding_time")

    def _finish(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
            self.phase = Phase.HANGUP

    # -- the outbox (SMTP)
    def _send_outbox(self, now: float) -> None:
        from dialsim.proto.smtp import SmtpClient  # a call with no outbox never loads SMTP

        s = self.settings
        self.phase = Phase.OUTBOX
        smtp = SmtpClient(helo_name=f"{s.user}-pc.{s.domain}", now=now)
        self._queued = list(self.mailbox.outbox)
        for msg in self._queued:
            smtp.send_mail(f"{s.user}@{s.domain}", list(s.outbox_to), msg, now)
        smtp.quit(now)
        self.computer.connect(s.isp_address, s.smtp_port, now,
                              lambda conn, now: AppBinding(conn, smtp, on_event=self._on_smtp))

    def _on_smtp(self, ev: object, now: float) -> None:
        from dialsim.proto.smtp import ClientSessionEnded, MailSent, ReplyReceived

        match ev:
            case ReplyReceived():
                self._command("smtp", ev.command, ev, ok=ev.code < 400)
            case MailSent(ok=True):
                msg = self._queued[ev.index]
                sha = self.mailbox.sent(msg)
                self.counts["sent"] += 1
                self.counts["octets_sent"] += len(msg)
                self.rec.message(session=self.session, direction="sent", uidl="",
                                 size_octets=len(msg), sha256=sha, t_retrieved_s=now,
                                 duplicate=False, intact=True, attempts=1)
            case ClientSessionEnded() | Closed() | ConnectionReset() | ConnectionTimedOut():
                self._open_pop3(now)

    # -- retrieval (POP3)
    def _open_pop3(self, now: float) -> None:
        if self._pop3_opened:
            return
        self._pop3_opened = True
        self._start_check(now)

    def _start_check(self, now: float) -> None:
        """A POP3 session: the first of the call, the next batch, or a periodic check."""
        s = self.settings
        self.phase = Phase.RETRIEVAL
        self.mail_done = False
        self._refused = self._greeted = False
        self.counts["pop3_sessions"] += 1
        client = Pop3Client(now=now)
        mb = self.mailbox
        self.retrieval = RetrievalSession(
            client, user=s.user, password=s.pop3_password or s.password, policy=s.policy,
            seen_uidls=mb.seen_uidls, use_apop=s.apop, pipelining=s.pipelining,
            retrieved_at=mb.retrieved_at, headers_seen=mb.headers_seen, deliver=self._keep)
        self.computer.connect(s.isp_address, s.pop3_port, now,
                              lambda conn, now: AppBinding(conn, client, on_event=self._on_pop3))

    def _on_pop3(self, ev: object, now: float) -> None:
        retrieval = self.retrieval
        match ev:
            case Connected():
                self.row.setdefault("t_pop3_connected_s", now)
            case ConnectionReset() if not self._greeted:
                self._refused = True  # nobody listening on the POP3 port
            case GreetingReceived():
                self._greeted = True
                self.row.setdefault("t_pop3_greeting_s", now)
            case ResponseReceived():
                self._command("pop3", f"{ev.verb} {ev.arg_shown}".strip(), ev, ok=bool(ev.ok))
                if ev.verb in ("PASS", "APOP") and ev.ok:
                    self.row.setdefault("t_logged_in_s", now)
        heads = len(retrieval.headers)
        retrieval.on_event(ev, now)  # retrieved messages go to self._keep as they arrive
        self.counts["headers"] += len(retrieval.headers) - heads
        if retrieval.done and not self.finished and self.phase is Phase.RETRIEVAL:
            self._check_done(now)

    def _check_done(self, now: float) -> None:
        r = self.retrieval
        self.counts["wasted"] += r.partial_octets
        if not (r.quit_ok and not r.error):
            self._finish(self._failure(r))
        elif r.more:
            self._start_check(now)  # batch commit: the DELEs so far took effect
        else:
            self.mail_done = True
            if self.settings.hangup == "when_done":
                self._finish("quit")
            else:
                self.phase = Phase.ONLINE
                every = self.settings.check_every
                self._next_check = now + every if every is not None else None

    def _failure(self, r: RetrievalSession) -> str:
        if r.error == "greeting" or (r.error == "connection_lost" and self._refused):
            return "pop3_refused"
        if r.error == "auth":
            return "wrong_password"
        return r.error or "error"

    def _keep(self, uidl: str | None, data: bytes, t_done: float, octets: int) -> None:
        # Keyed by content: a client that does not track UIDLs cannot tell a
        # message fetched twice from a new one, but the tables can.
        sha, before = self.mailbox.keep(data)
        self.counts["retrieved"] += 1
        self.counts["octets"] += len(data)
        if before:
            self.counts["wasted"] += octets  # transferred again
        origin = self.mailbox.origin(sha)
        nan = float("nan")
        self.rec.message(
            session=self.session, direction="retrieved", uidl=uidl or "",
            size_octets=len(data), sha256=sha, t_retrieved_s=t_done, duplicate=before > 0,
            intact=origin is not None,
            t_arrived_s=origin.t_arrived_s if origin is not None else nan,
            latency_s=t_done - origin.t_arrived_s if origin is not None else nan,
            attempts=origin.attempts if origin is not None else 0)

    def _command(self, protocol: str, command: str, ev, *, ok: bool) -> None:
        self.rec.command(session=self.session, protocol=protocol, command=command,
                         t_sent_s=ev.t_sent, t_first_byte_s=ev.t_first_byte, t_done_s=ev.t_done,
                         bytes_up=ev.bytes_up, bytes_down=ev.bytes_down, ok=ok)

    # -- the end
    def _cut_short(self) -> int:
        """Octets of a RETR or TOP answer the end of the call cut short."""
        r = self.retrieval
        if r is None or r.done:
            return 0
        pending = r.client.pending_response
        return pending[2] if pending is not None and pending[0] in ("RETR", "TOP") else 0

    def hung_up(self, now: float, port_counters: dict[str, float], *, cause: str | None = None,
                line: dict | None = None) -> str:
        """The call is over (hung up, the carrier lost, or the ISP hung up: ``cause``):
        write its row; the reason.  ``line``: the call's rates after retrains."""
        reason = self.end_reason or cause or "carrier_lost"
        self.end_reason = reason
        self.phase = Phase.HANGUP
        c = port_counters
        ep = self.computer.endpoint
        self.counts["wasted"] += self._cut_short()
        self.row.update(
            t_end_s=now, end_reason=reason,
            messages_retrieved=self.counts["retrieved"], octets_retrieved=self.counts["octets"],
            messages_sent=self.counts["sent"], octets_sent=self.counts["octets_sent"],
            octets_wasted=self.counts["wasted"], pop3_sessions=self.counts["pop3_sessions"],
            headers_fetched=self.counts["headers"],
            # Octets through the serial ports (framed, escaped), and the bits the
            # modems put on the line for them (start/stop or LAPM, after V.42bis).
            line_bytes_down=int(c["octets_in"]), line_bytes_up=int(c["octets_out"]),
            line_bits_down=_bits(c["line_octets_in"]), line_bits_up=_bits(c["line_octets_out"]),
            **(line or {}), **ep.received.as_dict("down"), **ep.sent.as_dict("up"))
        self.rec.session(**self.row)
        return reason


def _bits(octets: float) -> int:
    """Line bits for the row; 0 where the line does not tell (a real modem)."""
    return 0 if octets != octets else int(round(octets * 8))


def _or_nan(t: float | None) -> float:
    return float("nan") if t is None else float(t)


# --------------------------------------------------------------------------
# The replication's story


def _first_of(env, *events):
    """A plain event that fires when the first of ``events`` does.  (Not
    ``a | b``: a condition nested in the conditions serve_line waits on loses
    its own callbacks once an outer one fires.)"""
    first = env.event()

    def fire(_ev) -> None:
        if not first.triggered:
            first.succeed()

    for ev in events:
        ev.callbacks.append(fire)
    return first


@dataclass(frozen=True, slots=True)
class CallPlan:
    """When the subscriber calls: at 0, then ``every`` seconds (None: once), until
    ``duration``; each call redials up to ``attempts`` times, ``delay`` apart.

    ``next_call(now, planned)``, when given, decides instead: the time of the
    first call (``planned`` None) or of the call after the one planned for
    ``planned`` that ended at ``now``.  ``holding()``, when given, draws how long
    a connected call stays up: the subscriber hangs up then, whether or not
    its mail is done (a holding-time model), and not before.
    """

    duration: float
    every: float | None = None
    attempts: int = 3
    delay: float = 30.0
    next_call: Callable[[float, float | None], float] | None = None
    holding: Callable[[], float] | None = None


# A wrong password will not get better by redialling; a call whose holding
# time ran out was not a failure.
_NO_REDIAL = ("quit", "auth", "wrong_password", "ppp_auth_failed", "holding_time")


def _line_info(call) -> dict:
    """The call's rates after retrains, for its sessions row."""
    return {"connect_rate_lowest_bps": float(call.lowest_rate_down_bps),
            "connect_rate_final_bps": float(call.rate_down_bps), "retrains": call.retrains}


class Subscriber:
    """The subscriber across a replication, in simpy time.

    ``dial()`` is a simpy process returning a
    :class:`~dialsim.link.call.DialResult` (the NAS's hunt group in a
    simulation); ``rngs`` has "tcp" and "ppp" :class:`random.Random` streams.
    """

    def __init__(self, env, settings: SubscriberSettings, mailbox: Mailbox, plan: CallPlan,
                 dial: Callable[[], Generator], recorder, *, rngs: dict[str, random.Random],
                 row: dict, capture: FrameLog | None = None) -> None:
        self.env = env
        self.settings = settings
        self.mailbox = mailbox
        self.plan = plan
        self.dial = dial
        self.rec = recorder
        self.rngs = rngs
        self.row = row
        self.capture = capture
        self.sessions = 0
        self.mail_done = False  # the last call's mail check was complete (then no redial)
        self._in_progress: tuple[CallSession, object] | None = None  # (session, call or None)

    def run(self):
        """simpy process: the calls of the replication."""
        env, plan = self.env, self.plan
        t_next = 0.0 if plan.next_call is None else plan.next_call(0.0, None)
        while t_next < plan.duration:
            if env.now < t_next:
                yield env.timeout(t_next - env.now)
            for attempt in range(plan.attempts):
                reason = yield from self.call(attempt)
                if reason in _NO_REDIAL or self.mail_done:
                    break
                yield env.timeout(plan.delay)
            if plan.next_call is not None:
                t_next = plan.next_call(env.now, t_next)
                continue
            if plan.every is None:
                return
            t_next += plan.every
            while t_next <= env.now:
                t_next += plan.every

    def call(self, attempt: int):
        """One call: dial, let the computer work the line until it is done or the
        carrier goes, hang up, record.  Returns how it ended."""
        env = self.env
        self.sessions += 1
        session = CallSession(self.settings, self.mailbox, self.rec, session=self.sessions,
                              attempt=attempt, row=self.row, now=env.now)
        self.mail_done = False
        self._in_progress = (session, None)
        result = yield env.process(self.dial())
        if result.outcome != "connect":
            self._in_progress = None
            session.not_connected(result.outcome, env.now, result.t_answer)
            return result.outcome
        call = result.call
        self._in_progress = (session, call)
        session.connected(result.connect_rate_down_bps, result.connect_rate_up_bps, env.now,
                          rng=self.rngs["tcp"], ppp_rng=self.rngs["ppp"], capture=self.capture,
                          t_answer=result.t_answer)
        if self.plan.holding is None:
            yield from serve_line(env, session, call.subscriber, call.carrier_lost,
                                  done=lambda: session.finished)
        else:
            held = env.timeout(self.plan.holding())
            yield from serve_line(env, session, call.subscriber,
                                  _first_of(env, call.carrier_lost, held))
            if held.processed:
                session.time_up()
        if call.up:
            call.hangup("subscriber")
        self._in_progress = None
        self.mail_done = session.mail_done
        return session.hung_up(env.now, call.subscriber.counters, cause=call.end_cause,
                               line=_line_info(call))

    def close_books(self, now: float) -> None:
        """The replication ends during a call: write its row as it stands, ended
        ``unfinished`` at ``now`` (a pool's line was held until then)."""
        if self._in_progress is None:
            return
        session, call = self._in_progress
        self._in_progress = None
        if call is None:
            session.not_connected("unfinished", now)
        else:
            session.end_reason = "unfinished"
            session.hung_up(now, call.subscriber.counters, line=_line_info(call))

