"""The byte stream of one text-protocol session: replies handed out as the
transport drains, and the switch to TLS (RFC 2595 STLS for POP3, RFC 3207
STARTTLS for SMTP).

Scope, sans-IO:

- :class:`SessionStream` queues a server's replies and hands them out in
  pieces of at most :data:`CHUNK` octets per :meth:`SessionStream.take`, so a
  driver takes only what its transport can carry (asyncio's write-buffer
  backpressure) and a server that looks at :attr:`SessionStream.backlog`
  answers the next pipelined command only once the previous answers have
  gone.  A large body is kept as one buffer and sliced with ``memoryview``:
  no copy of the rest per piece.
- :meth:`SessionStream.start_tls` marks the point in the stream after which
  everything is TLS: replies queued before it (the "+OK Begin TLS" or "220
  Ready to start TLS") go out in clear, all later ones encrypted; received
  bytes are TLS from that call on.
- :class:`TlsChannel` is TLS over memory buffers (:class:`ssl.SSLObject` with
  two :class:`ssl.MemoryBIO`): fed ciphertext, it hands back plaintext and
  the ciphertext to send.  It does no I/O, so the same code can
  run on a socket, inside the simulation (a scenario's ``tls: true``: both
  ends would hold a channel, the server side through this stream) and in a
  unit test.  The :class:`ssl.SSLContext` (certificate, protocol versions) is
  made by the caller.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import Callable

__all__ = ["CHUNK", "HIGH_WATER", "SessionStream", "TlsChannel", "take_replies"]

CHUNK = 64 * 1024  # octets handed out per take(): what a transport buffers well
HIGH_WATER = CHUNK  # replies waiting before a server reads its next pipelined command
_READ = 64 * 1024


class TlsChannel:
    """One TLS connection over memory buffers: ``feed`` ciphertext in, read
    plaintext out; ``send`` plaintext, ``pending`` ciphertext out.

    ``failed`` holds a short reason once the handshake or a record was bad
    (the session should then close); ``closed`` once the peer sent its
    close_notify.
    """

    def __init__(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side,
            server_hostname=server_hostname,
        )  # fmt: skip
        self.established = False
        self.failed: str | None = None
        self.closed = False
        if not server_side:
            self._handshake()  # the ClientHello

    def __repr__(self) -> str:
        state = "failed" if self.failed else "established" if self.established else "handshake"
        return f"<TlsChannel {state}>"

    @property
    def version(self) -> str | None:
        return self._tls.version() if self.established else None

    def _handshake(self) -> None:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return
        except ssl.SSLError as e:
            self.failed = e.reason or type(e).__name__
            return
        self.established = True

    def feed(self, data: bytes) -> bytes:
        """Ciphertext from the peer; returns the plaintext it completes."""
        if self.failed or self.closed:
            return b""
        self._incoming.write(data)
        if not self.established:
            self._handshake()
            if not self.established:
                return b""
        plain: list[bytes] = []
        while True:
            try:
                piece = self._tls.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed = True
                break
            except ssl.SSLError as e:
                self.failed = e.reason or type(e).__name__
                break
            if not piece:  # the peer's close_notify
                self.closed = True
                break
            plain.append(piece)
        return b"".join(plain)

    def send(self, data: bytes | memoryview) -> None:
        """Encrypt plaintext for the peer (after the handshake)."""
        self._tls.write(data)

    def close(self) -> None:
        """Queue our close_notify."""
        try:
            self._tls.unwrap()
        except (ssl.SSLError, ValueError):
            pass

    @property
    def has_pending(self) -> bool:
        return self._outgoing.pending > 0

    def pending(self) -> bytes:
        """Ciphertext waiting to be sent (handshake records, data, alerts)."""
        return self._outgoing.read()


_START_TLS = object()  # the point in the queue where TLS begins
_CLOSE_TLS = object()  # ... and where our close_notify goes


class SessionStream:
    """A server session's outgoing replies (with an optional TLS switch) and
    the filter its incoming bytes pass through."""

    def __init__(self) -> None:
        self._queue: deque[object] = deque()  # bytearray | memoryview | _START_TLS | _CLOSE_TLS
        self.backlog = 0  # plaintext octets queued and not yet taken
        self.tls: TlsChannel | None = None
        self._tls_out = False  # the queue has passed its TLS point

    def __repr__(self) -> str:
        return f"<SessionStream backlog={self.backlog} tls={self.tls!r}>"

    def write(self, data: bytes) -> None:
        """Queue plaintext; short replies are joined, a large body is kept as it is."""
        if not data:
            return
        self.backlog += len(data)
        tail = self._queue[-1] if self._queue else None
        if len(data) >= CHUNK:
            self._queue.append(memoryview(data))
        elif isinstance(tail, bytearray) and len(tail) < CHUNK:
            tail += data
        else:
            self._queue.append(bytearray(data))

    def start_tls(self, context: ssl.SSLContext) -> None:
        """From here on the stream is TLS: what is queued so far goes out in
        clear, incoming bytes are TLS at once."""
        self.tls = TlsChannel(context, server_side=True)
        self._queue.append(_START_TLS)

    @property
    def tls_active(self) -> bool:
        return self.tls is not None

    def receive(self, data: bytes) -> bytes:
        """Bytes from the transport -> bytes for the protocol (decrypted under TLS)."""
        return data if self.tls is None else self.tls.feed(data)

    def take(self) -> list[bytes]:
        """At most :data:`CHUNK` octets of queued replies (encrypted past the
        TLS point), plus any TLS records waiting."""
        out: list[bytes] = []
        budget = CHUNK
        queue = self._queue
        while queue and budget > 0:
            head = queue[0]
            if head is _START_TLS:
                queue.popleft()
                self._tls_out = True
                continue
            if head is _CLOSE_TLS:
                queue.popleft()
                self.tls.close()  # type: ignore[union-attr]
                continue
            if self._tls_out and not self.tls.established:  # type: ignore[union-attr]
                break  # replies wait for the handshake
            assert isinstance(head, bytearray | memoryview)
            piece = head
            if len(head) > budget:
                view = memoryview(head)
                piece, queue[0] = view[:budget], view[budget:]
            else:
                queue.popleft()
            budget -= len(piece)
            self.backlog -= len(piece)
            if self._tls_out:
                self.tls.send(piece)  # type: ignore[union-attr]
            else:
                out.append(bytes(piece))
        if self._tls_out and self.tls is not None and self.tls.has_pending:
            out.append(self.tls.pending())
        return out

    def close_tls(self) -> None:
        """Queue our TLS close_notify after what is queued (when TLS is on)."""
        if self.tls is not None and self.tls.failed is None:
            self._queue.append(_CLOSE_TLS)


def take_replies(stream: SessionStream, resume: Callable[[float], None], now: float) -> list[bytes]:
    """A server's ``output(now)``: first let ``resume(now)`` answer the
    pipelined commands held back while the backlog was at :data:`HIGH_WATER`,
    then hand out the next piece of replies."""
    if stream.backlog < HIGH_WATER:
        resume(now)
    return stream.take()
