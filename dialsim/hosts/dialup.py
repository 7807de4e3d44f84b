"""The subscriber's side of a dial-up line: framing + IPv4/TCP stack, ready to drive.

Scope: builds the line host a 1990s subscriber's computer was once its modem
said CONNECT: SLIP (RFC 1055), CSLIP (RFC 1055 + RFC 1144 VJ header
compression) or PPP (RFC 1661 LCP, RFC 1332 IPCP with RFC 1144 VJ, RFC 1662
async HDLC framing), under a :class:`dialsim.proto.netstack.NetStack`, in an
:class:`dialsim.hosts.endpoint.IpEndpoint`.  Still sans-IO: the caller drives
the endpoint (``receive_line``, ``line_output``, timers) in simpy time or on
the wall clock (:class:`dialsim.drivers.realtime.FdLineDriver`).

What the caller needs besides the endpoint is when the link is up and which
address it got; :class:`LinkStatus` tracks that from the framing's link
events.  SLIP has no negotiation: the link is up at once with the address the
caller configured (as a SLIP user typed it into their dialer).  PPP is up when
IPCP reaches Opened; the address IPCP assigned becomes the stack's address.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dialsim.hosts.endpoint import FrameLog, IpEndpoint
from dialsim.proto.netstack import NetStack
from dialsim.proto.ppp import IpcpDown, IpcpUp, LcpDown, LinkTerminated, PppConnection
from dialsim.proto.slip import SLIP_DEFAULT_MTU, SlipLink

FRAMINGS = ("slip", "cslip", "ppp")

__all__ = ["FRAMINGS", "LinkStatus", "link_status", "subscriber_stack"]


@dataclass
class LinkStatus:
    """Whether the subscriber's IP link is up, and what it negotiated.

    Installed as the endpoint's ``link_event_handler``; every link event
    (PPP: LcpUp, IpcpUp, LinkTerminated, ...) is kept in ``events`` as
    ``(now, event)`` and passed on to ``on_event`` when given.
    ``up`` turns true on IpcpUp (PPP) or at once (SLIP/CSLIP) and false again
    on IpcpDown/LcpDown/LinkTerminated (``down_reason`` says why).
    """

    framing: str
    endpoint: IpEndpoint | None = None
    up: bool = False
    local_ip: str | None = None
    peer_ip: str | None = None
    dns: tuple[str, ...] = ()
    vj: bool = False  # we send VJ-compressed TCP (CSLIP always; PPP if the peer acked it)
    t_up: float | None = None
    down_reason: str | None = None
    events: list[tuple[float, object]] = field(default_factory=list)
    on_event: Callable[[object, float], None] | None = None

    def __call__(self, ev: object, now: float) -> None:
        self.events.append((now, ev))
        if isinstance(ev, IpcpUp):
            if ev.local_ip:
                self.local_ip = ev.local_ip
                if self.endpoint is not None:
                    self.endpoint.stack.address = ev.local_ip
            if self.endpoint is not None:
                # MSS of new connections: the peer's MRU bounds what we may send.
                ep = self.endpoint
                ep.stack.mtu = min(ep.stack.mtu, ep.framing.mtu)
            self.peer_ip = ev.peer_ip
            self.dns = tuple(ev.dns)
            self.vj = bool(ev.vj)
            self._set_up(now)
        elif isinstance(ev, IpcpDown | LcpDown | LinkTerminated):
            if self.up or isinstance(ev, LinkTerminated):
                if isinstance(ev, LinkTerminated):
                    self.down_reason = ev.reason
                else:
                    self.down_reason = "IPCP down" if isinstance(ev, IpcpDown) else "LCP down"
            self.up = False
            if self.endpoint is not None:
                self.endpoint.link_up = False
        if self.on_event is not None:
            self.on_event(ev, now)

    def _set_up(self, now: float) -> None:
        self.up = True
        self.down_reason = None
        if self.t_up is None:
            self.t_up = now
        if self.endpoint is not None:
            self.endpoint.link_up = True


def subscriber_stack(
    framing: str,
    *,
    rng: random.Random,
    mtu: int | None = None,
    local_ip: str | None = None,
    peer_ip: str | None = None,
    now: float = 0.0,
    capture: FrameLog | None = None,
    on_link_event: Callable[[object, float], None] | None = None,
    tcp_options: dict | None = None,
    **ppp_options,
) -> IpEndpoint:
    """A subscriber-side :class:`IpEndpoint` for ``framing`` ("slip", "cslip", "ppp").

    ``rng`` seeds TCP (ISS, ports) and PPP (magic numbers).  ``mtu``: SLIP's
    frame limit (default 1006, RFC 1055) or PPP's MRU (default 1500).
    ``local_ip``: SLIP: our (static) address, required; PPP: the address to
    ask IPCP for (None: let the peer assign one).  ``peer_ip``: SLIP: recorded
    as the far end; PPP: the ISP's address, given to it when its IPCP asks for
    0.0.0.0 (slirp does; pppd's "local:remote").  ``ppp_options`` go to
    :class:`dialsim.proto.ppp.PppConnection` (auth, username, password, vj,
    accm, pfc, acfc, restart_timer, echo_interval, ...; ``dns`` defaults to
    asking for none).  PPP is opened at ``now`` with the carrier up, so its
    first Configure-Request is in the endpoint's next ``line_output``.

    The :class:`LinkStatus` is the endpoint's ``link_event_handler``
    (see :func:`link_status`); ``endpoint.link_up`` follows it.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, not {framing!r}")
    status = LinkStatus(framing, on_event=on_link_event)
    if framing in ("slip", "cslip"):
        if ppp_options:
            raise TypeError(f"PPP options given for {framing}: {sorted(ppp_options)}")
        if local_ip is None:
            raise ValueError("SLIP has no address negotiation: local_ip is required")
        mtu = SLIP_DEFAULT_MTU if mtu is None else mtu
        link = SlipLink(mtu=mtu, vj=framing == "cslip")
        stack = NetStack(local_ip, mtu=mtu, rng=rng, tcp_options=tcp_options)
    else:
        mtu = 1500 if mtu is None else mtu
        ppp_options.setdefault("dns", None)
        if peer_ip is not None:
            ppp_options.setdefault("peer_ip_pool", peer_ip)
        link = PppConnection("subscriber", rng=rng, mru=mtu, local_ip=local_ip, **ppp_options)
        # "0.0.0.0" until IPCP assigns one (the stack then accepts any dst).
        stack = NetStack(local_ip or "0.0.0.0", mtu=mtu, rng=rng, tcp_options=tcp_options)
    ep = IpEndpoint(link, stack, capture=capture)
    status.endpoint = ep
    ep.link_event_handler = status
    if framing == "ppp":
        link.lower_up(now)
        link.open(now)
    else:
        status.local_ip = local_ip
        status.peer_ip = peer_ip
        status.vj = framing == "cslip"
        status._set_up(now)
    return ep


def link_status(endpoint: IpEndpoint) -> LinkStatus:
    """The :class:`LinkStatus` of an endpoint built by :func:`subscriber_stack`."""
    status = endpoint.link_event_handler
    if not isinstance(status, LinkStatus):
        raise TypeError("endpoint was not built by subscriber_stack")
    return status
