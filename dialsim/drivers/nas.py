"""A NAS port whose modem comes and goes with each call.

The ISP's host keeps running between calls (its TCP timers and its POP3
server's autologout go on when the subscriber's carrier is gone, as they did on
a real terminal server), so the line host is driven on a :class:`SwitchedPort`:
while a call is up it relays the call's port; between calls writes are dropped
(no route to a subscriber that hung up) and reads wait for the next call.
"""

from __future__ import annotations

import simpy


class SwitchedPort:
    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._inbox = simpy.Store(env)
        self._port = None
        self._relay = None
        self.dropped_writes = 0
        self.dropped_octets = 0

    def attach(self, port) -> None:
        self.detach()
        self._port = port
        self._relay = self.env.process(self._pull(port))
        # Wake the line host (an empty chunk): a new call brings new output
        # (a login prompt, an LCP Configure-Request) and new deadlines.
        self._inbox.put(b"")

    def detach(self) -> None:
        if self._relay is not None and self._relay.is_alive:
            self._relay.interrupt("detach")
        self._relay = None
        self._port = None

    def _pull(self, port):
        ev = port.read()
        try:
            while True:
                data = yield ev
                yield self._inbox.put(data)
                ev = port.read()
        except simpy.Interrupt:
            cancel = getattr(ev, "cancel", None)
            if cancel is not None and not ev.triggered:
                cancel()

    def write(self, data: bytes) -> None:
        if self._port is None:
            self.dropped_writes += 1
            self.dropped_octets += len(data)
            return
        self._port.write(data)

    def read(self):
        return self._inbox.get()
