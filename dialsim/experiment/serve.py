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

from dialsim.drivers.dte import FdStream
from dialsim.drivers.wallclock import WallClock
from dialsim.experiment.live import LiveWorld
from dialsim.experiment.online import OnlineLine
from dialsim.hosts.endpoint import AppBinding
from dialsim.hosts.relay import StreamRelay

__all__ = ["LineService"]

OnLog = Callable[[float, str, str], None]


@dataclass
class _Client:
    sock: socket.socket
    stream: FdStream
    relay: StreamRelay
    binding: AppBinding


class LineService(OnlineLine):
    """The subscriber's line and the local ports in front of it (see the module docstring).

    ``ports``: service name ("pop3", "smtp") -> (host, port) to listen on.
    """

    def __init__(self, sc, clock: WallClock, live: LiveWorld, ports: dict[str, tuple[str, int]],
                 *, log: OnLog | None = None) -> None:
        self.ports = ports
        self.connections = 0
        self._listeners: dict[str, socket.socket] = {}
        self._clients: list[_Client] = []
        super().__init__(sc, clock, live, log=log)

    def after_pump(self) -> None:
        for client in list(self._clients):
            data = client.relay.for_program()
            if data:
                client.stream.write(data)
            if client.relay.line_closed and not client.stream.backlog:
                self._drop(client, reset=False)

    # -- the local ports
    def link_came_up(self) -> None:
        for name, addr in self.ports.items():
            sock = socket.create_server(addr, reuse_port=False)
            sock.setblocking(False)
            self._listeners[name] = sock
            self.clock.loop.add_reader(sock.fileno(), self._accept, name, sock)

    def link_went_down(self, reason: str) -> None:
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
        if self.pc is None:
            sock.close()
            return
        self.connections += 1
        relay = StreamRelay()
        port = {"pop3": self.settings.pop3_port, "smtp": self.settings.smtp_port}[name]
        binding = self.pc.connect(self.settings.isp_address, port, self.env.now,
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
        self.link_went_down("stopped")
        self.hang_up()
