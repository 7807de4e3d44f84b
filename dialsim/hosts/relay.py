"""A local program's connection carried across the dial-up line: the subscriber side of
``dialsim serve`` (and of a slirp-like NAT).

A desktop mail client connects to a port on the subscriber's own machine; the
octets it sends go over a TCP connection of dialsim's dial-up stack (so they
cross the simulated modem line as real PPP or SLIP frames) to the ISP's server,
and the server's replies come back the same way.  :class:`StreamRelay` is the
application machine on that dial-up TCP connection (bound with
:class:`~dialsim.hosts.endpoint.AppBinding`); the local socket's side is the
driver's: it hands what the program wrote to :meth:`StreamRelay.from_program`
and writes what :meth:`StreamRelay.for_program` returns.

Either side's end is passed on: the program closing its socket closes the
dial-up connection (after what it sent has gone), and the far side closing
(or the carrier's loss) ends the program's connection.
"""

from __future__ import annotations

from dialsim.proto.events import CloseRequested, Event

__all__ = ["StreamRelay"]


class StreamRelay:
    """Octets between a local program's socket and one dial-up TCP connection."""

    def __init__(self) -> None:
        self._to_line = bytearray()
        self._to_program = bytearray()
        self._events: list[Event] = []
        self.program_closed = False
        self.line_closed = False
        self.octets_up = 0
        self.octets_down = 0

    # -- the program's side (the driver)
    def from_program(self, data: bytes) -> None:
        self._to_line += data
        self.octets_up += len(data)

    def program_ended(self, now: float) -> None:
        """The program closed its socket: close the dial-up connection once flushed."""
        if not self.program_closed:
            self.program_closed = True
            self._events.append(CloseRequested(now))

    def for_program(self) -> bytes:
        out = bytes(self._to_program)
        self._to_program.clear()
        return out

    # -- the dial-up connection's side (the machine shape)
    def receive(self, data: bytes, now: float) -> None:
        self._to_program += data
        self.octets_down += len(data)

    def output(self, now: float) -> list[bytes]:
        if not self._to_line:
            return []
        out = bytes(self._to_line)
        self._to_line.clear()
        return [out]

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        return None

    def on_timer(self, now: float) -> None:
        return None

    def connection_lost(self, now: float) -> None:
        self.line_closed = True
