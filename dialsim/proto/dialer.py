"""The subscriber's dialer talking to a real (or virtual) Hayes modem: V.250 from the DTE's side.

What a 1990s dialer (Trumpet Winsock's login script, pppd's ``chat``, the
Windows 95 Dial-Up Networking) sent down the serial port before the link came
up: an init string, ``ATDT<number>``, then the wait for a result code:

- ``CONNECT`` (with the rate and protocol the modem reports, e.g.
  ``CONNECT 28800/ARQ/V34/LAPM/V42BIS``): the line is up; any octets after the
  result code's line already belong to the link (PPP may start at once) and
  are handed over with :attr:`HayesDialer.leftover`;
- ``BUSY``, ``NO ANSWER``, ``NO DIALTONE``, ``NO CARRIER``, ``ERROR``, or no
  answer at all within the timeout: the dial failed, with that outcome.

Sans-IO, the project's machine shape: ``receive`` takes what the modem says,
``output`` what to type to it, ``next_deadline``/``on_timer`` the timeouts.
Verbose result codes are asked for (``ATV1`` in the setup string).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["DialOutcome", "HayesDialer", "parse_connect"]

_RESULT = re.compile(
    rb"(?:^|[\r\n])\s*(CONNECT(?: [^\r\n]*)?|BUSY|NO ANSWER|NO DIALTONE|NO DIAL TONE|NO CARRIER|"
    rb"ERROR|OK|RING)\s*\r?\n", re.MULTILINE)
_OUTCOMES = {b"BUSY": "busy", b"NO ANSWER": "no_answer", b"NO DIALTONE": "no_dialtone",
             b"NO DIAL TONE": "no_dialtone", b"NO CARRIER": "no_carrier", b"ERROR": "error"}


class Stage(StrEnum):
    INIT = "init"
    DIALING = "dialing"
    CONNECTED = "connected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DialOutcome:
    """How the dial ended: ``outcome`` "connect", "busy", "no_answer",
    "no_dialtone", "no_carrier", "error" or "timeout"; the rate the modem
    reported (bit/s, None if it said none) and its protocol text."""

    outcome: str
    rate_bps: float | None = None
    protocol: str = ""
    text: str = ""


def parse_connect(text: str) -> tuple[float | None, str]:
    """``"CONNECT 28800/ARQ/V34/LAPM/V42BIS"`` -> (28800.0, "ARQ/V34/LAPM/V42BIS")."""
    m = re.match(r"CONNECT\s*(\d+)?(?:/?(.*))?$", text.strip())
    if m is None:
        return None, ""
    rate = float(m.group(1)) if m.group(1) else None
    return rate, (m.group(2) or "").strip()


class HayesDialer:
    """Types the init string and the dial command; reads the result codes.

    ``init``: the init command (``ATZ``, or a modem's own string); ``number``:
    what follows ``ATD`` (``T5550123``, ``T*70,5550123``); ``init_timeout``
    and ``dial_timeout`` in seconds (the latter should exceed the modem's S7).
    """

    def __init__(self, number: str, *, now: float, init: str = "ATZ",
                 setup: str = "ATE0V1Q0X4", init_timeout: float = 5.0,
                 dial_timeout: float = 90.0) -> None:
        self.number = number
        self._commands = [c for c in (init, setup) if c]
        self.init_timeout = init_timeout
        self.dial_timeout = dial_timeout
        self.stage = Stage.INIT
        self.outcome: DialOutcome | None = None
        self.leftover = b""
        self._buf = b""
        self._out: list[bytes] = []
        self._deadline: float | None = None
        self._next_command(now)

    def _next_command(self, now: float) -> None:
        if self._commands:
            self._out.append(self._commands.pop(0).encode() + b"\r")
            self._deadline = now + self.init_timeout
        else:
            self.stage = Stage.DIALING
            self._out.append(b"ATD" + self.number.encode() + b"\r")
            self._deadline = now + self.dial_timeout

    def _finish(self, outcome: DialOutcome) -> None:
        self.outcome = outcome
        self.stage = Stage.CONNECTED if outcome.outcome == "connect" else Stage.FAILED
        self._deadline = None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def receive(self, data: bytes, now: float) -> None:
        if self.done:
            self.leftover += data
            return
        self._buf = (self._buf + data)[-8192:]
        while not self.done:
            m = _RESULT.search(self._buf)
            if m is None:
                return
            word = m.group(1).strip()
            rest = self._buf[m.end():]
            self._buf = rest
            self._result(word, rest, now)

    def _result(self, word: bytes, rest: bytes, now: float) -> None:
        if word.startswith(b"CONNECT"):
            if self.stage is Stage.DIALING:
                rate, proto = parse_connect(word.decode("latin-1"))
                self.leftover = rest
                self._buf = b""
                self._finish(DialOutcome("connect", rate, proto, word.decode("latin-1")))
        elif word == b"OK":
            if self.stage is Stage.INIT:
                self._next_command(now)
        elif word in _OUTCOMES and (self.stage is Stage.DIALING or word == b"ERROR"):
            self._finish(DialOutcome(_OUTCOMES[word], text=word.decode()))

    def output(self, now: float) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def events(self) -> list:
        return []

    def next_deadline(self) -> float | None:
        return self._deadline

    def on_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and not self.done:
            self._finish(DialOutcome("timeout", text=f"no answer from the modem in {self.stage}"))
