"""Run sans-IO line hosts on simpy's virtual clock.

A *line host* is anything with ``receive_line(data, now)``,
``line_output(now) -> list[bytes]``, ``next_deadline()`` and ``on_timer(now)``
(an :class:`dialsim.hosts.endpoint.IpEndpoint`, a login chat, ...).  The
driver is the only place where simulated time is read: it wakes the host when
its modem delivers bytes or when the host's next deadline comes, and writes what
the host hands back to the modem's port, one chunk per frame.
"""

from __future__ import annotations

import simpy


def serve_line(env: simpy.Environment, host, port, stop: simpy.Event, *, on_wake=None):
    """simpy process: drive ``host`` on ``port`` until ``stop`` fires.

    ``on_wake(now)``, when given, is called after every wake-up (the caller's
    chance to look at application state and decide to stop).
    """
    for chunk in host.line_output(env.now):
        port.write(chunk)
    read_ev = port.read()
    while not stop.triggered:
        deadline = host.next_deadline()
        waits = [read_ev, stop]
        timer = None
        if deadline is not None:
            timer = env.timeout(max(0.0, deadline - env.now))
            waits.append(timer)
        yield env.any_of(waits)
        if stop.triggered:
            break
        now = env.now
        if read_ev.triggered:
            host.receive_line(read_ev.value, now)
            read_ev = port.read()
        if deadline is not None and deadline <= now:
            host.on_timer(now)
        for chunk in host.line_output(now):
            port.write(chunk)
        if on_wake is not None:
            on_wake(now)
    cancel = getattr(read_ev, "cancel", None)
    if cancel is not None and not read_ev.triggered:
        cancel()
