"""Run sans-IO machines on simpy's clock: one line host on one modem port.

A line host is any machine of the project's shape (:mod:`dialsim.proto.machine`)
over a serial line's octets -- the subscriber's call session, a login chat, a
NAS line.  :func:`serve_line` wakes it when its modem delivers octets or when
its next deadline comes, and writes what it hands back to the modem's port,
one chunk per frame.  simpy's time is the ``now`` every machine is given; the
same process runs on the wall clock when a
:class:`~dialsim.drivers.wallclock.WallClock` drives the environment.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

from dialsim.proto.machine import fire_due

__all__ = ["serve_line"]


def serve_line(env: simpy.Environment, host, port, stop: simpy.Event,
               done: Callable[[], bool] | None = None):
    """simpy process (use with ``yield from``): drive ``host`` on ``port`` until
    ``stop`` fires or ``done()`` holds after a wake-up."""
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
