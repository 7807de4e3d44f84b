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
from dialsim.proto.machine import fire_due
from dialsim.proto.netstack import NetStack
from dialsim.proto.pop3 import Pop3Server
from dialsim.proto.ppp import PppConnection
from dialsim.proto.slip import SlipLink
from dialsim.proto.smtp import MailSent, SmtpClient, SmtpServer

__all__ = ["Isp", "IspSettings", "NasPort", "internet_mail"]


@dataclass(frozen=True, slots=True)
class IspSettings:
    """What the ISP runs.  ``framing``: "ppp", "slip" or "cslip" after the login
    chat (``login_prompts``: the terminal server's prompts, empty for none);
    ``mtu``: PPP's MRU or SLIP's MTU; the POP3 policy (RFC 1939 autologout,
    RFC 2449 LOGIN-DELAY)."""

    domain: str = "isp.example"
    framing: str = "ppp"
    mtu: int = 1500
    ppp_auth: str = "pap"
    ppp_accm: int = 0
    ppp_vj: bool = True
    login_prompts: tuple[str, ...] = ()
    pop3_autologout: float = 600.0
    pop3_login_delay: float = 0.0
    tcp_options: dict = field(default_factory=lambda: dict(TCP_1990S))


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

    @property
    def in_call(self) -> bool:
        return self.host is not None

    def answer(self, now: float) -> None:
        """A call came in: a fresh terminal server and framing for it."""
        s = self.settings
        self.calls += 1
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
            return SlipLink(mtu=s.mtu, vj=s.framing == "cslip")
        return PppConnection("isp", rng=self.ppp_rng, mru=s.mtu, accm=s.ppp_accm, auth=s.ppp_auth,
                             authenticator=self.accounts, local_ip=ISP_ADDR,
                             peer_ip_pool=self.peer_address, dns=DNS_SERVERS, vj=s.ppp_vj)

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
            self.link.stamp(now)
            self.host.receive(data, now)

    def send_ip(self, packet: bytes, now: float) -> None:
        if self.link is None:
            self.dropped_packets += 1
            return
        self.link.send_ip(packet, now)

    def output(self, now: float) -> list[bytes]:
        return self.host.output(now) if self.host is not None else []

    def events(self) -> list[Event]:
        return self.host.events() if self.host is not None else []

    def next_deadline(self) -> float | None:
        return self.host.next_deadline() if self.host is not None else None

    def on_timer(self, now: float) -> None:
        if self.host is not None:
            fire_due(self.host, now)


class Isp:
    """The NAS's lines and the mail host behind them.

    ``accounts``: the subscribers (PAP/CHAP, the login chat, POP3);
    ``delivery``: where SMTP's accepted mail goes (and who is local);
    ``store``: carries out the servers' storage effects (``carry_out``).
    """

    def __init__(self, settings: IspSettings, accounts, delivery, store, *, lines: int = 1,
                 tcp_rng: random.Random, ppp_rng: random.Random) -> None:
        self.settings = settings
        self.accounts = accounts
        self.delivery = delivery
        self.store = store
        stack = NetStack(ISP_ADDR, mtu=settings.mtu, rng=tcp_rng, tcp_options=settings.tcp_options)
        self.mail = IpHost(stack)
        self.mail.listen(POP3_PORT, self._pop3_binding)
        self.mail.listen(SMTP_PORT, self._smtp_binding)
        self.ports = [NasPort(i, settings, accounts, ppp_rng) for i in range(lines)]
        self._route = {ip_to_bytes(p.peer_address): p for p in self.ports}
        self.last_logins: dict[str, float] = {}  # RFC 2449 LOGIN-DELAY across sessions
        self.pop3_sessions = 0
        self.smtp_sessions = 0

    def _pop3_binding(self, conn, now: float) -> AppBinding:
        self.pop3_sessions += 1
        s = self.settings
        server = Pop3Server(self.accounts, hostname=f"pop.{s.domain}", now=now,
                            idle_timeout=s.pop3_autologout, login_delay=s.pop3_login_delay,
                            last_logins=self.last_logins)
        return AppBinding(conn, server, carry_out=self.store.carry_out)

    def _smtp_binding(self, conn, now: float) -> AppBinding:
        # Connections arriving on a NAS line come from dial-up subscribers: they
        # may relay to other domains (never an open relay to the Internet).
        self.smtp_sessions += 1
        server = SmtpServer(self.delivery, hostname=f"mail.{self.settings.domain}",
                            local_domains=(self.settings.domain,), subscriber_client=True, now=now)
        return AppBinding(conn, server, carry_out=self.store.carry_out)

    # -- calls
    def free_line(self) -> int | None:
        """The first line without a call (a hunt group), or None: all busy."""
        return next((p.line for p in self.ports if not p.in_call), None)

    def answer(self, line: int, now: float) -> None:
        self.ports[line].answer(now)

    def hung_up(self, line: int, now: float) -> None:
        self.ports[line].hung_up(now)

    # -- the lines' octets
    def receive(self, line: int, data: bytes, now: float) -> None:
        self.ports[line].receive(data, now)

    def output(self, now: float) -> list[tuple[int, bytes]]:
        """Run the lines and the mail host until nothing moves: (line, frame) to write."""
        out: list[tuple[int, bytes]] = []
        mail = self.mail
        for turn in range(10_000):
            moved = self._up(now)
            packets = mail.output(now, again=turn > 0)
            if packets:
                moved = True
                for pkt in packets:
                    self._route_to_line(pkt, now)
            for port in self.ports:
                if port.host is not None:
                    frames = port.host.output(now)
                    if frames:
                        moved = True
                        out += [(port.line, f) for f in frames]
            if self._up(now):
                moved = True
            if not moved:
                break
        return out

    def _up(self, now: float) -> bool:
        moved = False
        for port in self.ports:
            if port.host is not None:
                for ev in port.host.events():
                    moved = True
                    if isinstance(ev, IpPacketReceived):
                        self.mail.receive(ev.packet, now)
        return moved

    def _route_to_line(self, packet: bytes, now: float) -> None:
        port = self._route.get(packet[16:20])
        if port is None:
            self.ports[0].dropped_packets += 1
            return
        port.send_ip(packet, now)

    def next_deadline(self) -> float | None:
        best = self.mail.next_deadline()
        for p in self.ports:
            if p.host is not None:
                d = p.host.next_deadline()
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def on_timer(self, now: float) -> None:
        self.mail.on_timer(now)
        for p in self.ports:
            p.on_timer(now)



def internet_mail(isp: Isp, sender: str, recipients: list[str], data: bytes, now: float) -> bool:
    """Mail from a host on the Internet side reaches the ISP's mail exchanger: one
    SMTP transaction in memory, taking no simulated time (that side is fast next to
    a modem) -- real SMTP through the same server code the subscribers use, and
    the same store.  True when the server answered 250 to the message."""
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
