"""``dialsim serve``: the ISP's POP3 and SMTP on localhost ports, behind the modem line.

An unmodified desktop mail client connects to ``127.0.0.1:1110`` (POP3) or
``:2525`` (SMTP).  Behind those ports sits the subscriber's dial-up computer
(:class:`~dialsim.hosts.subscriber.Computer`): it dials the scenario's ISP on
the link model, in real time (a :class:`~dialsim.drivers.wallclock.WallClock`
drives the simulation's own world), brings up PPP or SLIP, and carries each
client connection as a TCP connection of its own dial-up stack to the ISP's
mail host (:class:`~dialsim.hosts.relay.StreamRelay`).  So every connection
gets the modem's rate, latency, compression, errors and drops, and -- as on a
real modem -- all of them share the one line.

The ports listen only while the link is up: a connection attempt while the
line is down or redialing is refused, and a carrier loss cuts every open
connection (the scenario's redial policy brings the line back).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dialsim.drivers.dte import FdStream
from dialsim.drivers.wallclock import WallClock
from dialsim.experiment import settings
from dialsim.experiment.live import LiveWorld
from dialsim.experiment.world import pyrandom, seed_streams
from dialsim.hosts.endpoint import AppBinding
from dialsim.hosts.network import POP3_PORT, SMTP_PORT
from dialsim.hosts.relay import StreamRelay
from dialsim.hosts.subscriber import Computer
from dialsim.proto.machine import fire_due

__all__ = ["LineService"]

OnLog = Callable[[float, str, str], None]


@dataclass
class _Client:
    sock: socket.socket
    stream: FdStream
    relay: StreamRelay
    binding: AppBinding


class LineService:
    """The subscriber's line and the local ports in front of it (see the module docstring).

    ``ports``: service name ("pop3", "smtp") -> (host, port) to listen on.
    """

    def __init__(self, sc, clock: WallClock, live: LiveWorld, ports: dict[str, tuple[str, int]],
                 *, log: OnLog | None = None) -> None:
        self.sc = sc
        self.clock = clock
        self.env = clock.env
        self.live = live
        self.ports = ports
        self.log = log or (lambda _t, _w, _d: None)
        self.settings = settings.subscriber_settings(sc)
        streams = seed_streams(sc.seed, 0)
        self.rngs = (pyrandom(streams["subscriber_tcp"]), pyrandom(streams["subscriber_ppp"]))
        self.link_rng = np.random.default_rng(streams["link"])
        self.computer: Computer | None = None
        self.call = None
        self.online = False
        self.calls = 0
        self.connections = 0
        self._listeners: dict[str, socket.socket] = {}
        self._clients: list[_Client] = []
        self._wake = self.env.event()
        self.process = self.env.process(self._story())

    # -- the line's story: dial, stay online, redial after a drop
    def _story(self):
        env, plan = self.env, settings.call_plan(self.sc)
        while True:
            for _attempt in range(plan.attempts):
                result = yield env.process(
                    self.live.world.nas.dial(self.live.link, self.link_rng, self.log))
                if result.outcome == "connect":
                    self.calls += 1
                    yield from self._online(result)
                yield env.timeout(plan.delay)

    def _online(self, result):
        env = self.env
        self.call = call = result.call
        self.computer = Computer(self.settings, rng=self.rngs[0], ppp_rng=self.rngs[1], now=env.now)
        env.process(self._from_line(call))
        env.process(self._timers(call))
        self.pump()
        reason = yield call.carrier_lost
        self.log(env.now, "line down", str(reason))
        self._go_offline()
        self.computer = self.call = None

    def _from_line(self, call):
        ended = call.carrier_lost
        while True:
            get = call.subscriber.read()
            yield get | ended
            if not get.triggered:
                get.cancel()
                return
            self.computer.receive(get.value, self.env.now)
            self.pump()

    def _timers(self, call):
        env = self.env
        while call.up:
            deadline = self.computer.next_deadline()
            waits = [self._wake, call.carrier_lost]
            if deadline is not None:
                waits.append(env.timeout(max(0.0, deadline - env.now)))
            yield env.any_of(waits)
            if self._wake.triggered:
                self._wake = env.event()
            if call.up and fire_due(self.computer, env.now):
                self.pump(from_timer=True)

    def pump(self, *, from_timer: bool = False) -> None:
        """Let the computer work; its frames to the modem, relayed octets to the programs."""
        if self.computer is None or self.call is None or not self.call.up:
            return
        for chunk in self.computer.output(self.env.now):
            self.call.subscriber.write(chunk)
        if self.computer.status.up and not self.online:
            self._go_online()
        for client in list(self._clients):
            data = client.relay.for_program()
            if data:
                client.stream.write(data)
            if client.relay.line_closed and not client.stream.backlog:
                self._drop(client, reset=False)
        if not from_timer and not self._wake.triggered:
            self._wake.succeed()

    # -- the local ports
    def _go_online(self) -> None:
        self.online = True
        self.log(self.env.now, "online", f"{self.computer.status.local_ip}")
        for name, addr in self.ports.items():
            sock = socket.create_server(addr, reuse_port=False)
            sock.setblocking(False)
            self._listeners[name] = sock
            self.clock.loop.add_reader(sock.fileno(), self._accept, name, sock)

    def _go_offline(self) -> None:
        self.online = False
        for sock in self._listeners.values():
            self.clock.loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()
        for client in list(self._clients):
            self._drop(client, reset=True)

    def _accept(self, name: str, listener: socket.socket) -> None:
        try:
            sock, _peer = listener.accept()
        except BlockingIOError:
            return
        self.clock.inject(self._connect, name, sock)

    def _connect(self, name: str, sock: socket.socket) -> None:
        if self.computer is None:
            sock.close()
            return
        self.connections += 1
        relay = StreamRelay()
        port = {"pop3": self.settings.pop3_port, "smtp": self.settings.smtp_port}.get(
            name, POP3_PORT if name == "pop3" else SMTP_PORT)
        binding = self.computer.connect(self.settings.isp_address, port, self.env.now,
                                        lambda conn, now: AppBinding(conn, relay))
        client = _Client(sock, None, relay, binding)  # type: ignore[arg-type]

        def from_program(data: bytes) -> None:
            relay.from_program(data)
            self.pump()

        def ended() -> None:
            relay.program_ended(self.env.now)
            self.pump()

        client.stream = FdStream(self.clock, sock.fileno(), from_program, ended)
        self._clients.append(client)
        self.pump()

    def _drop(self, client: _Client, *, reset: bool) -> None:
        client.stream.close()
        if reset:  # the line is gone: the client sees a reset, not a clean close
            with contextlib.suppress(OSError):
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        client.sock.close()
        self._clients.remove(client)

    def close(self) -> None:
        self._go_offline()
        if self.call is not None and self.call.up:
            self.call.hangup("subscriber")
