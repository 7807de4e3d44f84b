"""The simulation's own simpy model, run against the wall clock on an asyncio loop.

Real-time modes (``dialsim modem``, ``serve``, ``shell``, the ``dialsim://``
port) do not re-implement the link model: they run the very same simpy world
(dial process, :class:`~dialsim.link.call.Call`, its two
:class:`~dialsim.link.pipeline.Direction` pipelines, carrier drops, the ISP's
line host) and only tie simpy's clock to the wall clock.  ``env.now`` is the
number of seconds since the :class:`WallClock` started (scaled by nothing:
one simulated second is one real second).

How time moves:

- :meth:`WallClock.catch_up` runs every simpy event due by the wall clock's
  now and leaves ``env.now`` equal to it;
- after each catch-up the clock re-arms one ``loop.call_at`` for the next
  event simpy has queued (``env.peek()``), so a delivery the link model
  scheduled for time *t* is processed at wall time *t* -- never earlier (the
  loop may be late by its own scheduling delay, which :attr:`lateness` keeps);
- input from the outside world (octets read from a pty, a socket) enters with
  :meth:`WallClock.inject`, which first catches up, so the input happens at
  ``env.now`` = the wall time it was read.

simpy's own ``RealtimeEnvironment`` sleeps in ``time.sleep`` and cannot share
an asyncio loop with file descriptors; this clock drives a plain
``simpy.Environment`` from asyncio instead.  An exception inside a simpy
process stops the clock and is raised again from :meth:`WallClock.run_until`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import simpy

__all__ = ["Lateness", "WallClock"]


@dataclass(slots=True)
class Lateness:
    """How late the loop processed simpy events behind their model time (seconds)."""

    samples: int = 0
    total: float = 0.0
    worst: float = 0.0
    recent: list[float] = field(default_factory=list)

    def add(self, late: float) -> None:
        self.samples += 1
        self.total += late
        self.worst = max(self.worst, late)
        if len(self.recent) < 100_000:
            self.recent.append(late)


class WallClock:
    """Runs ``env`` so that ``env.now`` follows the wall clock (``loop.time()``)."""

    def __init__(self, env: simpy.Environment, loop: asyncio.AbstractEventLoop | None = None):
        self.env = env
        self.loop = loop or asyncio.get_running_loop()
        self._origin = self.loop.time() - env.now  # wall time of env.now == 0
        self._timer: asyncio.TimerHandle | None = None
        self._failure: BaseException | None = None
        self._waiters: list[asyncio.Future] = []
        self.lateness = Lateness()
        self._rearm()

    # -- time ------------------------------------------------------------------

    def now(self) -> float:
        """The simulated time that corresponds to the wall clock's now."""
        return self.loop.time() - self._origin

    def wall_time(self, t: float) -> float:
        """The ``loop.time()`` at which simulated time ``t`` falls."""
        return self._origin + t

    def catch_up(self, at_least: float = 0.0) -> None:
        """Process every simpy event due by now; afterwards ``env.now`` is now.

        ``at_least``: the model time a timer was armed for; the loop has reached
        its wall time, even where float rounding makes :meth:`now` a hair earlier
        (without this the timer would be re-armed in the past, over and over)."""
        if self._failure is not None:
            return
        target = max(self.now(), at_least)
        env = self.env
        try:
            while env.peek() <= target:
                due = env.peek()
                env.step()
                self.lateness.add(max(0.0, self.now() - due))
            if target > env.now:
                # Nothing is due before target: move the clock there.  Not with
                # env.run(until=...): simpy 4.1 leaves its stop event queued at
                # that instant, and the next catch-up would find it due at once,
                # over and over.
                env._now = target
        except BaseException as exc:  # a model process failed: stop, report to run_until
            self._failure = exc
            self._wake_waiters()
            return
        self._rearm()
        self._wake_waiters()

    def inject(self, action: Callable[..., Any], *args: Any) -> Any:
        """Catch up, then do ``action(*args)`` at ``env.now`` == now (outside input)."""
        self.catch_up()
        if self._failure is not None:
            return None
        result = action(*args)
        self._rearm()
        return result

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        nxt = self.env.peek()
        if nxt != math.inf:
            self._timer = self.loop.call_at(self.wall_time(nxt), self.catch_up, nxt)

    # -- waiting -------------------------------------------------------------

    def _wake_waiters(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def run_until(self, done: Callable[[], bool] | simpy.Event,
                        timeout: float | None = None) -> bool:
        """Let the model run on the wall clock until ``done`` (a predicate or a simpy
        event) holds; False if ``timeout`` wall seconds passed first.  Re-raises a
        model process's exception."""
        check = (lambda: done.triggered) if isinstance(done, simpy.Event) else done
        deadline = None if timeout is None else self.loop.time() + timeout
        self.catch_up()  # events scheduled from outside (a new process) arm the timer
        while True:
            if self._failure is not None:
                raise self._failure
            if check():
                return True
            fut = self.loop.create_future()
            self._waiters.append(fut)
            wait = None if deadline is None else max(0.0, deadline - self.loop.time())
            if wait == 0.0:
                return check()
            try:
                await asyncio.wait_for(fut, wait)
            except TimeoutError:
                return check()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake_waiters()
