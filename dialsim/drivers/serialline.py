"""A real serial port -- a modem, a pty, a pyserial URL such as ``dialsim://`` -- as the
subscriber's line, on the wall clock of a :class:`~dialsim.drivers.wallclock.WallClock`.

``dialsim dial`` runs the subscriber's own story (:class:`dialsim.hosts.subscriber.Subscriber`)
on this line instead of on the link model: the modem at the far end of the
port is real (or virtual, behind ``dialsim://``), so it times the octets
itself.  :class:`SerialLine` offers what the story needs:

- ``dial(number)``: a simpy process that types the dialer's AT commands
  (:class:`dialsim.proto.dialer.HayesDialer`) and returns a
  :class:`~dialsim.link.call.DialResult` whose ``call`` is a
  :class:`SerialCall` (``subscriber`` port, ``carrier_lost`` event, ``hangup()``);
  with ``direct=True`` the line is already connected (a null modem, slirp on
  a pty) and no AT command is sent;
- hang-up by dropping DTR where the port has it, else ``+++`` (after the
  guard time) and ``ATH0``;
- the carrier's loss seen as the port's DCD dropping where the port reports
  DCD (a serial port, ``dialsim://``), else as the modem's ``NO CARRIER`` in
  the octets (a pty has no modem control lines).
"""

from __future__ import annotations

import math
import threading

import simpy

from dialsim.drivers.dte import FdStream
from dialsim.drivers.wallclock import WallClock
from dialsim.link.call import DialResult
from dialsim.proto.dialer import HayesDialer
from dialsim.proto.machine import fire_due

__all__ = ["SerialCall", "SerialLine"]

_NO_CARRIER = b"\r\nNO CARRIER\r\n"
_GUARD_S = 1.2  # a little over the usual S12 of 1 s


class SerialCall:
    """One call on a :class:`SerialLine`: the subscriber's port for it and its end."""

    def __init__(self, line: SerialLine, rate_bps: float | None) -> None:
        self.line = line
        self.subscriber = line
        self.carrier_lost = line.env.event()
        # What the modem reported at CONNECT; a real modem does not report retrains.
        self.rate_down_bps = self.lowest_rate_down_bps = (
            rate_bps if rate_bps is not None else math.nan)
        self.retrains = 0
        self.end_reason: str | None = None
        self.end_cause: str | None = None

    @property
    def up(self) -> bool:
        return not self.carrier_lost.triggered

    def hangup(self, who: str = "subscriber", cause: str | None = None) -> None:
        """The subscriber hangs up now."""
        if self.up:
            self.end_reason = "hangup"
            self.end_cause = cause or "hangup"
            self.carrier_lost.succeed("hangup")
            self.line.hang_up()

    def lost(self) -> None:
        if self.up:
            self.end_reason = self.end_cause = "carrier_lost"
            self.carrier_lost.succeed("carrier_lost")


class SerialLine:
    """``ser`` (an open pyserial port) on ``clock``; the port is read as octets arrive."""

    def __init__(self, clock: WallClock, ser, *, direct: bool = False,
                 dcd_poll_s: float = 0.25) -> None:
        self.clock = clock
        self.env = clock.env
        self.ser = ser
        self.direct = direct
        self.inbox = simpy.Store(self.env)
        self.call: SerialCall | None = None
        self.octets_in = 0
        self.octets_out = 0
        self._stream: FdStream | None = None
        self._has_dcd = self._probe_dcd()
        self._tail = b""
        try:
            fd = ser.fileno()
        except Exception:  # a URL handler without a descriptor: read in a thread
            fd = None
        if fd is not None:
            self._stream = FdStream(clock, fd, self._arrived)
        else:
            threading.Thread(target=self._reader, daemon=True).start()
        if self._has_dcd:
            self.env.process(self._watch_dcd(dcd_poll_s))

    def _probe_dcd(self) -> bool:
        try:
            self.ser.cd  # noqa: B018 - does the port report DCD at all?
        except Exception:
            return False
        return True

    def _reader(self) -> None:
        while self.ser.is_open:
            try:
                data = self.ser.read(self.ser.in_waiting or 1)
            except Exception:
                return
            if data:
                self.clock.loop.call_soon_threadsafe(self.clock.inject, self._arrived, data)

    def _arrived(self, data: bytes) -> None:
        self.octets_in += len(data)
        self.inbox.put(data)
        if not self._has_dcd and self.call is not None and self.call.up:
            seen = self._tail + data
            if _NO_CARRIER in seen:
                self.call.lost()
            self._tail = seen[-len(_NO_CARRIER):]

    def _watch_dcd(self, every: float):
        while True:
            yield self.env.timeout(every)
            call = self.call
            if call is not None and call.up and not self.direct and not self.ser.cd:
                call.lost()

    # -- the port the subscriber's story writes to and reads from
    def write(self, data: bytes) -> None:
        if not data:
            return
        self.octets_out += len(data)
        if self._stream is not None:
            self._stream.write(data)
        else:
            self.ser.write(data)

    def read(self) -> simpy.events.Event:
        return self.inbox.get()

    @property
    def counters(self) -> dict[str, float]:
        # The modem does not tell how many bits it put on the line.
        return {"octets_in": self.octets_in, "octets_out": self.octets_out,
                "line_octets_in": math.nan, "line_octets_out": math.nan}

    # -- call progress
    def dial(self, number: str, *, init: str = "ATZ"):
        """simpy process: dial ``number`` (what follows ATD); returns a DialResult."""
        env = self.env
        t_dial = env.now
        if self.direct:
            self.call = SerialCall(self, None)
            return DialResult("connect", self.call, t_dial, env.now, math.nan, math.nan)
        dialer = HayesDialer(number, now=env.now, init=init)
        while not dialer.done:
            for chunk in dialer.output(env.now):
                self.write(chunk)
            get = self.read()
            deadline = dialer.next_deadline()
            waits = [get] if deadline is None else [get, env.timeout(max(0.0, deadline - env.now))]
            yield env.any_of(waits)
            if get.triggered:
                dialer.receive(get.value, env.now)
            else:
                get.cancel()
            fire_due(dialer, env.now)
        out = dialer.outcome
        if out.outcome != "connect":
            outcome = out.outcome if out.outcome in ("busy", "no_answer") else "no_carrier"
            return DialResult(outcome, None, t_dial, None, None, None)
        self.call = SerialCall(self, out.rate_bps)
        if dialer.leftover:
            self.inbox.put(dialer.leftover)
        rate = out.rate_bps if out.rate_bps is not None else math.nan
        return DialResult("connect", self.call, t_dial, env.now, rate, rate)

    def hang_up(self) -> None:
        """Drop DTR (the modem hangs up with &D2), or escape and ATH0 where there is no DTR."""
        if self.direct:
            return
        try:
            self.ser.dtr = False
        except Exception:
            self.env.process(self._escape_and_hang_up())
            return
        self.clock.loop.call_later(0.5, self._raise_dtr)

    def _raise_dtr(self) -> None:
        try:
            self.ser.dtr = True
        except Exception:
            pass

    def _escape_and_hang_up(self):
        yield self.env.timeout(_GUARD_S)
        self.write(b"+++")
        yield self.env.timeout(_GUARD_S)
        self.write(b"ATH0\r")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
