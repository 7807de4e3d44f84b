"""Run sans-IO protocol machines over real TCP sockets with asyncio.

Scope: the glue between dialsim's sans-IO machines (RFC 1939 POP3, RFC 5321
SMTP, both sides) and the host's own TCP/IP, so real mail software can talk to
dialsim's servers and dialsim's clients can talk to real servers.  A machine
offers ``receive(data, now)``, ``data_to_send()``, ``events()``,
``next_deadline()``, ``on_timer(now)`` and ``connection_lost(now)``.

- :func:`serve` listens and runs one machine per accepted connection
  (``factory(now)``, or ``factory(now, peer)`` with ``pass_peer=True``).
- :func:`run_client` connects out and runs one client machine until the
  connection ends; events go to a callback (e.g. a
  :class:`dialsim.hosts.retrieval.RetrievalSession`) that may queue more commands.

The driver reads received bytes into ``receive``, writes ``data_to_send()``,
flushes and closes on a ``CloseRequested`` event, reports EOF or a reset as
``connection_lost(now)`` and arms the machine's next deadline with
``loop.call_at`` (the aioquic pattern; ``on_timer`` gets ``max(deadline,
loop.time())`` so a timer that fires a hair early still counts as due).  A POP3
server's held reply to a failed login is such a deadline.  ``now`` is always
``loop.time()``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any

__all__ = ["Connection", "serve", "run_client", "is_loopback", "abort_all"]

READ_SIZE = 65536

EventCallback = Callable[[Any, object, float], None]  # (machine, event, now)


def peer_address(peer: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address of ``peer`` (a peername tuple or a host string), an
    IPv4-mapped IPv6 address as its IPv4 address; None if it is not one."""
    host = peer[0] if isinstance(peer, tuple) else peer
    try:
        addr = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped if mapped is not None else addr


def is_loopback(peer: Any) -> bool:
    """True when ``peer`` is a loopback address (127.0.0.0/8, ::1, or 127.x mapped into IPv6)."""
    addr = peer_address(peer)
    return addr is not None and addr.is_loopback


def _is_close(event: object) -> bool:
    # Each protocol module has its own CloseRequested class: match on the name.
    return type(event).__name__ == "CloseRequested"


class Connection:
    """One machine on one asyncio stream pair.

    ``closing`` becomes True once the machine asked for the close (the writer is
    then closed after its buffer is flushed); ``lost`` once the peer went away.
    """

    def __init__(
        self,
        machine: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_event: EventCallback | None = None,
    ) -> None:
        self.machine = machine
        self.reader = reader
        self.writer = writer
        self.on_event = on_event
        self.peer = writer.get_extra_info("peername")
        self.closing = False
        self.lost = False
        self.octets_in = 0
        self.octets_out = 0
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.task: asyncio.Task | None = asyncio.current_task()

    def __repr__(self) -> str:
        return f"<Connection peer={self.peer} closing={self.closing} lost={self.lost}>"

    # -- driving -------------------------------------------------------------

    def pump(self) -> None:
        """Move the machine's output to the socket, hand out events, re-arm the timer.

        Event callbacks may queue more output (a client reacting to a reply), so
        this repeats until the machine has nothing more to say.
        """
        m = self.machine
        for _ in range(1000):  # bounded: a callback cannot spin us forever
            out = m.data_to_send()
            if out and not self.writer.is_closing():
                self.writer.write(out)
                self.octets_out += len(out)
            events = m.events()
            if not events and not out:
                break
            now = self._loop.time()
            for ev in events:
                if self.on_event is not None:
                    self.on_event(m, ev, now)
                if _is_close(ev):
                    self.closing = True
        if self.closing:
            self._cancel_timer()
            if not self.writer.is_closing():
                self.writer.close()  # buffered data is flushed before the close
            return
        self._arm_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _arm_timer(self) -> None:
        deadline = self.machine.next_deadline()
        if deadline == self._timer_at and (deadline is None or self._timer is not None):
            return
        self._cancel_timer()
        if deadline is not None:
            self._timer_at = deadline
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at
        self._timer = None
        self._timer_at = None
        if self.closing or self.lost:
            return
        now = max(at if at is not None else 0.0, self._loop.time())
        self.machine.on_timer(now)
        self.pump()

    def abort(self) -> None:
        """Drop the connection now (shutdown): the machine sees ``connection_lost``."""
        if not self.lost and not self.closing:
            self.lost = True
            self.machine.connection_lost(self._loop.time())
            self.pump()
        self._cancel_timer()
        self.writer.transport.abort()

    async def run(self) -> None:
        """Feed the machine until EOF, a reset, or its own close request."""
        self.pump()
        try:
            while not self.closing and not self.lost:
                try:
                    data = await self.reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if self.closing or self.lost:
                    break
                now = self._loop.time()
                if not data:
                    self.lost = True
                    self.machine.connection_lost(now)
                    self.pump()
                    break
                self.octets_in += len(data)
                self.machine.receive(data, now)
                self.pump()
                try:
                    await self.writer.drain()
                except (ConnectionError, OSError):
                    pass  # the next read reports the loss
            if self.closing:
                try:
                    await self.writer.wait_closed()
                except (ConnectionError, OSError):
                    pass
        finally:
            self._cancel_timer()
            if not self.writer.is_closing():
                self.writer.close()


async def serve(
    factory: Callable[..., Any],
    host: str,
    port: int,
    *,
    on_event: EventCallback | None = None,
    pass_peer: bool = False,
    connections: set[Connection] | None = None,
) -> asyncio.Server:
    """Listen on ``host:port``; each connection runs ``factory(now)`` (or
    ``factory(now, peer)`` when ``pass_peer``).  Live connections are kept in
    ``connections`` when given (see :func:`abort_all`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        now = asyncio.get_running_loop().time()
        peer = writer.get_extra_info("peername")
        try:
            machine = factory(now, peer) if pass_peer else factory(now)
        except Exception:
            writer.transport.abort()
            raise
        conn = Connection(machine, reader, writer, on_event=on_event)
        if connections is not None:
            connections.add(conn)
        try:
            await conn.run()
        finally:
            if connections is not None:
                connections.discard(conn)

    return await asyncio.start_server(handle, host, port)


async def abort_all(connections: set[Connection], timeout: float = 5.0) -> None:
    """Abort every live connection (each machine gets ``connection_lost``) and
    wait for their tasks to end."""
    conns = list(connections)
    for conn in conns:
        conn.abort()
    tasks = [c.task for c in conns if c.task is not None and c.task is not asyncio.current_task()]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


async def run_client(
    machine: Any,
    host: str,
    port: int,
    *,
    on_event: EventCallback | None = None,
    until: Callable[[], bool] | None = None,
    timeout: float | None = 60.0,
) -> Connection:
    """Connect to ``host:port`` and run ``machine`` until the connection ends
    (the server closes, the machine asks to close, or ``until()`` holds after an
    event).  Raises ``TimeoutError`` after ``timeout`` seconds in all."""

    async def body() -> Connection:
        reader, writer = await asyncio.open_connection(host, port)

        def events(m: Any, ev: object, now: float) -> None:
            if on_event is not None:
                on_event(m, ev, now)

        conn = Connection(machine, reader, writer, on_event=events)
        if until is None:
            await conn.run()
            return conn

        def watch(m: Any, ev: object, now: float) -> None:
            events(m, ev, now)
            if until() and not conn.closing:
                conn.closing = True

        conn.on_event = watch
        await conn.run()
        return conn

    if timeout is None:
        return await body()
    return await asyncio.wait_for(body(), timeout)
