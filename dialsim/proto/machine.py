"""The one shape of every sans-IO machine and every line host.

A machine is fed the bytes of the layer below and the time, and hands back
the bytes for the layer below, events for the layer above, and the next time
it needs to be woken.  It never reads a clock: ``now`` is always an argument
(aioquic's ``get_timer``/``handle_timer``).  So the same machine runs in a
simpy process, on an asyncio loop and in a unit test that feeds it by hand,
and a driver needs no ``getattr`` probing:

- ``receive(data, now)``: input from the layer below (line octets for a
  framing, a datagram for an IP stack, a segment for a TCP connection, stream
  bytes for POP3 or SMTP).  A peer's garbage never raises: the machine answers
  as its RFC says, counts it and carries on.
- ``output(now) -> list[bytes]``: what to hand to the layer below, oldest
  first, in units that layer takes whole -- one frame per item for a framing
  (so the link model can time each), one datagram for a stack, one segment
  for TCP; a stream protocol may split its bytes anyway it likes.  Empty when
  there is nothing to send.
- ``events() -> list[Event]``: what happened since the last call, for the
  layer above; it only hands out what is queued and changes nothing else.
- ``next_deadline() -> float | None``: the earliest time the machine wants
  ``on_timer``; None when no timer runs.
- ``on_timer(now)``: called at or after the deadline; a call when nothing is
  due does nothing.

Machines offer more methods where their layer needs them (``send_ip``,
``connect``, ``open``, ``lower_up``, ...); these five are what every driver
relies on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from dialsim.proto.events import Event

__all__ = ["Machine", "earliest", "fire_due"]


@runtime_checkable
class Machine(Protocol):
    """The five methods of every protocol machine and line host."""

    def receive(self, data: bytes, now: float) -> None: ...

    def output(self, now: float) -> list[bytes]: ...

    def events(self) -> list[Event]: ...

    def next_deadline(self) -> float | None: ...

    def on_timer(self, now: float) -> None: ...


def earliest(deadlines: Iterable[float | None]) -> float | None:
    """The earliest of some deadlines, ignoring None (None if there is none)."""
    best: float | None = None
    for d in deadlines:
        if d is not None and (best is None or d < best):
            best = d
    return best


def fire_due(machine: Machine, now: float) -> bool:
    """Call ``machine.on_timer(now)`` if its deadline has come; True if it was called."""
    d = machine.next_deadline()
    if d is not None and d <= now:
        machine.on_timer(now)
        return True
    return False
