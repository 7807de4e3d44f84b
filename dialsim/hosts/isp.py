"""The ISP: a NAS with modem lines in front of one mail host (POP3, SMTP, maildrops).

A 1990s ISP answered each call on one line of its NAS (terminal server): an
optional text login chat, then PPP (RFC 1661 LCP, PAP/CHAP, RFC 1332 IPCP
with RFC 1144 VJ and RFC 1877 DNS) or SLIP/CSLIP (RFC 1055/1144).  Behind
the NAS one mail host served every subscriber: POP3 (RFC 1939) and SMTP
(RFC 5321) over its TCP/IP stack, storing into maildrops.

Sans-IO, like every host here.  :class:`NasPort` is one line: a machine of the
project's shape over the line's octets.  :class:`Isp` composes the lines with
the mail host's :class:`~dialsim.hosts.endpoint.IpHost` and routes datagrams
between them by the subscriber's address; a driver feeds it per line
(``receive(line, data, now)``) and writes what ``output(now)`` hands back to
each line.  The mail host runs on between calls -- its TCP retransmits to a
subscriber that is gone, its POP3 autologout fires -- as on a real NAS; what
it sends to a line with no call is dropped (no route) and counted.

The ISP's own failure processes: a NAS line hangs up after ``idle_timeout``
seconds without traffic and after ``session_limit`` seconds of call (as
terminal servers' idle and session timers did; :meth:`Isp.hangups` tells the
driver which lines to hang up and why), and the POP3 service refuses a
connection with ``pop3_refusal_probability``: nobody listening (a TCP RST
to the SYN) or a busy server (``-ERR [SYS/TEMP]`` instead of the greeting).

Storage is an effect: the servers ask, and the ``store`` given here
(:class:`~dialsim.hosts.mailhost.MailStore`) answers -- scratch mail in memory in a
simulated replication, which takes no simulated time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dialsim.hosts.endpoint import AppBinding, IpHost, LinkInterface, answer_effects
from dialsim.hosts.network import (
    DNS_SERVERS,
    ISP_ADDR,
    POP3_PORT,
    SMTP_PORT,
    TCP_1990S,
    line_address,
)
from dialsim.hosts.terminal import PhasedLineHost, TerminalServer
from dialsim.proto.events import Event, IpPacketReceived
from dialsim.proto.ipv4 import ip_to_bytes
from dialsim.proto.machine import earliest, fire_due
from dialsim.proto.netstack import NetStack
from dialsim.proto.pop3 import CLOSED as POP3_CLOSED
from dialsim.proto.pop3 import Pop3Server
from dialsim.proto.ppp import PppConnection

__all__ = ["Isp", "IspSettings", "NasPort", "internet_mail"]

_ISP_OCTETS = bytes(int(x) for x in ISP_ADDR.split("."))


@dataclass(frozen=True, slots=True)
class IspSettings:
    """What the ISP runs.  ``framing``: "ppp", "slip" or "cslip" after the login
    chat (``login_prompts``: the terminal server's prompts, empty for none);
    ``mtu``: PPP's MRU or SLIP's MTU; the POP3 policy (RFC 1939 autologout,
    RFC 2449 LOGIN-DELAY, a cap on the sessions open at once); the NAS's
    ``idle_timeout`` and ``session_limit`` (seconds, None: none); POP3 refusals
    (``pop3_refusal``: "not_listening" or "busy")."""

    domain: str = "isp.example"
    framing: str = "ppp"
    mtu: int = 1500
    ppp_auth: str = "pap"
    ppp_accm: int = 0
    ppp_vj: bool = True
    ppp_fcs32: bool = False
    login_prompts: tuple[str, ...] = ()
    pop3_autologout: float = 600.0
    pop3_login_delay: float = 0.0
    pop3_max_sessions: int | None = None  # beyond them a new session hears -ERR [SYS/TEMP]
    tcp_options: dict = field(default_factory=lambda: dict(TCP_1990S))
    idle_timeout: float | None = None
    session_limit: float | None = None
    pop3_refusal_probability: float = 0.0
    pop3_refusal: str = "not_listening"

    def __post_init__(self) -> None:
        if self.pop3_refusal not in REFUSALS:
            raise ValueError(f"pop3_refusal must be one of {', '.join(REFUSALS)}")
        if not 0.0 <= self.pop3_refusal_probability <= 1.0:
            raise ValueError("pop3_refusal_probability must be in [0, 1]")


REFUSALS = ("not_listening", "busy")


class NasPort:
    """One modem line of the NAS: a login chat, then PPP or SLIP, for one call at a time.

    ``events()`` hands up the datagrams that arrived and the link's state changes.
    """

    def __init__(self, line: int, settings: IspSettings, accounts, ppp_rng: random.Random) -> None:
        self.line = line
        self.settings = settings
        self.accounts = accounts
        self.ppp_rng = ppp_rng
        self.peer_address = line_address(line)
        self.link: LinkInterface | None = None
        self.host = None  # the machine on the line: the link, or a chat in front of it
        self.calls = 0
        self.dropped_packets = 0  # datagrams for this line while it had no call
        self.t_answer = 0.0
        self.t_traffic = 0.0  # octets last crossed the line
        self.hangup_cause: str | None = None  # the NAS wants to hang up, and why

    @property
    def in_call(self) -> bool:
        return self.host is not None

    def answer(self, now: float) -> None:
        """A call came in: a fresh terminal server and framing for it."""
        s = self.settings
        self.calls += 1
        self.t_answer = self.t_traffic = now
        self.hangup_cause = None
        self.link = LinkInterface(self._framing())
        prompts = s.login_prompts
        if prompts:
            banner = ("Entering PPP mode." if s.framing == "ppp" else
                      f"Entering SLIP mode. Your IP address is {self.peer_address}, MTU is {s.mtu}.")
            server = TerminalServer(list(prompts), self.accounts, banner=banner, now=now)
            self.host = PhasedLineHost(server, self.link, on_switch=self._link_start)
        else:
            self.host = self.link
            self._link_start(now)

    def _framing(self):
        s = self.settings
        if s.framing != "ppp":
            from dialsim.proto.slip import SlipLink

            return SlipLink(mtu=s.mtu, vj=s.framing == "cslip")
        return PppConnection("isp", rng=self.ppp_rng, mru=s.mtu, accm=s.ppp_accm, auth=s.ppp_auth,
                             authenticator=self.accounts, local_ip=ISP_ADDR,
                             peer_ip_pool=self.peer_address, dns=DNS_SERVERS, vj=s.ppp_vj,
                             fcs32=s.ppp_fcs32)

    def _link_start(self, now: float) -> None:
        framing = self.link.framing
        if isinstance(framing, PppConnection):
            framing.lower_up(now)
            framing.open(now)

    def hung_up(self, now: float) -> None:
        """The call is over: the line is free."""
        if self.link is not None and isinstance(self.link.framing, PppConnection):
            self.link.framing.lower_down(now)
            self.link.events()  # LinkTerminated: nobody to tell
        self.link = None
        self.host = None

    # -- the machine (only while in a call)
    def receive(self, data: bytes, now: float) -> None:
        if self.host is not None:
            self.t_traffic = now
            self.link.stamp(now)
            self.host.receive(data, now)

    def send_ip(self, packet: bytes, now: float) -> None:
        if self.link is None:
            self.dropped_packets += 1
            return
        self.link.send_ip(packet, now)

    def output(self, now: float) -> list[bytes]:
        out = self.host.output(now) if self.host is not None else []
        if out:
            self.t_traffic = now
        return out

    def events(self) -> list[Event]:
        return self.host.events() if self.host is not None else []

    def _hangup_deadline(self) -> tuple[float, str] | None:
        s = self.settings
        if self.host is None or self.hangup_cause is not None:
            return None
        due = []
        if s.idle_timeout is not None:
            due.append((self.t_traffic + s.idle_timeout, "isp_idle_timeout"))
        if s.session_limit is not None:
            due.append((self.t_answer + s.session_limit, "isp_session_limit"))
        return min(due) if due else None

    def next_deadline(self) -> float | None:
        if self.host is None:
            return None
        hangup = self._hangup_deadline()
        return earliest([self.host.next_deadline(), hangup[0] if hangup else None])

    def on_timer(self, now: float) -> None:
        if self.host is not None:
            fire_due(self.host, now)
        hangup = self._hangup_deadline()
        if hangup is not None and hangup[0] <= now:
            self.hangup_cause = hangup[1]


class Isp:
    """The NAS's lines and the mail host behind them.

    ``accounts``: the subscribers (PAP/CHAP, the login chat, POP3);
    ``delivery``: where SMTP's accepted mail goes (and who is local);
    ``store``: carries out the servers' storage effects (``carry_out``).
    """

    def __init__(self, settings: IspSettings, accounts, delivery, store, *, lines: int = 1,
                 tcp_rng: random.Random, ppp_rng: random.Random,
                 fault_rng: random.Random | None = None) -> None:
        self.settings = settings
        self.accounts = accounts
        self.delivery = delivery
        self.store = store
        stack = NetStack(ISP_ADDR, mtu=settings.mtu, rng=tcp_rng, tcp_options=settings.tcp_options)
        self.mail = IpHost(stack)
        self.mail.listen(POP3_PORT, self._pop3_binding)
        self.mail.listen(SMTP_PORT, self._smtp_binding)
        self.ports = [NasPort(i, settings, accounts, ppp_rng) for i in range(lines)]
        # Datagrams for anywhere but the mail host: dropped, unless a way out to the
        # world is given (dialsim shell's slirp-like NAT, hosts/nat.py).
        self.internet = None
        self._route = {ip_to_bytes(p.peer_address): p for p in self.ports}  # by the four octets
        self._in_call: list[NasPort] = []  # the ports with a call, by line: the only ones to run
        # Lines given octets, datagrams, a timer or a call since output() last ran
        # dry: only they can have something to say (a pool of many quiet lines).
        self._stirred: set[int] = set()
        self._deadlines: dict[int, float | None] = {}  # of the lines not stirred since
        self.last_logins: dict[str, float] = {}  # RFC 2449 LOGIN-DELAY across sessions
        self.pop3_sessions = 0
        self.pop3_refused = 0
        self.smtp_sessions = 0
        self._faults = fault_rng or random.Random(0)
        self._reported: set[tuple[int, int]] = set()  # (line, call) hang-ups handed out

    def _pop3_binding(self, conn, now: float) -> AppBinding:
        self.pop3_sessions += 1
        s = self.settings
        busy = None
        if s.pop3_refusal == "busy" and self._refuses():
            busy = "too many connections, try again later"
        elif s.pop3_max_sessions is not None and self.pop3_open() >= s.pop3_max_sessions:
            self.pop3_refused += 1
            busy = "too many sessions, try again later"
        server = Pop3Server(self.accounts, hostname=f"pop.{s.domain}", now=now,
                            idle_timeout=s.pop3_autologout, login_delay=s.pop3_login_delay,
                            last_logins=self.last_logins, busy=busy)
        return AppBinding(conn, server, carry_out=self.store.carry_out)

    def pop3_open(self) -> int:
        """POP3 sessions not yet over (a caller gone without QUIT holds one until
        its autologout or TCP gives up)."""
        return sum(1 for b in self.mail.bindings
                   if isinstance(b.machine, Pop3Server) and b.machine.state != POP3_CLOSED)

    def _smtp_binding(self, conn, now: float) -> AppBinding:
        # Connections arriving on a NAS line come from dial-up subscribers: they
        # may relay to other domains (never an open relay to the Internet).
        from dialsim.proto.smtp import SmtpServer  # loaded by the first SMTP session

        self.smtp_sessions += 1
        server = SmtpServer(self.delivery, hostname=f"mail.{self.settings.domain}",
                            local_domains=(self.settings.domain,), subscriber_client=True, now=now)
        return AppBinding(conn, server, carry_out=self.store.carry_out)

    # -- calls
    def free_line(self) -> int | None:
        """The first line without a call (a hunt group), or None: all busy."""
        return next((p.line for p in self.ports if not p.in_call), None)

    def answer(self, line: int, now: float) -> None:
        port = self.ports[line]
        port.answer(now)
        self._stirred.add(line)
        if port not in self._in_call:
            self._in_call = sorted([*self._in_call, port], key=lambda p: p.line)

    def hung_up(self, line: int, now: float) -> None:
        port = self.ports[line]
        port.hung_up(now)
        self._in_call = [p for p in self._in_call if p is not port]
        self._deadlines.pop(line, None)

    def hangups(self) -> list[tuple[int, str]]:
        """(line, cause) of the lines whose NAS timers ran out since the last call:
        the driver hangs those calls up."""
        out = []
        for p in self.ports:
            key = (p.line, p.calls)
            if p.in_call and p.hangup_cause is not None and key not in self._reported:
                self._reported.add(key)
                out.append((p.line, p.hangup_cause))
        return out

    def _refuses(self) -> bool:
        """One draw per POP3 connection attempt (only when refusals are on)."""
        p = self.settings.pop3_refusal_probability
        if p <= 0.0:
            return False
        refused = self._faults.random() < p
        self.pop3_refused += refused
        return refused

    # -- the lines' octets
    def receive(self, line: int, data: bytes, now: float) -> None:
        self.ports[line].receive(data, now)
        self._stirred.add(line)

    def output(self, now: float) -> list[tuple[int, bytes]]:
        """Run the lines and the mail host until nothing moves: (line, frame) to write."""
        out: list[tuple[int, bytes]] = []
        mail = self.mail
        # What the lines brought since the last call; each turn below then takes
        # the events of the lines it ran, so a turn starts with none.
        moved = self._up(self._awake(), now)
        for turn in range(10_000):
            packets = mail.output(now, again=turn > 0)
            if self.internet is not None:
                packets = packets + self.internet.output(now)
            if not packets and turn:
                # A line hands out only what receive, send_ip and on_timer
                # queued, and the last turn took it all: nothing more to move.
                break
            for pkt in packets:
                moved = True
                self._route_to_line(pkt, now)
            awake = self._awake()
            for port in awake:
                frames = port.output(now)
                if frames:
                    moved = True
                    out += [(port.line, f) for f in frames]
            if self._up(awake, now):
                moved = True
            if not moved:
                break
            moved = False
        mail.events()  # the mail host pings no one: nothing to hand up
        for port in self._awake():
            self._deadlines[port.line] = port.next_deadline()
        self._stirred.clear()
        return out

    def _awake(self) -> list[NasPort]:
        stirred = self._stirred
        return [p for p in self._in_call if p.line in stirred]

    def _up(self, ports: list[NasPort], now: float) -> bool:
        moved = False
        for port in ports:
            if port.in_call:
                for ev in port.events():
                    moved = True
                    if isinstance(ev, IpPacketReceived):
                        self._from_line(ev.packet, now)
        return moved

    def _from_line(self, packet: bytes, now: float) -> None:
        if self.internet is not None and packet[16:20] != _ISP_OCTETS:
            self.internet.receive(packet, now)
        else:
            self._to_mail_host(packet, now)

    def _to_mail_host(self, packet: bytes, now: float) -> None:
        s = self.settings
        if s.pop3_refusal == "not_listening" and _is_syn_to(packet, POP3_PORT) and self._refuses():
            # The POP3 daemon is down: the mail host's TCP answers RST.
            stack = self.mail.stack
            stack.unlisten(POP3_PORT)
            self.mail.receive(packet, now)
            stack.listen(POP3_PORT)
            return
        self.mail.receive(packet, now)

    def _route_to_line(self, packet: bytes, now: float) -> None:
        port = self._route.get(packet[16:20])
        if port is None:
            self.ports[0].dropped_packets += 1
            return
        port.send_ip(packet, now)
        self._stirred.add(port.line)

    def next_deadline(self) -> float | None:
        stirred, known = self._stirred, self._deadlines
        internet = self.internet.next_deadline() if self.internet is not None else None
        return earliest([self.mail.next_deadline(), internet,
                         *(known[p.line] if p.line in known and p.line not in stirred
                           else p.next_deadline() for p in self._in_call)])

    def on_timer(self, now: float) -> None:
        self.mail.on_timer(now)
        if self.internet is not None:
            self.internet.on_timer(now)
        for p in self._in_call:
            if fire_due(p, now):
                self._stirred.add(p.line)



def _is_syn_to(packet: bytes, port: int) -> bool:
    """An IPv4 TCP segment with SYN and without ACK for ``port`` (a connection attempt)."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return False
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 14:
        return False
    flags = packet[ihl + 13]
    return int.from_bytes(packet[ihl + 2:ihl + 4], "big") == port and flags & 0x12 == 0x02


def internet_mail(isp: Isp, sender: str, recipients: list[str], data: bytes, now: float) -> bool:
    """Mail from a host on the Internet side reaches the ISP's mail exchanger: one
    SMTP transaction in memory, taking no simulated time (that side is fast next to
    a modem) -- real SMTP through the same server code the subscribers use, and
    the same store.  True when the server answered 250 to the message."""
    from dialsim.proto.smtp import MailSent, SmtpClient, SmtpServer

    domain = isp.settings.domain
    server = SmtpServer(isp.delivery, hostname=f"mx.{domain}", local_domains=(domain,),
                        subscriber_client=False, now=now)
    client = SmtpClient(helo_name="mta.elsewhere.example", now=now)
    client.send_mail(sender, recipients, data, now)
    client.quit(now)
    for _ in range(10_000):
        answer_effects(server, isp.store.carry_out, now)
        a, b = b"".join(server.output(now)), b"".join(client.output(now))
        if not a and not b:
            break
        if a:
            client.receive(a, now)
        if b:
            server.receive(b, now)
    return any(isinstance(e, MailSent) and e.ok for e in client.events())
