"""The subscriber's line kept online in real time: dial, stay up, redial after a drop.

``dialsim serve`` and ``dialsim shell`` both keep a dial-up line to the
scenario's ISP up on the wall clock (the simulation's own world, driven by a
:class:`~dialsim.drivers.wallclock.WallClock`): dial through the NAS's hunt
group, bring up PPP or SLIP on the subscriber's
:class:`~dialsim.hosts.subscriber.Computer`, and when the carrier goes, redial
by the scenario's policy.  :class:`OnlineLine` is that story; what sits above
the link (local ports relayed over dialsim's TCP, or a kernel behind a TUN
device) is a subclass's: it builds the computer and hears when the link comes
up and goes down.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dialsim.drivers.wallclock import WallClock
from dialsim.experiment import settings
from dialsim.experiment.live import LiveWorld
from dialsim.experiment.world import pyrandom, seed_streams
from dialsim.hosts.subscriber import Computer
from dialsim.proto.machine import fire_due

__all__ = ["OnlineLine"]

OnLog = Callable[[float, str, str], None]


class OnlineLine:
    """The line's story; subclasses override :meth:`computer`, :meth:`link_came_up`,
    :meth:`link_went_down` and :meth:`after_pump`."""

    def __init__(self, sc, clock: WallClock, live: LiveWorld, *, log: OnLog | None = None) -> None:
        self.sc = sc
        self.clock = clock
        self.env = clock.env
        self.live = live
        self.log = log or (lambda _t, _w, _d: None)
        self.settings = settings.subscriber_settings(sc)
        streams = seed_streams(sc.seed, 0)
        self.rngs = (pyrandom(streams["subscriber_tcp"]), pyrandom(streams["subscriber_ppp"]))
        self.link_rng = np.random.default_rng(streams["link"])
        self.pc: Computer | None = None
        self.call = None
        self.online = False
        self.calls = 0
        self.stopped = False
        self._wake = self.env.event()
        self.process = self.env.process(self._story())

    # -- for subclasses
    def computer(self) -> Computer:
        """The subscriber's computer for a new call."""
        return Computer(self.settings, rng=self.rngs[0], ppp_rng=self.rngs[1], now=self.env.now)

    def link_came_up(self) -> None:
        """PPP's IPCP (or SLIP) is up."""

    def link_went_down(self, reason: str) -> None:
        """The call ended (carrier lost, or hung up)."""

    def after_pump(self) -> None:
        """The computer has worked: move what it produced for the world above."""

    # -- the story: dial, stay online, redial after a drop
    def _story(self):
        env, plan = self.env, settings.call_plan(self.sc)
        while not self.stopped:
            for _attempt in range(plan.attempts):
                result = yield env.process(
                    self.live.world.nas.dial(self.live.link, self.link_rng, self.log))
                if result.outcome == "connect":
                    self.calls += 1
                    yield from self._online(result)
                if self.stopped:
                    return
                yield env.timeout(plan.delay)

    def _online(self, result):
        env = self.env
        self.call = call = result.call
        self.pc = self.computer()
        env.process(self._from_line(call))
        env.process(self._timers(call))
        self.pump()
        reason = yield call.carrier_lost
        self.log(env.now, "line down", str(reason))
        self.online = False
        self.link_went_down(str(reason))
        self.pc = self.call = None

    def _from_line(self, call):
        ended = call.carrier_lost
        while True:
            get = call.subscriber.read()
            yield get | ended
            if not get.triggered:
                get.cancel()
                return
            self.pc.receive(get.value, self.env.now)
            self.pump()

    def _timers(self, call):
        env = self.env
        while call.up:
            deadline = self.pc.next_deadline()
            waits = [self._wake, call.carrier_lost]
            if deadline is not None:
                waits.append(env.timeout(max(0.0, deadline - env.now)))
            yield env.any_of(waits)
            if self._wake.triggered:
                self._wake = env.event()
            if call.up and fire_due(self.pc, env.now):
                self.pump(from_timer=True)

    def pump(self, *, from_timer: bool = False) -> None:
        """Let the computer work; its frames go to the modem."""
        if self.pc is None or self.call is None or not self.call.up:
            return
        for chunk in self.pc.output(self.env.now):
            self.call.subscriber.write(chunk)
        if self.pc.status.up and not self.online:
            self.online = True
            self.log(self.env.now, "online", f"{self.pc.status.local_ip}")
            self.link_came_up()
            for chunk in self.pc.output(self.env.now):
                self.call.subscriber.write(chunk)
        self.after_pump()
        if not from_timer and not self._wake.triggered:
            self._wake.succeed()

    def hang_up(self) -> None:
        """Stop: hang up and do not redial."""
        self.stopped = True
        if self.call is not None and self.call.up:
            self.call.hangup("subscriber")
