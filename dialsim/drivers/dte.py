"""A real DTE -- a program on a pseudo-terminal or a TCP socket -- on the model's wall clock.

The far end of a real-time line is a file descriptor: the master side of a pty
whose slave a program opened (pppd, minicom, DOSBox, slirp), or a connected
socket (an emulator's serial port over TCP).  :class:`FdStream` moves octets
between that descriptor and the model, on the asyncio loop of a
:class:`~dialsim.drivers.wallclock.WallClock`:

- octets the program writes are read as soon as they arrive and handed to
  ``on_data(data)`` inside :meth:`WallClock.inject` (so at ``env.now`` = the
  time they were read) -- unless the model's serial port has not yet clocked
  out what came before: then reading pauses until it has (:meth:`FdStream.hold_until`),
  the pty's buffer fills and the program's writes block, as RTS/CTS hardware
  flow control held a real DTE back;
- octets for the program are written with :meth:`FdStream.write` when the
  model delivers them (a simpy process calls it at the delivery time); a
  descriptor that cannot take them all at once gets the rest when it is
  writable, in order.

When the program lets go of the line -- a socket closes, or no program holds
the pty's slave side open any more, which is what a serial port's DTR drop
looks like from here -- ``on_close()`` is called once.  A socket is then
done; a pty is watched on, since the next program may open it.  Nothing here knows about modems; see
:mod:`dialsim.drivers.modem` for the virtual Hayes modem in front of a line.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from dialsim.drivers.wallclock import WallClock

__all__ = ["FdStream"]


class FdStream:
    """One descriptor's octets in and out, on ``clock``'s loop."""

    def __init__(
        self,
        clock: WallClock,
        fd: int,
        on_data: Callable[[bytes], None],
        on_close: Callable[[], None] | None = None,
        *,
        read_size: int = 4096,
    ) -> None:
        self.clock = clock
        self.fd = fd
        self.on_data = on_data
        self.on_close = on_close
        self.read_size = read_size
        self.octets_in = 0
        self.octets_out = 0
        self._pending = bytearray()
        self._writing = False
        self.closed = False
        self._paused = False
        self._held = True  # a program is (or may be) on the other side
        os.set_blocking(fd, False)
        self._is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
        clock.loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, self.read_size)
        except BlockingIOError:
            return
        except OSError as e:
            # EIO: a pty whose slave side no program holds open.
            if e.errno not in (errno.EIO, errno.ECONNRESET, errno.EBADF):
                raise
            data = b""
        if not data:
            self._let_go()
            return
        self._held = True
        self.octets_in += len(data)
        self.clock.inject(self.on_data, data)

    def _let_go(self) -> None:
        if self._held and self.on_close is not None:
            self.clock.inject(self.on_close)
        self._held = False
        if self._is_socket:
            self.close()
            return
        # A pty master reads EIO while no program has the slave open; the next
        # program may open it later, so keep the master but stop busy-polling.
        loop = self.clock.loop
        loop.remove_reader(self.fd)
        loop.call_later(0.05, self._resume_reading)

    def _resume_reading(self) -> None:
        if not self.closed:
            self._paused = False
            self.clock.loop.add_reader(self.fd, self._readable)

    def hold_until(self, t: float) -> None:
        """Read nothing more from the program until model time ``t`` (flow control)."""
        if self.closed or self._paused or t <= self.clock.now():
            return
        self._paused = True
        loop = self.clock.loop
        loop.remove_reader(self.fd)
        loop.call_at(self.clock.wall_time(t), self._resume_reading)

    def write(self, data: bytes) -> None:
        """Send octets to the program now (queued behind anything not yet written)."""
        if self.closed or not data:
            return
        self._pending += data
        self.octets_out += len(data)
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        while self._pending:
            try:
                n = os.write(self.fd, self._pending)
            except BlockingIOError:
                n = 0
            except OSError as e:
                if e.errno in (errno.EIO, errno.EPIPE, errno.ECONNRESET):
                    self._pending.clear()  # nobody there to read: the octets are lost
                    break
                raise
            if n == 0:
                if not self._writing:
                    self._writing = True
                    self.clock.loop.add_writer(self.fd, self._flush)
                return
            del self._pending[:n]
        if self._writing:
            self._writing = False
            self.clock.loop.remove_writer(self.fd)

    @property
    def backlog(self) -> int:
        """Octets accepted by :meth:`write` that the descriptor has not taken yet."""
        return len(self._pending)

    def close(self) -> None:
        """Stop watching the descriptor (the caller closes it)."""
        self.closed = True
        loop = self.clock.loop
        loop.remove_reader(self.fd)
        if self._writing:
            loop.remove_writer(self.fd)



def attach_port(clock: WallClock, port, fd: int, on_close: Callable[[], None] | None = None,
                on_delivery: Callable[[float, bytes], None] | None = None) -> FdStream:
    """A program on ``fd`` becomes the DTE of ``port`` (a :class:`~dialsim.link.call.Port`)
    for the rest of the call: what it writes goes into the modem (no faster than
    the modem's serial port takes it), what the line delivers is written to it
    at the delivery time.  ``on_delivery(t, data)`` sees
    each delivery as it is released."""
    def from_program(data: bytes) -> None:
        port.write(data)
        stream.hold_until(port.accepted_at())

    stream = FdStream(clock, fd, from_program, on_close)
    env = clock.env

    def deliveries():
        ended = port.call.carrier_lost
        while not ended.triggered:
            get = port.read()
            yield get | ended
            if not get.triggered:
                get.cancel()
                break
            if on_delivery is not None:
                on_delivery(env.now, get.value)
            stream.write(get.value)

    env.process(deliveries())
    return stream
