"""Run sans-IO machines on simpy's clock: one line host on one modem port.

A line host is any machine of the project's shape (:mod:`dialsim.proto.machine`)
over a serial line's octets -- the subscriber's call session, a login chat, a
NAS line.  :class:`LineDriver` wakes it when its modem delivers octets or when
its next deadline comes, and writes what it hands back to the modem's port,
one chunk per frame.  simpy's time is the ``now`` every machine is given; the
same driver runs on the wall clock when a
:class:`~dialsim.drivers.wallclock.WallClock` drives the environment.

The driver works by callbacks, not by a simpy process per line: a delivery's
own timeout calls the host (the port hands the octets straight over, without a
``Store`` get/put pair), and one timeout stands for the host's next deadline,
replaced only when the deadline moves.  So a frame costs one simpy event
(its delivery) instead of four or five (delivery, put, get, condition, and a
fresh deadline timeout at every wake-up).

:class:`DeadlineTimer` is that one armed timeout, shared with
:mod:`dialsim.drivers.nas`.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from dialsim.proto.machine import fire_due

__all__ = ["DeadlineTimer", "LineDriver", "serve_line"]


class DeadlineTimer:
    """One simpy timeout armed for a machine's next deadline; ``fired(now)`` is
    called when it comes.  Re-arming for the same instant keeps the timeout
    already queued (the instant is computed as simpy computes a timeout's:
    ``now + max(0, deadline - now)``)."""

    __slots__ = ("env", "fired", "_event", "_at")

    def __init__(self, env: simpy.Environment, fired: Callable[[float], None]) -> None:
        self.env = env
        self.fired = fired
        self._event: simpy.Event | None = None
        self._at: float | None = None

    def arm(self, deadline: float | None, now: float) -> None:
        """Be due at ``deadline`` (None: not at all)."""
        if deadline is None:
            self._event = self._at = None
            return
        delay = deadline - now
        if delay < 0.0:
            delay = 0.0
        if now + delay == self._at:
            return
        self._at = now + delay
        ev = self._event = self.env.timeout(delay)
        ev.callbacks.append(self._fire)

    def cancel(self) -> None:
        self._event = self._at = None

    def _fire(self, ev: simpy.Event) -> None:
        if ev is self._event:  # else a timeout that was replaced or cancelled
            self._event = self._at = None
            self.fired(self.env.now)


class LineDriver:
    """Drives ``host`` on ``port`` until ``stop`` fires or ``done()`` holds after a
    wake-up; ``finished`` then fires.  Start it with :meth:`start`."""

    def __init__(self, env: simpy.Environment, host, port, stop: simpy.Event,
                 done: Callable[[], bool] | None = None) -> None:
        self.env = env
        self.host = host
        self.port = port
        self.stop = stop
        self.done = done
        self.finished = env.event()
        self.ended = False
        self._timer = DeadlineTimer(env, self._timer_due)

    def start(self) -> None:
        now = self.env.now
        self._write(now)
        if self._over():
            self._end()
            return
        self.port.deliver_to(self._delivered)
        self.stop.callbacks.append(self._stopped)
        self._timer.arm(self.host.next_deadline(), now)

    def _over(self) -> bool:
        return self.stop.triggered or (self.done is not None and self.done())

    def _write(self, now: float) -> None:
        write = self.port.write
        for chunk in self.host.output(now):
            write(chunk)

    def _delivered(self, data: bytes) -> None:
        if self.stop.triggered:
            return
        host, now = self.host, self.env.now
        host.receive(data, now)
        self._after(host, now)

    def _timer_due(self, now: float) -> None:
        if not self.stop.triggered:
            self._after(self.host, now)

    def _after(self, host, now: float) -> None:
        # fire_due, then _write and _over, written out: this runs at every wake-up.
        d = host.next_deadline()
        if d is not None and d <= now:
            host.on_timer(now)
        write = self.port.write
        for chunk in host.output(now):
            write(chunk)
        if self.stop.triggered or (self.done is not None and self.done()):
            self._end()
        else:
            self._timer.arm(host.next_deadline(), now)

    def _stopped(self, _ev: simpy.Event) -> None:
        if not self.ended:
            self._end()

    def _end(self) -> None:
        self.ended = True
        self._timer.cancel()
        self.port.deliver_to(None)
        if not self.finished.triggered:
            self.finished.succeed()


def serve_line(env: simpy.Environment, host, port, stop: simpy.Event,
               done: Callable[[], bool] | None = None):
    """simpy process (use with ``yield from``): drive ``host`` on ``port`` until
    ``stop`` fires or ``done()`` holds after a wake-up.  A port that can only be
    read (a real serial line, :mod:`dialsim.drivers.serialline`) is served by
    :func:`_serve_by_reads`."""
    if not hasattr(port, "deliver_to"):
        yield from _serve_by_reads(env, host, port, stop, done)
        return
    driver = LineDriver(env, host, port, stop, done)
    driver.start()
    if not driver.ended:
        yield driver.finished


def _serve_by_reads(env: simpy.Environment, host, port, stop: simpy.Event,
                    done: Callable[[], bool] | None):
    """:func:`serve_line` for a port with only ``read()`` (an event per chunk)."""
    for chunk in host.output(env.now):
        port.write(chunk)
    read_ev = port.read()
    while not stop.triggered and not (done is not None and done()):
        deadline = host.next_deadline()
        waits = [read_ev, stop]
        if deadline is not None:
            waits.append(env.timeout(max(0.0, deadline - env.now)))
        yield env.any_of(waits)
        if stop.triggered:
            break
        now = env.now
        if read_ev.triggered:
            host.receive(read_ev.value, now)
            read_ev = port.read()
        fire_due(host, now)
        for chunk in host.output(now):
            port.write(chunk)
    if not read_ev.triggered:
        read_ev.cancel()
