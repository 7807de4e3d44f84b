"""Test helper: a POP3 or SMTP server whose storage effects a store answers at
once, in the same instant -- what the simulation's scratch store does.

``Served(server, maildrops, delivery)`` forwards ``receive``, ``on_timer`` and
``connection_lost`` and answers every effect the server asks for through
:class:`dialsim.hosts.mailhost.MailStore`; ``events()`` returns the server's
other events.  :func:`drain` joins what a machine's ``output(now)`` hands out.
"""

from __future__ import annotations

from dialsim.hosts.endpoint import answer_effects
from dialsim.hosts.mailhost import MailStore


def drain(machine, now: float = 0.0) -> bytes:
    """Everything ``machine.output(now)`` hands out (called until it has no
    more), as one bytes."""
    chunks: list[bytes] = []
    while out := machine.output(now):
        chunks += out
    return b"".join(chunks)


class Served:
    def __init__(self, server, maildrops=None, delivery=None) -> None:
        self.server = server
        self.store = MailStore(maildrops, delivery)
        self._events: list = []

    def _settle(self, now: float) -> None:
        self._events += answer_effects(self.server, self.store.carry_out, now)

    def receive(self, data: bytes, now: float) -> None:
        self.server.receive(data, now)
        self._settle(now)

    def on_timer(self, now: float) -> None:
        self.server.on_timer(now)
        self._settle(now)

    def connection_lost(self, now: float) -> None:
        self.server.connection_lost(now)
        self._settle(now)

    def output(self, now: float = 0.0) -> list[bytes]:
        self._settle(now)
        return self.server.output(now)

    def events(self) -> list:
        self._settle(0.0)
        ev, self._events = self._events, []
        return ev

    def __getattr__(self, name: str):
        return getattr(self.server, name)
