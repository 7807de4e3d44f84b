"""``dialsim shell``: any program, dialed up -- the kernel's own TCP over the simulated modem.

The program runs in a private network namespace whose only interface is a TUN
device (:mod:`dialsim.drivers.netns`).  Its kernel's datagrams are the
subscriber's IP layer (:class:`~dialsim.hosts.kernel.KernelHost`) above
dialsim's own PPP or SLIP (the subscriber's
:class:`~dialsim.hosts.subscriber.Computer`), so every packet crosses the
real-time link model as real frames, both ways: rate, latency, V.42bis, errors
and carrier loss apply.  The call is dialed as a simulated one is (dial and
training time, login chat, PPP negotiation); IPCP's address configures the
device.  A carrier loss takes the interface down, as a real modem hang-up
did, and the scenario's redial policy brings it back.

At the far end: the scenario's ISP (its POP3 and SMTP at the mail host's
address, named ``pop.DOMAIN``/``mail.DOMAIN`` inside the namespace) and, like
slirp, the host's own loopback as 10.0.2.2 plus whatever ``--allow HOST:PORT``
opens (:class:`~dialsim.hosts.nat.NatHost`); nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass

from dialsim.drivers.dte import FdStream
from dialsim.drivers.netns import NetNamespace
from dialsim.drivers.wallclock import WallClock
from dialsim.experiment.live import LiveWorld
from dialsim.experiment.online import OnlineLine, OnLog
from dialsim.experiment.world import pyrandom, seed_streams
from dialsim.hosts.endpoint import FrameLog
from dialsim.hosts.kernel import KernelHost
from dialsim.hosts.nat import HOST_ALIAS, Flow, NatHost
from dialsim.hosts.network import ISP_ADDR
from dialsim.hosts.subscriber import Computer
from dialsim.results.recorder import Recorder

__all__ = ["ShellLine", "namespace_hosts"]


def namespace_hosts(domain: str) -> dict[str, list[str]]:
    """Names the program can use inside the namespace."""
    return {ISP_ADDR: [f"pop.{domain}", f"mail.{domain}", f"smtp.{domain}", domain],
            HOST_ALIAS: ["host.dialsim"]}


@dataclass
class _Outside:
    flow: Flow
    sock: socket.socket
    stream: FdStream | None = None


class ShellLine(OnlineLine):
    """The subscriber's line with a kernel above it (see the module docstring)."""

    def __init__(self, sc, clock: WallClock, live: LiveWorld, ns: NetNamespace, *,
                 allow: set[tuple[str, int]], capture: bool = False,
                 log: OnLog | None = None) -> None:
        self.ns = ns
        self.kernel = KernelHost()
        self.capture = FrameLog(packets_only=sc.framing != "ppp") if capture else None
        streams = seed_streams(sc.seed, 0)
        self.nat = NatHost(rng=pyrandom(streams["isp_tcp"]), allow=allow)
        live.world.isp.internet = self.nat
        self.rec = Recorder(0, measured=True)
        self.first_online = asyncio.Event()
        self._outside: list[_Outside] = []
        self._row: dict = {}
        super().__init__(sc, clock, live, log=self._log(log))
        self.nas = live.world.nas
        self.nas.after_pump = self._isp_pumped
        clock.loop.add_reader(ns.fd, self._from_kernel)

    def _log(self, log: OnLog | None) -> OnLog:
        def both(t: float, event: str, detail: str) -> None:
            if event in ("dial", "busy", "no_answer", "no_carrier", "connect", "carrier_lost",
                         "hangup"):
                self.rec.link_event(t_s=t, event=event, detail=detail)
            self._session_progress(t, event)
            if log is not None:
                log(t, event, detail)
        return both

    # -- the sessions table: one row per dial, as a measured dial writes it
    def _session_progress(self, t: float, event: str) -> None:
        if event == "dial":
            self._row = {"session": len(self.rec.sessions) + 1, "attempt": 1,
                         "profile": self.sc.link.profile, "framing": self.sc.framing,
                         "t_dial_s": t}
        elif event == "connect":
            self._row["t_connect_s"] = t
        elif event in ("busy", "no_answer", "no_carrier"):
            self.rec.session(**self._row, t_end_s=t, end_reason=event)

    def computer(self) -> Computer:
        self._row["connect_rate_bps"] = self.call.connect_rate_down_bps
        self._row["connect_rate_up_bps"] = self.call.connect_rate_up_bps
        return Computer(self.settings, rng=self.rngs[0], ppp_rng=self.rngs[1], now=self.env.now,
                        capture=self.capture, ip=self.kernel)

    def link_came_up(self) -> None:
        st = self.pc.status
        self._row["t_link_up_s"] = self.env.now
        self.ns.link_up(st.local_ip or self.settings.address, st.peer_ip or ISP_ADDR,
                        self.pc.framing.mtu)
        self.first_online.set()

    def link_went_down(self, reason: str) -> None:
        self.ns.link_down()
        c = self.call.subscriber.counters
        ep = self.pc.endpoint
        self.rec.session(**self._row, t_end_s=self.env.now,
                         end_reason="quit" if reason == "hangup" else reason,
                         line_bytes_down=int(c["octets_in"]), line_bytes_up=int(c["octets_out"]),
                         **ep.received.as_dict("down"), **ep.sent.as_dict("up"))
        for outside in list(self._outside):
            self._close_outside(outside)
        self.nat.hung_up(self.env.now)

    # -- the kernel's datagrams
    def _from_kernel(self) -> None:
        for _ in range(64):
            try:
                packet = os.read(self.ns.fd, 65535)
            except (BlockingIOError, OSError):
                break
            if self.online:
                self.clock.inject(self.kernel.from_kernel, packet, self.env.now)
        self.clock.inject(self.pump)

    def after_pump(self) -> None:
        for packet in self.kernel.for_kernel():
            with contextlib.suppress(OSError):  # the interface went down meanwhile
                os.write(self.ns.fd, packet)

    def _isp_pumped(self) -> None:
        """The ISP's host worked: open sockets for new NAT flows, relay their octets."""
        for flow in self.nat.new_flows():
            self._open_outside(flow)
        for outside in list(self._outside):
            relay = outside.flow.relay
            data = relay.for_program()
            if data and outside.stream is not None:
                outside.stream.write(data)
            if relay.line_closed and (outside.stream is None or not outside.stream.backlog):
                self._close_outside(outside)

    # -- the NAT's real sockets
    def _open_outside(self, flow: Flow) -> None:
        host, port = flow.target
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        outside = _Outside(flow, sock)
        self._outside.append(outside)

        async def connect() -> None:
            try:
                await asyncio.wait_for(self.clock.loop.sock_connect(sock, (host, port)), 10)
            except (OSError, TimeoutError):
                self.clock.inject(self._refused, outside)
                return
            self.clock.inject(self._connected, outside)

        self.clock.loop.create_task(connect())

    def _connected(self, outside: _Outside) -> None:
        relay = outside.flow.relay

        def from_world(data: bytes) -> None:
            relay.from_program(data)
            self.nas.poke()

        def world_ended() -> None:
            relay.program_ended(self.env.now)
            self.nas.poke()

        outside.stream = FdStream(self.clock, outside.sock.fileno(), from_world, world_ended)
        self.nas.poke()

    def _refused(self, outside: _Outside) -> None:
        outside.flow.binding.conn.abort()  # the subscriber sees a reset
        self._close_outside(outside)
        self.nas.poke()

    def _close_outside(self, outside: _Outside) -> None:
        if outside.stream is not None:
            outside.stream.close()
        outside.sock.close()
        if outside in self._outside:
            self._outside.remove(outside)

    def close(self) -> None:
        self.clock.loop.remove_reader(self.ns.fd)
        self.hang_up()
        for outside in list(self._outside):
            self._close_outside(outside)

