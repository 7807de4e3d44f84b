"""The ISP's NAS in simpy time: modem lines in a hunt group, the ISP's host run all along.

A dial reaches the NAS's number; the first free line takes the call (a hunt
group), or the caller hears BUSY when every line is in use.  The line is held
from the dial on (a real hunt group seizes it at the first ring) until the
call ends.  The ISP's host (:class:`~dialsim.hosts.isp.Isp`) runs the whole
replication: between calls its TCP timers and its POP3 autologout go on, as on
a real terminal server, and what it would send to a line with no call is
dropped.  When the ISP's idle or session timer runs out on a line
(:meth:`~dialsim.hosts.isp.Isp.hangups`), the NAS hangs that call up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
import simpy

from dialsim.drivers.sim import DeadlineTimer
from dialsim.link import call as linkcall

__all__ = ["Nas"]


class Nas:
    """``isp``'s lines on the simpy clock of ``env``."""

    def __init__(self, env: simpy.Environment, isp) -> None:
        self.env = env
        self.isp = isp
        self.calls: dict[int, linkcall.Call] = {}
        self._seized: set[int] = set()
        self.dropped_octets = 0  # written for a line whose call had ended
        self.busy_signals = 0
        # Called after the ISP's host has worked (a driver relaying the ISP's own
        # connections to the outside world hooks in here; see experiment/shell.py).
        self.after_pump = None
        self._timer = DeadlineTimer(env, self._timer_due)
        self._timer.arm(isp.next_deadline(), env.now)

    # -- calls -------------------------------------------------------------

    def _seize(self) -> int | None:
        for port in self.isp.ports:
            if not port.in_call and port.line not in self._seized:
                self._seized.add(port.line)
                return port.line
        return None

    def dial(self, cfg: linkcall.LinkConfig, rng: np.random.Generator,
             on_event: Callable[[float, str, str], None],
             on_seized: Callable[[int | None], None] | None = None):
        """simpy process: a subscriber dials the NAS; returns the DialResult.
        ``on_seized(line)`` learns the line the hunt group gave the call (None: all busy)."""
        line = self._seize()
        if on_seized is not None:
            on_seized(line)
        if line is None:
            self.busy_signals += 1
            cfg = replace(cfg, busy_probability=1.0)
        try:
            result = yield self.env.process(linkcall.dial(self.env, cfg, rng, on_event))
        finally:
            if line is not None:
                self._seized.discard(line)
        if result.outcome == "connect":
            self._answer(line, result.call)
        return result

    def _answer(self, line: int, call: linkcall.Call) -> None:
        self.calls[line] = call
        self.isp.answer(line, self.env.now)
        call.isp.deliver_to(partial(self._delivered, line, call))
        call.carrier_lost.callbacks.append(partial(self._ended, line, call))
        self._pump()

    def _delivered(self, line: int, call: linkcall.Call, data: bytes) -> None:
        if self.calls.get(line) is call:
            self.isp.receive(line, data, self.env.now)
            self._pump()

    def _ended(self, line: int, call: linkcall.Call, _ev) -> None:
        call.isp.deliver_to(None)
        self.isp.hung_up(line, self.env.now)
        del self.calls[line]
        self._pump()

    # -- the host ----------------------------------------------------------

    def poke(self) -> None:
        """Something outside the lines gave the ISP's host work: let it run now."""
        self._pump()

    def _pump(self, *, from_timer: bool = False) -> None:
        now = self.env.now
        for line, chunk in self.isp.output(now):
            call = self.calls.get(line)
            if call is not None and call.up:
                call.isp.write(chunk)
            else:
                self.dropped_octets += len(chunk)
        for line, cause in self.isp.hangups():
            call = self.calls.get(line)
            if call is not None and call.up:
                call.hangup("isp", cause)
        if self.after_pump is not None:
            self.after_pump()
        if not from_timer:
            self._timer_due(now)

    def _timer_due(self, now: float) -> None:
        """The host's timers that are due, then the timer for its next deadline."""
        isp = self.isp
        deadline = isp.next_deadline()
        if deadline is not None and deadline <= now:
            isp.on_timer(now)
            self._pump(from_timer=True)
            deadline = isp.next_deadline()
        self._timer.arm(deadline, now)
