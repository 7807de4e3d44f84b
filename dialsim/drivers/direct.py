"""A line host on a descriptor that is already a real link: no modem model between.

For a line that needs no simulated modem -- a pty with slirp on its other side,
a real serial port with a connected modem behind it (``dialsim dial --direct``),
a Linux TUN device -- the octets go to the descriptor as fast as it takes them:
the timing is the real link's own.  (A line that should behave like a modem
call runs the link model on the wall clock instead: :mod:`dialsim.drivers.wallclock`.)
The same machines that :mod:`dialsim.drivers.sim` runs in simpy time run here;
``now`` is seconds since the driver started (``time.monotonic``).

For a byte-stream fd (pty, serial) every chunk is written whole; for a TUN
device (``packet_fd=True``) each chunk is one datagram and each read returns
one datagram, so chunks must not be merged or split.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable


class DirectLine:
    """Drives one line host on one fd, cooperatively, until a condition holds."""

    def __init__(self, host, fd: int, *, packet_fd: bool = False, clock=time.monotonic) -> None:
        self.host = host
        self.fd = fd
        self.packet_fd = packet_fd
        self.clock = clock
        self.t0 = clock()
        self.octets_in = 0
        self.octets_out = 0
        self.chunk_filter: Callable[[bytes], bool] | None = None
        os.set_blocking(fd, False)

    def now(self) -> float:
        return self.clock() - self.t0

    def _write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 1.0)
                continue
            if self.packet_fd:
                break
            view = view[n:]
        self.octets_out += len(chunk)

    def flush(self) -> None:
        for chunk in self.host.output(self.now()):
            self._write(chunk)

    def step(self, max_wait: float = 0.05) -> None:
        """One turn: flush output, wait for input or the next deadline (at most ``max_wait``)."""
        self.flush()
        now = self.now()
        deadline = self.host.next_deadline()
        wait = max_wait if deadline is None else min(max_wait, max(0.0, deadline - now))
        readable, _, _ = select.select([self.fd], [], [], wait)
        if readable:
            for _ in range(64):
                try:
                    data = os.read(self.fd, 65536)
                except BlockingIOError:
                    break
                except OSError as e:  # a pty whose other side closed
                    if e.errno == errno.EIO:
                        break
                    raise
                if not data:
                    break
                self.octets_in += len(data)
                if self.chunk_filter is None or self.chunk_filter(data):
                    self.host.receive(data, self.now())
                if not self.packet_fd:
                    break
        now = self.now()
        deadline = self.host.next_deadline()
        if deadline is not None and deadline <= now:
            self.host.on_timer(now)
        self.flush()

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Step until ``done()`` is true (returns True) or ``timeout`` seconds pass (False)."""
        end = self.clock() + timeout
        while not done():
            if self.clock() >= end:
                return False
            self.step()
        self.flush()
        return True
