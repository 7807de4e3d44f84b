"""A tiny discrete-event loop joining two sans-IO :class:`NetStack` hosts.

Packets travel after ``delay`` seconds; a caller-chosen set of packet numbers
(counted in send order across both directions) is dropped, duplicated or held
back by ``reorder_delay`` (so later packets overtake it).  On top of those, each
packet is dropped, duplicated or held back by a random part of ``reorder_delay``
with the given rates, drawn from ``seed`` (three draws per packet, so a run is
repeatable).  Time only moves to the next packet arrival or stack deadline:
nothing sleeps.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from dialsim.proto.netstack import NetStack


@dataclass
class Impairments:
    drop: frozenset[int] = frozenset()
    duplicate: frozenset[int] = frozenset()
    reorder: frozenset[int] = frozenset()
    delay: float = 0.05
    reorder_delay: float = 0.3
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    seed: int = 0


@dataclass
class NetLoop:
    a: NetStack
    b: NetStack
    imp: Impairments = field(default_factory=Impairments)
    now: float = 0.0
    sent: int = 0
    log: list[tuple[float, str, bytes]] = field(default_factory=list)
    on_wake: Callable[[float], None] | None = None
    app_deadline: Callable[[], float | None] | None = None  # when on_wake wants to run next

    def __post_init__(self) -> None:
        self._heap: list[tuple[float, int, str, bytes]] = []
        self._n = 0
        self._rng = random.Random(self.imp.seed)

    def _collect(self) -> None:
        imp, rng = self.imp, self._rng
        for name, stack, other in (("a", self.a, "b"), ("b", self.b, "a")):
            for pkt in stack.output(self.now):
                i = self.sent
                self.sent += 1
                self.log.append((self.now, name, pkt))
                lose, twice, late = rng.random(), rng.random(), rng.random()
                if i in imp.drop or lose < imp.drop_rate:
                    continue
                t = self.now + imp.delay
                if i in imp.reorder:
                    t += imp.reorder_delay
                elif late < imp.reorder_rate:
                    t += imp.reorder_delay * late / imp.reorder_rate
                self._push(t, other, pkt)
                if i in imp.duplicate or twice < imp.duplicate_rate:
                    self._push(t + imp.delay / 2, other, pkt)

    def _push(self, t: float, dst: str, pkt: bytes) -> None:
        heapq.heappush(self._heap, (t, self._n, dst, pkt))
        self._n += 1

    def pump(self) -> None:
        """Run callbacks and collect output until nothing more is produced now."""
        for _ in range(100):
            if self.on_wake is not None:
                self.on_wake(self.now)
            before = self.sent
            self._collect()
            if self.sent == before:
                break

    def step(self) -> bool:
        """Advance to the next arrival or deadline; False when nothing is left."""
        self.pump()
        app = self.app_deadline() if self.app_deadline is not None else None
        times = [t for t in (self.a.next_deadline(), self.b.next_deadline(), app) if t is not None]
        if self._heap:
            times.append(self._heap[0][0])
        if not times:
            return False
        self.now = max(self.now, min(times))
        while self._heap and self._heap[0][0] <= self.now:
            _, _, dst, pkt = heapq.heappop(self._heap)
            (self.a if dst == "a" else self.b).receive(pkt, self.now)
        for stack in (self.a, self.b):
            d = stack.next_deadline()
            if d is not None and d <= self.now:
                stack.on_timer(self.now)
        self.pump()
        return True

    def run_until(self, cond: Callable[[], bool], limit: float = 3600.0) -> None:
        while not cond():
            if self.now > limit or not self.step():
                break

    def run(self, limit: float = 3600.0) -> None:
        while self.now <= limit and self.step():
            pass


def pair(
    seed: int = 1,
    *,
    mtu: int = 1500,
    tcp_options: dict | None = None,
    imp: Impairments | None = None,
) -> NetLoop:
    rng = random.Random(seed)
    a = NetStack("10.0.0.1", mtu=mtu, rng=random.Random(rng.getrandbits(64)), tcp_options=tcp_options)
    b = NetStack("10.0.0.2", mtu=mtu, rng=random.Random(rng.getrandbits(64)), tcp_options=tcp_options)
    return NetLoop(a, b, imp or Impairments())
