"""A virtual Hayes-compatible modem, sans-IO (ITU-T V.250 and the Hayes Smartmodem command set).

Scope: the modem between a DTE (the computer's serial port) and a telephone
line, as one :class:`~dialsim.proto.machine.Machine`:

- the DTE side is ``receive(data, now)`` (octets the computer wrote) and
  ``output(now)`` (octets for the computer: echo, information text, result
  codes and, in online data state, what came from the line);
- the line side is ``line_receive(data, now)`` (octets from the remote modem)
  and ``line_output(now)`` (octets the computer sent for the line);
- call progress comes in as methods called by the driver (:meth:`ring`,
  :meth:`connected`, :meth:`busy`, :meth:`no_answer`, :meth:`no_dialtone`,
  :meth:`carrier_lost`, :meth:`carrier_restored`, :meth:`set_dtr`) and goes out
  as :class:`~dialsim.proto.events.ModemEvent` subclasses (:class:`DialRequested`,
  :class:`AnswerRequested`, :class:`HangupRequested`, :class:`ResultCodeIssued`,
  :class:`ControlLinesChanged`);
- ``next_deadline()``/``on_timer(now)`` run S7 (wait for carrier), S10 (lost
  carrier hang-up delay), the S12 escape guard time, the RI cadence and the S1
  ring counter's reset.

The states are V.250's: command state (on hook), dialing or answering (off
hook, waiting for carrier), online data state and online command state.
Commands: the V.250 basic set with the Hayes extensions a 1990s init string
uses (``E Q V X H A D O Z S I T P L M B N W Y &C &D &F &S &V &W &Y &K &G &R
\\N \\Q \\V %C`` and ``+FCLASS +GMI +GMM +GMR +GCAP``), several per line,
``A/``, S5 editing and the ``+++`` escape with its guard time.
``docs/hayes.md`` has the tables, and where tcpser and Altirra differ, which
behaviour we chose.

Nothing here reads a clock: every input takes ``now`` in seconds, and an
input first runs any timer already due, so a driver that feeds octets late
sees the same result as one that woke on time.  Garbage from the DTE never
raises: a bad command line gets ERROR.  Online data is passed on in the
chunks it came in, with no per-octet loop; only the three escape characters
of a recognised ``+++`` are kept off the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from dialsim.proto.events import ModemEvent

__all__ = [
    "BUSY",
    "CONNECT",
    "CONNECT_CODES",
    "ERROR",
    "MAX_COMMAND_LINE",
    "NO_ANSWER",
    "NO_CARRIER",
    "NO_DIALTONE",
    "OK",
    "REGISTERS",
    "RESULT_TEXT",
    "RING",
    "AnswerRequested",
    "ControlLinesChanged",
    "DialRequested",
    "HangupRequested",
    "HayesModem",
    "ModemState",
    "ResultCodeIssued",
]

# ---------------------------------------------------------------------------
# Result codes (V.250 Table 1; the numbers are the Hayes Smartmodem's).

OK = 0
CONNECT = 1
RING = 2
NO_CARRIER = 3
ERROR = 4
NO_DIALTONE = 6
BUSY = 7
NO_ANSWER = 8

RESULT_TEXT: dict[int, str] = {
    OK: "OK",
    CONNECT: "CONNECT",
    RING: "RING",
    NO_CARRIER: "NO CARRIER",
    ERROR: "ERROR",
    NO_DIALTONE: "NO DIALTONE",
    BUSY: "BUSY",
    NO_ANSWER: "NO ANSWER",
}

# Numeric codes of "CONNECT <rate>" (X1..X4, V0): the Hayes codes up to 19200
# and the Rockwell/Conexant codes of the V.32terbo/V.34 rates, the table most
# 1990s modems and tcpser share.  A rate missing here is reported as code 1.
CONNECT_CODES: dict[int, int] = {
    600: 9,
    1200: 5,
    2400: 10,
    4800: 11,
    7200: 13,
    9600: 12,
    12000: 14,
    14400: 15,
    16800: 59,
    19200: 16,
    21600: 61,
    24000: 62,
    26400: 63,
    28800: 64,
    31200: 91,
    33600: 84,
    38400: 17,
    57600: 18,
    115200: 19,
}

# S-registers: number -> (lowest, highest, factory value).  Units: S0/S1 rings;
# S2..S5 characters; S6, S7, S8 seconds; S9, S10 tenths of a second; S11
# milliseconds; S12 fiftieths of a second.
REGISTERS: dict[int, tuple[int, int, int]] = {
    0: (0, 255, 0),  # rings before auto-answer (0: never)
    1: (0, 255, 0),  # rings counted so far
    2: (0, 255, 43),  # escape character "+" (above 127: no escape)
    3: (0, 127, 13),  # command line terminator CR
    4: (0, 127, 10),  # response formatting character LF
    5: (0, 127, 8),  # command line editing character BS
    6: (2, 255, 2),  # wait before blind dialing
    7: (1, 255, 50),  # wait for carrier after dialing or answering
    8: (0, 255, 2),  # pause of the "," dial modifier
    9: (1, 255, 6),  # carrier detect response time
    10: (1, 255, 14),  # lost carrier to hang-up delay (255: never hang up)
    11: (50, 255, 95),  # DTMF tone duration
    12: (0, 255, 50),  # escape guard time (0: no escape)
}

MAX_COMMAND_LINE = 255  # characters after "AT" (V.250 asks for at least 40)

# Options set by a command and a number: name -> (values accepted, factory value).
# E Q V X &C &D &S \V and P (pulse dialing, set by T and P) change behaviour;
# the others are accepted and shown by &V so that init strings work.
_OPTIONS: dict[str, tuple[tuple[int, ...], int]] = {
    "B": ((0, 1), 0),
    "E": ((0, 1), 1),
    "L": ((0, 1, 2, 3), 2),
    "M": ((0, 1, 2, 3), 1),
    "N": ((0, 1), 1),
    "P": ((0, 1), 0),
    "Q": ((0, 1), 0),
    "V": ((0, 1), 1),
    "W": ((0, 1, 2), 0),
    "X": ((0, 1, 2, 3, 4), 4),
    "Y": ((0, 1), 0),
    "&C": ((0, 1), 1),
    "&D": ((0, 1, 2, 3), 2),
    "&G": ((0, 1, 2), 0),
    "&K": ((0, 3, 4, 5, 6), 3),
    "&R": ((0, 1), 1),
    "&S": ((0, 1), 0),
    "\\N": ((0, 1, 2, 3, 4, 5, 6, 7), 3),
    "\\Q": ((0, 1, 2, 3), 3),
    "\\V": ((0, 1), 1),
    "%C": ((0, 1, 2, 3), 1),
}

_RING_ON_S = 2.0  # RI stays on this long per ring (North American cadence: 2 s on, 4 s off)
_RING_COUNT_RESET_S = 8.0  # S1 clears after this long without a ring (Hayes)

# Dial strings made only of these are telephone numbers; anything else
# (host:port, a name) goes to the driver verbatim.
_PHONE = re.compile(r"[0-9*#A-Da-d,WwTtPp!@ ()\-]*\Z")
_NOT_DIGIT = re.compile(r"[^0-9*#ABCD]")
_A = re.compile(rb"[Aa]")
_STRIP_PARITY = bytes(i & 0x7F for i in range(256))
_CONTROLS = bytes(range(32)) + b"\x7f"


class ModemState(StrEnum):
    """V.250's states of a DCE, with the off-hook wait for carrier split in two."""

    COMMAND = "command"  # command state, no call
    DIALING = "dialing"  # ATD given, waiting for the line's call progress
    ANSWERING = "answering"  # ATA or auto-answer, waiting for carrier
    ONLINE_DATA = "online_data"  # connected, DTE octets go to the line
    ONLINE_COMMAND = "online_command"  # connected, DTE octets are commands


_IN_CALL = (ModemState.ONLINE_DATA, ModemState.ONLINE_COMMAND)
_WAITING = (ModemState.DIALING, ModemState.ANSWERING)

# ---------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class DialRequested(ModemEvent):
    """ATD: place a call.

    ``number``: for a telephone number, its digits as the network sees them
    (``0-9 * # A-D``; modifiers and punctuation dropped, "" for a bare ATD);
    for anything else (``127.0.0.1:2323``, a host name) the dial string
    verbatim.  ``method``: "tone" or "pulse".  ``dial_string``: what followed
    ``ATD`` (and its T/P), spaces at the ends removed.  ``pause_s``: the ","
    pauses it holds (S8 each), already counted in the S7 wait.
    """

    number: str
    method: str
    dial_string: str
    pause_s: float
    now: float


@dataclass(frozen=True, slots=True)
class AnswerRequested(ModemEvent):
    """ATA or auto-answer (S0): take the incoming call and train."""

    now: float


@dataclass(frozen=True, slots=True)
class HangupRequested(ModemEvent):
    """The modem went on hook by its own decision; release the line.

    ``reason``: "command" (ATH, ATZ), "dtr" (&D2/&D3), "no_carrier" (S7 ran
    out), "aborted" (a DTE character during dialing or answering) or
    "carrier_lost" (S10 ran out after :meth:`HayesModem.carrier_lost`).
    """

    reason: str
    now: float


@dataclass(frozen=True, slots=True)
class ResultCodeIssued(ModemEvent):
    """A result code, emitted whether or not Q1 kept it from the DTE."""

    code: int
    text: str
    now: float


@dataclass(frozen=True, slots=True)
class ControlLinesChanged(ModemEvent):
    """One of the modem's control circuits to the DTE changed (V.24 109, 107, 106, 125)."""

    dcd: bool
    dsr: bool
    cts: bool
    ri: bool
    now: float


# ---------------------------------------------------------------------------


class _Cursor:
    """A command line being executed, read left to right."""

    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def done(self) -> bool:
        self.skip_spaces()
        return self.pos >= len(self.text)

    def take(self) -> str:
        """The next character, upper-cased ("" at the end)."""
        self.skip_spaces()
        if self.pos >= len(self.text):
            return ""
        self.pos += 1
        return self.text[self.pos - 1].upper()

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.pos].upper() if self.pos < len(self.text) else ""

    def number(self) -> int | None:
        """A decimal number (None if there is none; V.250: a missing one means 0)."""
        self.skip_spaces()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isdigit():
            self.pos += 1
        if self.pos == start:
            return None
        return int(self.text[start : self.pos])

    def rest(self) -> str:
        text = self.text[self.pos :]
        self.pos = len(self.text)
        return text


class _Stop(Exception):
    """Ends the execution of a command line (ERROR, or a command that ends the line)."""

    def __init__(self, error: bool) -> None:
        self.error = error


def _factory_options() -> dict[str, int]:
    return {name: default for name, (_, default) in _OPTIONS.items()}


class HayesModem:
    """A Hayes-compatible modem between a DTE and a line; see the module docstring.

    ``identity``: the information text of ATI0..ATI9 (a missing one gives just
    OK).  ``manufacturer``, ``model``, ``revision``: for +GMI, +GMM, +GMR.
    ``connect_format``: the CONNECT text when the driver gave a protocol and
    \\V1 is on; fields ``{rate}`` (bit/s, whole) and ``{protocol}``.
    ``registers``: factory values of S-registers that differ from
    :data:`REGISTERS` (e.g. S7 from a scenario).  ``dtr``: the DTE's DTR at
    start.
    """

    def __init__(
        self,
        *,
        identity: Mapping[int, str] | None = None,
        manufacturer: str = "dialsim",
        model: str = "virtual Hayes-compatible modem",
        revision: str = "1",
        connect_format: str = "CONNECT {rate}/{protocol}",
        registers: Mapping[int, int] | None = None,
        dtr: bool = True,
    ) -> None:
        connect_format.format(rate=28800, protocol="ARQ")  # fail early on a bad template
        self.identity = dict(identity) if identity is not None else {0: "DIALSIM", 3: model}
        self.manufacturer = manufacturer
        self.model = model
        self.revision = revision
        self.connect_format = connect_format
        self._factory_regs = [default for (_, _, default) in REGISTERS.values()]
        for n, value in (registers or {}).items():
            lo, hi, _ = REGISTERS[n]
            if not lo <= value <= hi:
                raise ValueError(f"S{n}={value} is out of range {lo}..{hi}")
            self._factory_regs[n] = value
        self._opts = _factory_options()
        self._regs = list(self._factory_regs)
        self._stored = (dict(self._opts), list(self._regs))  # &W / ATZ profile
        self._state = ModemState.COMMAND
        self._dtr = dtr
        self._off_hook = False  # ATH1, or a dial string ended by ";"
        self._carrier = False
        self._ri = False
        self._rate = 0.0
        self._protocol = ""
        self._dial_prefix = ""  # digits of dial strings ended by ";"
        self._last_dial: tuple[str, str] | None = None  # (method, dial string) for ATDL
        self._last_line = ""  # for A/
        self._selected_register = 0  # ATSn without = or ?
        self._line: bytearray | None = None  # the command line being typed (after AT)
        self._line_overflow = False
        self._saw_a = False  # the previous chunk ended with "A"
        self._held = b""  # escape characters held back while a +++ may be forming
        self._last_dte = 0.0  # when the DTE last sent octets in online data state
        self._line_held: list[bytes] = []  # line data received in online command state
        self._timers: dict[str, float] = {}
        self._to_dte: list[bytes] = []
        self._to_line: list[bytes] = []
        self._events: list[ModemEvent] = []
        self._lines = self._control_lines()
        self.octets_to_line = 0
        self.octets_to_dte = 0
        self.octets_discarded = 0  # line data that arrived with no call up
        self.commands_rejected = 0  # command lines answered ERROR

    # ------------------------------------------------------------------
    # The Machine protocol

    def receive(self, data: bytes, now: float) -> None:
        """Octets from the DTE: command lines, or data for the line in online data state."""
        self._catch_up(now)
        if not isinstance(data, bytes):
            data = bytes(data)
        pos = 0
        n = len(data)
        masked = b""
        while pos < n:
            state = self._state
            if state is ModemState.ONLINE_DATA:
                self._online_input(data[pos:] if pos else data, now)
                break
            if state in _WAITING:
                pos = self._abort_input(data, pos, now)
                continue
            if not masked:
                masked = data.translate(_STRIP_PARITY)
            pos = self._command_input(data, masked, pos, now)
        self._update_lines(now)

    def output(self, now: float) -> list[bytes]:
        """Octets for the DTE, oldest first."""
        out, self._to_dte = self._to_dte, []
        return out

    def line_output(self, now: float) -> list[bytes]:
        """Octets the DTE sent for the line, oldest first, in the chunks it wrote them."""
        out, self._to_line = self._to_line, []
        return out

    def events(self) -> list[ModemEvent]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float | None:
        return min(self._timers.values()) if self._timers else None

    def on_timer(self, now: float) -> None:
        while True:
            due = [(t, name) for name, t in self._timers.items() if t <= now]
            if not due:
                break
            _, name = min(due)
            del self._timers[name]
            self._fire(name, now)
        self._update_lines(now)

    # ------------------------------------------------------------------
    # Inputs from the driver: the line and the DTE's control circuits

    def line_receive(self, data: bytes, now: float) -> None:
        """Octets from the remote modem.

        In online data state they go to the DTE; in online command state they
        are held and delivered after ATO (as tcpser leaves them unread in its
        socket); with no call up they are discarded and counted.
        """
        self._catch_up(now)
        if not data:
            return
        if self._state is ModemState.ONLINE_DATA:
            self._send_dte(data)
        elif self._state is ModemState.ONLINE_COMMAND:
            self._line_held.append(bytes(data))
        else:
            self.octets_discarded += len(data)

    def ring(self, now: float) -> None:
        """An incoming ring.  Ignored while the modem is off hook (the caller hears busy)."""
        self._catch_up(now)
        if self._state is not ModemState.COMMAND or self._off_hook:
            return
        self._regs[1] = min(255, self._regs[1] + 1)
        self._ri = True
        self._timers["ri_off"] = now + _RING_ON_S
        self._timers["ring_count"] = now + _RING_COUNT_RESET_S
        self._result(RING, now)
        s0 = self._regs[0]
        dtr_allows = self._dtr or self._opts["&D"] < 2  # V.250 &D2: no auto-answer while DTR is off
        if s0 and self._regs[1] >= s0 and dtr_allows:
            self._answer(now)
        self._update_lines(now)

    def connected(self, rate_bps: float, now: float, protocol: str = "") -> None:
        """The handshake succeeded: CONNECT at ``rate_bps`` with ``protocol``
        (e.g. "ARQ/V34/LAPM/V42BIS"; "" for none).  Ignored unless dialing or answering."""
        self._catch_up(now)
        if self._state not in _WAITING:
            return
        self._timers.pop("carrier_wait", None)
        self._state = ModemState.ONLINE_DATA
        self._carrier = True
        self._off_hook = True
        self._rate = float(rate_bps)
        self._protocol = protocol
        self._last_dte = now
        self._connect_result(now)
        self._update_lines(now)

    def busy(self, now: float) -> None:
        """The number dialed is busy: BUSY with X3/X4, else NO CARRIER."""
        self._call_failed(BUSY if self._opts["X"] in (3, 4) else NO_CARRIER, now)

    def no_answer(self, now: float) -> None:
        """Ringback went on until the far end gave up: NO ANSWER with X3/X4, else NO CARRIER."""
        self._call_failed(NO_ANSWER if self._opts["X"] in (3, 4) else NO_CARRIER, now)

    def no_dialtone(self, now: float) -> None:
        """No dial tone: NO DIALTONE with X2/X4, else NO CARRIER."""
        self._call_failed(NO_DIALTONE if self._opts["X"] in (2, 4) else NO_CARRIER, now)

    def carrier_lost(self, now: float) -> None:
        """The carrier went away.

        While dialing or answering the call failed: NO CARRIER at once.  In a
        call DCD drops now (with &C1) and the modem hangs up with NO CARRIER
        after S10 tenths of a second unless :meth:`carrier_restored` comes
        first (S10=255: it never hangs up by itself).
        """
        self._catch_up(now)
        if self._state in _WAITING:
            self._call_failed(NO_CARRIER, now)
            return
        if self._state not in _IN_CALL or not self._carrier:
            return
        self._carrier = False
        if self._regs[10] != 255:
            self._timers["carrier_loss"] = now + self._regs[10] / 10.0
        self._update_lines(now)

    def carrier_restored(self, now: float) -> None:
        """The carrier came back within S10: the call goes on."""
        self._catch_up(now)
        if self._state in _IN_CALL and not self._carrier:
            self._carrier = True
            self._timers.pop("carrier_loss", None)
            self._update_lines(now)

    def set_dtr(self, on: bool, now: float) -> None:
        """The DTE raised or dropped DTR (V.24 circuit 108/2); a drop acts as &D says."""
        self._catch_up(now)
        was, self._dtr = self._dtr, bool(on)
        if not was or on:
            return
        mode = self._opts["&D"]
        if mode == 1 and self._state is ModemState.ONLINE_DATA:
            self._enter_online_command(now)
        elif mode >= 2:
            self._hang_up(now, NO_CARRIER, "dtr")
            if mode == 3:  # Hayes &D3: and reset, as ATZ does
                self._restore_stored()
        self._update_lines(now)

    # ------------------------------------------------------------------
    # What the driver may read

    @property
    def state(self) -> ModemState:
        return self._state

    @property
    def dcd(self) -> bool:
        """Data carrier detect: the carrier with &C1, always on with &C0."""
        return self._lines[0]

    @property
    def dsr(self) -> bool:
        """Data set ready: always on with &S0, on during a call with &S1."""
        return self._lines[1]

    @property
    def cts(self) -> bool:
        """Clear to send: always on (no flow control is modelled)."""
        return self._lines[2]

    @property
    def ri(self) -> bool:
        """Ring indicator: on for two seconds per ring."""
        return self._lines[3]

    @property
    def dtr(self) -> bool:
        return self._dtr

    @property
    def off_hook(self) -> bool:
        """The line is seized: dialing, answering, in a call, ATH1, or after ``ATD...;``."""
        return self._off_hook or self._state is not ModemState.COMMAND

    @property
    def carrier(self) -> bool:
        return self._carrier

    @property
    def connect_rate_bps(self) -> float:
        return self._rate

    @property
    def protocol(self) -> str:
        return self._protocol

    def s_register(self, n: int) -> int:
        """The current value of S-register ``n`` (KeyError if there is none)."""
        if n not in REGISTERS:
            raise KeyError(f"no S-register {n}")
        return self._regs[n]

    def option(self, name: str) -> int:
        """The current value of an option command ("E", "X", "&C", "\\V", ...)."""
        return self._opts[name]

    # ------------------------------------------------------------------
    # Timers

    def _catch_up(self, now: float) -> None:
        if self._timers and min(self._timers.values()) <= now:
            self.on_timer(now)

    def _fire(self, name: str, now: float) -> None:
        if name == "escape":
            if self._state is ModemState.ONLINE_DATA and len(self._held) == 3:
                self._held = b""
                self._enter_online_command(now)
            else:
                self._release_held()
        elif name == "carrier_wait":
            if self._state in _WAITING:
                self._hang_up(now, NO_CARRIER, "no_carrier")
        elif name == "carrier_loss":
            if self._state in _IN_CALL and not self._carrier:
                self._hang_up(now, NO_CARRIER, "carrier_lost")
        elif name == "ri_off":
            self._ri = False
        elif name == "ring_count":
            self._regs[1] = 0

    # ------------------------------------------------------------------
    # Online data state

    def _online_input(self, data: bytes, now: float) -> None:
        esc = self._regs[2]
        guard = self._regs[12] / 50.0
        escapable = esc < 128 and guard > 0 and len(self._held) + len(data) <= 3
        if escapable and data.count(esc) == len(data):
            if self._held or now - self._last_dte >= guard:
                # Silence before the first one, each within the guard time of the
                # previous: hold them until the guard time after tells.
                self._held += data
                self._last_dte = now
                self._timers["escape"] = now + guard
                return
        if self._held:
            data = self._held + data
            self._held = b""
            self._timers.pop("escape", None)
        self._last_dte = now
        self._to_line.append(bytes(data))
        self.octets_to_line += len(data)

    def _release_held(self) -> None:
        """Escape characters that did not make an escape are data after all."""
        self._timers.pop("escape", None)
        if self._held:
            self._to_line.append(self._held)
            self.octets_to_line += len(self._held)
            self._held = b""

    def _enter_online_command(self, now: float) -> None:
        self._release_held()
        self._state = ModemState.ONLINE_COMMAND
        self._line = None
        self._saw_a = False
        self._result(OK, now)

    # ------------------------------------------------------------------
    # Dialing and answering: any DTE character aborts (V.250 6.3.1)

    def _abort_input(self, data: bytes, pos: int, now: float) -> int:
        lf = self._regs[4]
        n = len(data)
        while pos < n and data[pos] == lf:  # the LF of a DTE that ends lines with CR LF
            pos += 1
        if pos < n:
            self._hang_up(now, NO_CARRIER, "aborted")
            pos += 1
        return pos

    # ------------------------------------------------------------------
    # Command state: find "AT" or "A/", collect the line, execute it

    def _command_input(self, data: bytes, masked: bytes, pos: int, now: float) -> int:
        """Consume command-state input from ``pos``; stop at the end or when the state changes."""
        n = len(data)
        while pos < n and self._state not in _WAITING and self._state is not ModemState.ONLINE_DATA:
            if self._line is None:
                pos = self._hunt_prefix(data, masked, pos, now)
            else:
                pos = self._collect_line(data, masked, pos, now)
        return pos

    def _hunt_prefix(self, data: bytes, masked: bytes, pos: int, now: float) -> int:
        if self._saw_a:
            self._saw_a = False
            if self._after_a(data, masked, pos, pos, now):
                return pos + 1
        m = _A.search(masked, pos)
        if m is None:
            self._echo(data[pos:])
            return len(data)
        i = m.start()
        if i + 1 == len(data):
            self._echo(data[pos:])
            self._saw_a = True
            return len(data)
        if self._after_a(data, masked, pos, i + 1, now):
            return i + 2
        self._echo(data[pos : i + 1])
        return i + 1

    def _after_a(self, data: bytes, masked: bytes, start: int, i: int, now: float) -> bool:
        """Whether the character at ``i``, after an "A", makes a prefix; act on it if so."""
        c = masked[i]
        if c in (0x54, 0x74):  # T t
            self._echo(data[start : i + 1])
            self._line = bytearray()
            self._line_overflow = False
            return True
        if c == 0x2F:  # "/": repeat the last command line at once
            self._echo(data[start : i + 1])
            self._execute(self._last_line, now)
            return True
        return False

    def _collect_line(self, data: bytes, masked: bytes, pos: int, now: float) -> int:
        assert self._line is not None
        end = masked.find(self._regs[3], pos)
        stop = end if end >= 0 else len(data)
        self._add_to_line(data, masked, pos, stop)
        if end < 0:
            return stop
        self._echo(data[end : end + 1])
        line = self._line.decode("latin-1")
        overflow = self._line_overflow
        self._line = None
        self._last_line = line
        if overflow:
            self.commands_rejected += 1
            self._result(ERROR, now)
        else:
            self._execute(line, now)
        return end + 1

    def _add_to_line(self, data: bytes, masked: bytes, start: int, stop: int) -> None:
        """Append typed characters to the command line: controls dropped, S5 edits."""
        assert self._line is not None
        seg = masked[start:stop]
        bs = self._regs[5]
        if bs not in seg:
            self._echo(data[start:stop])
            self._append(seg.translate(None, _CONTROLS))
            return
        for k, c in enumerate(seg):
            if c == bs:
                if self._line:
                    self._line.pop()
                    self._echo(bytes((data[start + k], 0x20, data[start + k])))
            elif c not in _CONTROLS:
                self._append(bytes((c,)))
                self._echo(data[start + k : start + k + 1])
            else:
                self._echo(data[start + k : start + k + 1])

    def _append(self, chars: bytes) -> None:
        assert self._line is not None
        room = MAX_COMMAND_LINE - len(self._line)
        if len(chars) > room:
            self._line_overflow = True
            chars = chars[:room]
        self._line += chars

    # ------------------------------------------------------------------
    # Executing a command line (V.250 5.6: in order; the first error ends it)

    def _execute(self, line: str, now: float) -> None:
        cur = _Cursor(line)
        try:
            while not cur.done():
                self._command(cur, now)
        except _Stop as stop:
            if stop.error:
                self.commands_rejected += 1
                self._result(ERROR, now)
        else:
            self._result(OK, now)
        self._update_lines(now)

    def _command(self, cur: _Cursor, now: float) -> None:
        name = cur.take()
        if name in ("&", "\\", "%"):
            name += cur.take()
        if name == "+":
            self._extended(cur)
            return
        if name == "D":
            self._dial(cur, now)
            return
        if name in ("S", "?", "="):
            self._register_command(name, cur)
            return
        arg = cur.number()
        if name in _ACTIONS:
            _ACTIONS[name](self, arg or 0, now)
            return
        if name in ("T", "P") and arg is None:
            self._opts["P"] = int(name == "P")
            return
        if name not in _OPTIONS or name == "P":
            raise _Stop(error=True)
        value = arg or 0
        if value not in _OPTIONS[name][0]:
            raise _Stop(error=True)
        self._opts[name] = value

    def _register_command(self, name: str, cur: _Cursor) -> None:
        """ATSn=v, ATSn?, ATSn (selects n), then AT? and AT=v on the selected one (Hayes)."""
        if name == "S":
            n = cur.number() or 0
            if n not in REGISTERS:
                raise _Stop(error=True)
            self._selected_register = n
            name = cur.peek() if cur.peek() in ("?", "=") else ""
            if name:
                cur.take()
        n = self._selected_register
        if name == "?":
            self._info([f"{self._regs[n]:03d}"])
        elif name == "=":
            value = cur.number() or 0
            lo, hi, _ = REGISTERS[n]
            if not lo <= value <= hi:
                raise _Stop(error=True)
            self._regs[n] = value

    def _extended(self, cur: _Cursor) -> None:
        """V.250 extended syntax, the few a dialer's init string uses."""
        start = cur.pos
        while cur.pos < len(cur.text) and (cur.text[cur.pos].isalnum()):
            cur.pos += 1
        name = cur.text[start : cur.pos].upper()
        form = ""
        if cur.peek() == "?":
            cur.take()
            form = "?"
        elif cur.peek() == "=":
            cur.take()
            form = "=?" if cur.peek() == "?" else "="
            if form == "=?":
                cur.take()
        value = cur.number() if form == "=" else None
        if cur.peek() == ";":
            cur.take()
        texts = {
            "GMI": self.manufacturer,
            "GMM": self.model,
            "GMR": self.revision,
            "GCAP": "+GCAP: +FCLASS",
        }
        if name in texts and form in ("", "=?"):
            if form == "":
                self._info([texts[name]])
        elif name == "FCLASS" and (form in ("?", "=?") or (form == "=" and value in (0, None))):
            if form in ("?", "=?"):
                self._info(["0"])
        else:
            raise _Stop(error=True)

    def _dial(self, cur: _Cursor, now: float) -> None:
        """ATD[T|P]<dial string>[;]: the rest of the line is the dial string."""
        if self._state is not ModemState.COMMAND:  # V.250: no dialing in online command state
            raise _Stop(error=True)
        text = cur.rest().strip()
        method = "pulse" if self._opts["P"] else "tone"
        if text[:1] in ("T", "t", "P", "p"):
            method = "pulse" if text[0] in "Pp" else "tone"
            text = text[1:].strip()
        semicolon = text.find(";")
        if semicolon >= 0:
            cur.text, cur.pos = text[semicolon + 1 :], 0  # further commands follow ";"
            text = text[:semicolon].strip()
        if text.upper() == "L":
            if self._last_dial is None:
                raise _Stop(error=True)
            method, text = self._last_dial
        if semicolon >= 0:
            self._dial_prefix += text
            self._off_hook = True
            return
        text, self._dial_prefix = self._dial_prefix + text, ""
        self._last_dial = (method, text)
        self._place_call(method, text, now)
        raise _Stop(error=False)

    def _place_call(self, method: str, text: str, now: float) -> None:
        if _PHONE.match(text):
            number = _NOT_DIGIT.sub("", text.upper())
            last = max(text.upper().rfind("T"), text.upper().rfind("P"))
            if last >= 0:
                method = "pulse" if text[last] in "Pp" else "tone"
            pause = text.count(",") * float(self._regs[8])
        else:
            number = text
            pause = 0.0
        self._state = ModemState.DIALING
        self._off_hook = True
        self._timers["carrier_wait"] = now + pause + self._regs[7]
        self._events.append(DialRequested(number, method, text, pause, now))

    def _cmd_answer(self, arg: int, now: float) -> None:
        if self._state is not ModemState.COMMAND or arg:  # V.250 Table 9: ERROR when online
            raise _Stop(error=True)
        self._answer(now)
        raise _Stop(error=False)

    def _answer(self, now: float) -> None:
        self._state = ModemState.ANSWERING
        self._off_hook = True
        self._ri = False
        self._regs[1] = 0
        self._timers.pop("ri_off", None)
        self._timers.pop("ring_count", None)
        self._timers["carrier_wait"] = now + self._regs[7]
        self._events.append(AnswerRequested(now))

    def _cmd_hook(self, arg: int, now: float) -> None:
        if arg > 1:
            raise _Stop(error=True)
        if arg == 0:
            self._hang_up(now, None, "command")
        elif self._state is ModemState.COMMAND:
            self._off_hook = True

    def _cmd_online(self, arg: int, now: float) -> None:
        if arg > 1 or self._state is not ModemState.ONLINE_COMMAND:
            raise _Stop(error=True)
        self._state = ModemState.ONLINE_DATA
        self._last_dte = now
        self._connect_result(now)
        for chunk in self._line_held:
            self._send_dte(chunk)
        self._line_held = []
        raise _Stop(error=False)

    def _cmd_reset(self, arg: int, now: float) -> None:
        if arg > 1:
            raise _Stop(error=True)
        self._hang_up(now, None, "command")
        self._restore_stored()
        self._result(OK, now)
        raise _Stop(error=False)  # commands after Z are ignored (as the USR and Hayes manuals say)

    def _cmd_factory(self, arg: int, now: float) -> None:
        if arg > 2:
            raise _Stop(error=True)
        self._opts = _factory_options()
        self._regs[:] = self._factory_regs

    def _cmd_store(self, arg: int, now: float) -> None:
        if arg > 1:
            raise _Stop(error=True)
        self._stored = (dict(self._opts), list(self._regs))

    def _cmd_power_up_profile(self, arg: int, now: float) -> None:
        if arg > 0:
            raise _Stop(error=True)

    def _cmd_identify(self, arg: int, now: float) -> None:
        if arg > 9:
            raise _Stop(error=True)
        text = self.identity.get(arg)
        if text is not None:
            self._info(text.split("\n"))

    def _cmd_view(self, arg: int, now: float) -> None:
        if arg > 0:
            raise _Stop(error=True)
        lines = ["ACTIVE PROFILE:", *_profile_text(self._opts, self._regs), ""]
        lines += ["STORED PROFILE 0:", *_profile_text(*self._stored)]
        self._info(lines)

    def _restore_stored(self) -> None:
        opts, regs = self._stored
        self._opts = dict(opts)
        self._regs[:] = regs

    # ------------------------------------------------------------------
    # Going on hook, results, output

    def _call_failed(self, code: int, now: float) -> None:
        """The line reports a failed call while dialing or answering."""
        self._catch_up(now)
        if self._state in _WAITING:
            self._hang_up(now, code, None)
            self._update_lines(now)

    def _hang_up(self, now: float, code: int | None, reason: str | None) -> None:
        """Go on hook.  With no call (only ATH1 or ``ATD...;``) it is silent:
        no result code and no :class:`HangupRequested`."""
        if self._state is ModemState.COMMAND:
            self._off_hook = False
            self._dial_prefix = ""
            return
        if self._state is ModemState.ONLINE_DATA:
            self._release_held()
        self.octets_discarded += sum(len(c) for c in self._line_held)
        self._state = ModemState.COMMAND
        self._off_hook = False
        self._carrier = False
        self._dial_prefix = ""
        self._line_held = []
        self._line = None
        self._saw_a = False
        for name in ("escape", "carrier_wait", "carrier_loss"):
            self._timers.pop(name, None)
        if reason is not None:
            self._events.append(HangupRequested(reason, now))
        if code is not None:
            self._result(code, now)

    def _connect_result(self, now: float) -> None:
        if self._opts["X"] == 0:
            self._result(CONNECT, now)
            return
        rate = int(self._rate)
        text = f"CONNECT {rate}"
        if self._protocol and self._opts["\\V"]:
            text = self.connect_format.format(rate=rate, protocol=self._protocol)
        self._result(CONNECT_CODES.get(rate, CONNECT), now, text)

    def _result(self, code: int, now: float, text: str | None = None) -> None:
        """A result code as V.250 6.2.6 formats it: V1 CR LF text CR LF, V0 digits CR."""
        text = text or RESULT_TEXT[code]
        self._events.append(ResultCodeIssued(code, text, now))
        if self._opts["Q"]:
            return
        cr, lf = chr(self._regs[3]), chr(self._regs[4])
        frame = f"{cr}{lf}{text}{cr}{lf}" if self._opts["V"] else f"{code}{cr}"
        self._send_dte(frame.encode("latin-1", "replace"))

    def _info(self, lines: list[str]) -> None:
        """Information text (V.250 5.7.1): V1 CR LF text CR LF, V0 text CR LF."""
        cr, lf = chr(self._regs[3]), chr(self._regs[4])
        body = (cr + lf).join(lines)
        frame = f"{cr}{lf}{body}{cr}{lf}" if self._opts["V"] else f"{body}{cr}{lf}"
        self._send_dte(frame.encode("latin-1", "replace"))

    def _echo(self, data: bytes) -> None:
        if data and self._opts["E"]:
            self._send_dte(data)

    def _send_dte(self, data: bytes) -> None:
        self._to_dte.append(bytes(data))
        self.octets_to_dte += len(data)

    def _control_lines(self) -> tuple[bool, bool, bool, bool]:
        in_call = self._state in _IN_CALL
        dcd = self._opts["&C"] == 0 or (in_call and self._carrier)
        dsr = self._opts["&S"] == 0 or in_call
        return (dcd, dsr, True, self._ri)

    def _update_lines(self, now: float) -> None:
        lines = self._control_lines()
        if lines != self._lines:
            self._lines = lines
            self._events.append(ControlLinesChanged(*lines, now))


_ACTIONS = {
    "A": HayesModem._cmd_answer,
    "H": HayesModem._cmd_hook,
    "I": HayesModem._cmd_identify,
    "O": HayesModem._cmd_online,
    "Z": HayesModem._cmd_reset,
    "&F": HayesModem._cmd_factory,
    "&V": HayesModem._cmd_view,
    "&W": HayesModem._cmd_store,
    "&Y": HayesModem._cmd_power_up_profile,
}


def _profile_text(opts: Mapping[str, int], regs: list[int]) -> list[str]:
    """A profile as &V shows it: the options, then the S-registers ten to a line."""
    words = [("P" if v else "T") if k == "P" else f"{k}{v}" for k, v in opts.items()]
    cells = [f"S{n:02d}:{regs[n]:03d}" for n in REGISTERS]
    return [" ".join(words)] + [" ".join(cells[i : i + 10]) for i in range(0, len(cells), 10)]
