"""Run sans-IO protocol machines over real TCP sockets with asyncio.

Scope: the glue between dialsim's sans-IO machines (RFC 1939 POP3, RFC 5321
SMTP, both sides) and the host's own TCP/IP, so real mail software can talk to
dialsim's servers and dialsim's clients can talk to real servers.  A machine
offers the five methods of :class:`dialsim.proto.machine.Machine` plus
``connection_lost(now)``; a server that asks for storage (an
:class:`~dialsim.proto.events.Effect` among its events) also offers
``complete(effect, result, now)``.

- :func:`serve` listens and runs one machine per accepted connection
  (``factory(now)``, or ``factory(now, peer)`` with ``pass_peer=True``);
  :class:`Service` runs several such listeners with one thread pool and stops
  them together; :class:`ServiceThread` runs a service on its own event loop
  in a background thread (tests, embedding).
- :func:`run_client` connects out and runs one client machine until the
  connection ends; events go to a callback (e.g. a
  :class:`dialsim.hosts.retrieval.RetrievalSession`) that may queue more commands.

Each connection is an :class:`asyncio.Protocol`: received bytes go to
``receive``; ``output()`` goes to the transport only while the transport
takes it (asyncio's write-buffer backpressure: between ``pause_writing`` and
``resume_writing`` the machine is not asked, and reading pauses too), so a
client that reads nothing makes the server produce nothing more; a
:class:`~dialsim.proto.events.CloseRequested` closes it once the buffer is
flushed (aborted if that takes longer than :data:`CLOSE_GRACE`), EOF or a
reset becomes ``connection_lost(now)``, and the machine's next deadline is
armed with ``loop.call_at`` (the aioquic pattern; ``on_timer`` gets
``max(deadline, loop.time())`` so a timer that fires a hair early still
counts as due).  Storage effects are carried out off the event loop, in the
thread pool, by the ``carry_out`` callable (it returns the answer or raises);
the answer goes back through ``complete`` on the loop, so a slow disk stalls
no other session.  ``now`` is always ``loop.time()``.

A :class:`Service` stops gracefully: it stops listening, asks every session's
machine to ``shutdown(now)`` (a server answers 421 / ``-ERR [SYS/TEMP]`` and
commits nothing half-done), waits for them to close, aborts what is left after
the grace time, and waits for the store work in flight.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from dialsim.proto.events import CloseRequested, Effect, Event

__all__ = [
    "Connection",
    "Service",
    "ServiceThread",
    "abort_all",
    "run_client",
    "serve",
]

EventCallback = Callable[[Any, Event, float], None]  # (machine, event, now)
CarryOut = Callable[[Effect], object]
CLOSE_GRACE = 30.0  # seconds a closing connection may take to flush before it is aborted


class Connection(asyncio.Protocol):
    """One machine on one TCP connection.

    ``closing`` becomes True once the machine asked for the close (the
    transport is then closed after its buffer is flushed); ``lost`` once the
    connection is gone; ``done`` is a future set then.
    """

    def __init__(
        self,
        machine: Any = None,
        *,
        factory: Callable[[Connection, float], Any] | None = None,
        on_event: EventCallback | None = None,
        carry_out: CarryOut | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.machine = machine
        self._factory = factory
        self.on_event = on_event
        self.carry_out = carry_out
        self.executor = executor
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.local: Any = None
        self.writing_paused = False
        self.closing = False
        self.lost = False
        self.octets_in = 0
        self.octets_out = 0
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._effects: set[asyncio.Future] = set()
        self._grace: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<Connection peer={self.peer} closing={self.closing} lost={self.lost}>"

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self.local = transport.get_extra_info("sockname")
        if self.machine is None:
            assert self._factory is not None
            try:
                self.machine = self._factory(self, self._loop.time())
            except Exception:
                transport.abort()
                raise
        self.pump()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.lost:
            return
        self.octets_in += len(data)
        self.machine.receive(data, self._loop.time())
        self.pump()

    def eof_received(self) -> bool:
        self._lose()
        return False  # close the transport (after flushing what is buffered)

    def pause_writing(self) -> None:
        """The transport's buffer is full: take no more output, read no more input."""
        self.writing_paused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose()
        self._cancel_timer()
        if self._grace is not None:
            self._grace.cancel()
        if not self.done.done():
            self.done.set_result(None)

    # -- driving -------------------------------------------------------------

    def _lose(self) -> None:
        if self.lost:
            return
        self.lost = True
        if self.machine is not None and not self.closing:
            self.machine.connection_lost(self._loop.time())
        self.pump()

    def _write(self, now: float) -> bool:
        """Hand the machine's output to the transport while it takes it (all
        of it once the machine asked to close: its last words)."""
        wrote = False
        while not self.writing_paused or self.closing:
            out = self.machine.output(now)
            if not out:
                break
            wrote = True
            if self.transport is not None and not self.transport.is_closing() and not self.lost:
                data = b"".join(out)
                self.transport.write(data)  # may call pause_writing
                self.octets_out += len(data)
        return wrote

    def pump(self) -> None:
        """Move the machine's output to the socket, hand out events and
        effects, re-arm the timer.

        Event callbacks may queue more output (a client reacting to a reply), so
        this repeats until the machine has nothing more to say.
        """
        m = self.machine
        if m is None:
            return
        for _ in range(1000):  # bounded: a callback cannot spin us forever
            now = self._loop.time()
            wrote = self._write(now)
            events = m.events()
            if not events and not wrote:
                break
            for ev in events:
                if isinstance(ev, Effect):
                    self._carry(ev)
                    continue
                if isinstance(ev, CloseRequested):
                    self.closing = True
                if self.on_event is not None:
                    self.on_event(m, ev, now)
        if self.closing or self.lost:
            self._cancel_timer()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()  # buffered data is flushed before the close
                self._grace = self._loop.call_later(CLOSE_GRACE, self.transport.abort)
            return
        self._arm_timer()

    def _carry(self, effect: Effect) -> None:
        if self.carry_out is None:
            raise RuntimeError(f"{self.machine!r} asked for {effect!r} but nothing carries it out")
        fut = self._loop.run_in_executor(self.executor, self.carry_out, effect)
        self._effects.add(fut)
        fut.add_done_callback(lambda f: self._answered(effect, f))

    def _answered(self, effect: Effect, fut: asyncio.Future) -> None:
        self._effects.discard(fut)
        if fut.cancelled():
            result: object = asyncio.CancelledError()
        else:
            exc = fut.exception()
            result = exc if exc is not None else fut.result()
        self.machine.complete(effect, result, self._loop.time())
        self.pump()

    async def settled(self) -> None:
        """Wait until no storage effect of this connection is in flight."""
        while self._effects:
            await asyncio.wait(list(self._effects))

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

    def close(self) -> None:
        """Close from our side after flushing (a client that has what it wanted)."""
        self.closing = True
        self.pump()

    def shutdown(self) -> None:
        """The service is stopping: the machine says goodbye its protocol's way."""
        if self.machine is not None and not self.closing and not self.lost:
            self.machine.shutdown(self._loop.time())
            self.pump()

    def abort(self) -> None:
        """Drop the connection now: the machine sees ``connection_lost``."""
        self._lose()
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()


async def serve(
    factory: Callable[..., Any],
    host: str,
    port: int,
    *,
    on_event: EventCallback | None = None,
    pass_peer: bool = False,
    connections: set[Connection] | None = None,
    carry_out: CarryOut | None = None,
    executor: Executor | None = None,
) -> asyncio.Server:
    """Listen on ``host:port``; each connection runs ``factory(now)`` (or
    ``factory(now, peer)`` when ``pass_peer``), its effects carried out by
    ``carry_out`` in ``executor`` (the loop's default pool when None).  Live
    connections are kept in ``connections`` when given (see :func:`abort_all`)."""

    def make(conn: Connection, now: float) -> Any:
        return factory(now, conn.peer) if pass_peer else factory(now)

    def protocol() -> Connection:
        conn = Connection(
            factory=make, on_event=on_event, carry_out=carry_out, executor=executor
        )
        if connections is not None:
            connections.add(conn)
            conn.done.add_done_callback(lambda _f: connections.discard(conn))
        return conn

    loop = asyncio.get_running_loop()
    return await loop.create_server(protocol, host, port)


async def abort_all(connections: Iterable[Connection], timeout: float = 5.0) -> None:
    """Abort every live connection (each machine gets ``connection_lost``) and
    wait until their storage effects have settled (nothing half-done)."""
    conns = list(connections)
    for conn in conns:
        conn.abort()
    waits = [asyncio.ensure_future(c.settled()) for c in conns]
    if waits:
        await asyncio.wait(waits, timeout=timeout)


class Service:
    """Several listeners sharing one pool of store threads, started and stopped together.

    ``host`` offers ``listeners()`` -> [(name, (host, port), factory)], where
    ``factory(now, peer, local, busy)`` makes a session's machine;
    ``carry_out(effect)``; ``on_event(machine, event, now)``; and
    ``connection_limits``, (in all, per client address) -- see
    :class:`dialsim.hosts.mailhost.MailHost`.  A connection beyond a limit
    still gets a machine, made with ``busy`` set to the reason, which refuses
    the session its protocol's way and closes.
    """

    def __init__(self, host: Any, *, store_threads: int = 4, grace: float = 10.0) -> None:
        self.host = host
        self.grace = grace
        self.executor = ThreadPoolExecutor(store_threads, thread_name_prefix="dialsim-store")
        self.connections: set[Connection] = set()
        self.servers: dict[str, asyncio.Server] = {}
        self.admitted: dict[object, int] = {}  # client address -> live admitted connections
        self.refused = 0

    def _admit(self, conn: Connection) -> str | None:
        """None to serve ``conn``, else why it is refused."""
        total, per_address = self.host.connection_limits
        addr = conn.peer[0] if isinstance(conn.peer, tuple) else conn.peer
        if total is not None and sum(self.admitted.values()) >= total:
            self.refused += 1
            return "too many connections, try again later"
        if per_address is not None and self.admitted.get(addr, 0) >= per_address:
            self.refused += 1
            return "too many connections from your address, try again later"
        self.admitted[addr] = self.admitted.get(addr, 0) + 1

        def left(_f: object) -> None:
            self.admitted[addr] -= 1
            if not self.admitted[addr]:
                del self.admitted[addr]

        conn.done.add_done_callback(left)
        return None

    async def _listen(self, factory: Callable[..., Any], addr: str, port: int) -> asyncio.Server:
        def make(conn: Connection, now: float) -> Any:
            return factory(now, conn.peer, conn.local, self._admit(conn))

        def protocol() -> Connection:
            conn = Connection(
                factory=make, on_event=self.host.on_event, carry_out=self.host.carry_out,
                executor=self.executor,
            )  # fmt: skip
            self.connections.add(conn)
            conn.done.add_done_callback(lambda _f: self.connections.discard(conn))
            return conn

        return await asyncio.get_running_loop().create_server(protocol, addr, port)

    async def start(self) -> dict[str, tuple[str, int]]:
        """Bind every listener; returns {name: (host, port)} as bound.  OSError
        when one cannot be bound (the others are closed again)."""
        for name, (addr, port), factory in self.host.listeners():
            try:
                self.servers[name] = await self._listen(factory, addr, port)
            except OSError as e:
                await self.stop()
                e.add_note(f"{addr}:{port} ({name})")
                raise
        return self.addresses

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        out = {}
        for name, srv in self.servers.items():
            sockname = srv.sockets[0].getsockname()
            out[name] = (sockname[0], sockname[1])
        return out

    async def stop(self) -> None:
        """Stop listening; every session says goodbye (421 / -ERR, nothing
        committed half-done) and closes; what is still open after ``grace``
        seconds is dropped; then wait for the store work in flight."""
        for srv in self.servers.values():
            srv.close()
        conns = list(self.connections)
        for conn in conns:
            conn.shutdown()
        pending = [c.done for c in conns if not c.done.done()]
        if pending:
            await asyncio.wait(pending, timeout=self.grace)
        await abort_all(self.connections)
        for srv in self.servers.values():
            await srv.wait_closed()
        self.servers.clear()
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown, True)


class ServiceThread:
    """A :class:`Service` on its own event loop in a background thread (for tests
    and embedding).  ``start()`` returns the bound addresses; ``stop()`` joins."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.service: Service | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.addresses: dict[str, tuple[str, int]] = {}

    def start(self, timeout: float = 10.0) -> dict[str, tuple[str, int]]:
        self._thread = threading.Thread(target=self._main, name="dialsim-service", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("service did not start")
        if self._error is not None:
            raise self._error
        return self.addresses

    def _main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.service = Service(self.host)
            try:
                self.addresses = await self.service.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.service.stop()

        asyncio.run(body())

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ServiceThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
        loop = asyncio.get_running_loop()
        conn: Connection | None = None

        def events(m: Any, ev: Event, now: float) -> None:
            if on_event is not None:
                on_event(m, ev, now)
            if until is not None and until() and conn is not None:
                conn.closing = True

        def protocol() -> Connection:
            nonlocal conn
            conn = Connection(machine, on_event=events)
            return conn

        await loop.create_connection(protocol, host, port)
        assert conn is not None
        try:
            await conn.done
        finally:
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.close()
        return conn

    if timeout is None:
        return await body()
    return await asyncio.wait_for(body(), timeout)
