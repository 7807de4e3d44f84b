"""The virtual Hayes modem on a real DTE, dialing the model's phone line in real time.

``dialsim modem`` puts :class:`~dialsim.proto.hayes.HayesModem` on a pty or a
TCP socket (the DTE: a terminal program, pppd, DOSBox, a pyserial program) and
carries out what it asks on the simulation's own link model, run on the wall
clock by :class:`~dialsim.drivers.wallclock.WallClock`:

- ``ATD`` dials with :func:`dialsim.link.call.dial` -- dial tone wait (S6),
  DTMF digits (S11), ringing, the answering modem's handshake, the connect
  rate -- so the call takes the scenario's dial and training time in real time;
- once connected, the DTE's octets cross :class:`~dialsim.link.call.Call`'s
  two pipelines at the line's rate, latency, compression and errors, and the
  scenario's carrier losses hang up (NO CARRIER);
- what answers is looked up in a :class:`PhoneBook`: the scenario's simulated
  ISP, a real ISP-side program on a pty (``--isp-command slirp``), or a TCP
  service (``ATDT host:port``, as tcpser dials a telnet BBS).

Linux ptys have no modem control lines, so DCD and DSR cannot be shown on a
pty: the DTE learns of a lost carrier from ``NO CARRIER``.  A DTE that closes
the pty (or the socket) drops DTR.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import tty
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import simpy

from dialsim.drivers.dte import FdStream, attach_port
from dialsim.drivers.wallclock import WallClock
from dialsim.link import call as linkcall
from dialsim.link.profiles import DialTiming
from dialsim.proto.hayes import (
    ControlLinesChanged,
    DialRequested,
    HangupRequested,
    HayesModem,
    ModemState,
    ResultCodeIssued,
)
from dialsim.proto.machine import fire_due

__all__ = ["Answerer", "IspProgram", "PhoneBook", "SimulatedIsp", "TcpService", "VirtualModem"]

OnLog = Callable[[float, str, str], None]


class Answerer(Protocol):
    """Whatever picks up at the far end of a call."""

    def dial(self, clock: WallClock, cfg: linkcall.LinkConfig, rng: np.random.Generator,
             log: OnLog):
        """simpy process: the call progress of a dial to it; returns a DialResult.
        On CONNECT it has taken over ``call.isp`` and lets go when the call ends."""


class SimulatedIsp:
    """The scenario's simulated ISP answers, on its NAS's hunt group."""

    def __init__(self, nas) -> None:
        self.nas = nas

    def dial(self, clock: WallClock, cfg: linkcall.LinkConfig, rng: np.random.Generator,
             log: OnLog):
        return self.nas.dial(cfg, rng, log)


class _RemoteDte:
    """A far end that is a real program or service: reachable (or busy) at the dial,
    attached to ``call.isp`` at CONNECT, released when the call ends."""

    def dial(self, clock: WallClock, cfg: linkcall.LinkConfig, rng: np.random.Generator,
             log: OnLog):
        env = clock.env
        reachable = yield self.reachable(clock)
        cfg = replace(cfg, busy_probability=0.0 if reachable else 1.0)
        result = yield env.process(linkcall.dial(env, cfg, rng, log))
        if result.outcome != "connect":
            self.release(clock)
            return result
        self.answer(clock, result.call)
        env.process(self._until_hangup(clock, result.call))
        return result

    def _until_hangup(self, clock: WallClock, call: linkcall.Call):
        yield call.carrier_lost
        self.release(clock)

    def reachable(self, clock: WallClock) -> simpy.Event:
        raise NotImplementedError

    def answer(self, clock: WallClock, call: linkcall.Call) -> None:
        raise NotImplementedError

    def release(self, clock: WallClock) -> None:
        raise NotImplementedError


class IspProgram(_RemoteDte):
    """A real ISP-side program (slirp, a getty) started per call on a fresh pty,
    with its stdin and stdout on the line; SIGHUP when the call ends, as a real
    line's hang-up delivers it."""

    def __init__(self, command: str, *, env: dict[str, str] | None = None) -> None:
        self.argv = shlex.split(command)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._master: int | None = None
        self._stream: FdStream | None = None

    def reachable(self, clock: WallClock) -> simpy.Event:
        return clock.env.event().succeed(self.proc is None or self.proc.poll() is not None)


    def answer(self, clock: WallClock, call: linkcall.Call) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.proc = subprocess.Popen(self.argv, stdin=slave, stdout=slave, stderr=subprocess.DEVNULL,
                                     env=self.env, start_new_session=True, close_fds=True)
        os.close(slave)
        self._master = master
        self._stream = attach_port(clock, call.isp, master,
                                   on_close=lambda: call.hangup("isp"))

    def release(self, clock: WallClock) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGHUP)
                self.proc.wait(timeout=2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self._master is not None:
            os.close(self._master)
            self._master = None


class TcpService(_RemoteDte):
    """A TCP service answers (``ATDT host:port``): the socket is the far DTE."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self._stream: FdStream | None = None

    def reachable(self, clock: WallClock) -> simpy.Event:
        done = clock.env.event()

        async def connect() -> None:
            sock = None
            try:
                infos = await clock.loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
                family, kind, proto, _c, addr = infos[0]
                sock = socket.socket(family, kind, proto)
                sock.setblocking(False)
                await asyncio.wait_for(clock.loop.sock_connect(sock, addr), 10)
            except (OSError, TimeoutError):
                if sock is not None:
                    sock.close()
                clock.inject(done.succeed, False)
                return
            self.sock = sock
            clock.inject(done.succeed, True)

        clock.loop.create_task(connect())
        return done

    def answer(self, clock: WallClock, call: linkcall.Call) -> None:
        assert self.sock is not None
        self._stream = attach_port(clock, call.isp, self.sock.fileno(),
                                   on_close=lambda: call.hangup("remote"))

    def release(self, clock: WallClock) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


_HOST_PORT = re.compile(r"^\[?([A-Za-z0-9._:-]+?)\]?:(\d{1,5})$")


@dataclass
class PhoneBook:
    """Who answers which number.

    ``numbers``: digits -> answerer (the scenario's number -> its ISP);
    ``aliases``: dial strings mapped to ``host:port`` (a phone book file's
    ``5551234 = bbs.example.org:23`` lines).  A dial string of the form
    ``host:port`` reaches that TCP service; anything else rings unanswered.
    """

    numbers: dict[str, Answerer]
    aliases: dict[str, str]

    def lookup(self, ev: DialRequested) -> Answerer | None:
        digits = re.sub(r"[^0-9*#A-D]", "", ev.number.upper())
        target = self.aliases.get(ev.dial_string) or self.aliases.get(digits)
        if target is None and digits in self.numbers:
            return self.numbers[digits]
        m = _HOST_PORT.match(target or ev.dial_string)
        if m is not None:
            return TcpService(m.group(1), int(m.group(2)))
        return None


def read_phonebook(path) -> dict[str, str]:
    """``NUMBER = HOST:PORT`` lines (``#`` comments).  Raises ValueError naming the line."""
    out: dict[str, str] = {}
    for n, raw in enumerate(open(path, encoding="utf-8").read().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        number, sep, target = (p.strip() for p in line.partition("="))
        if not sep or not number or not _HOST_PORT.match(target):
            raise ValueError(f"{path}:{n}: expected NUMBER = HOST:PORT, got {raw.strip()!r}")
        out[number] = target
        out[re.sub(r"[^0-9*#A-D]", "", number.upper())] = target
    return out


def protocol_suffix(cfg: linkcall.LinkConfig, profile_name: str) -> str:
    """The CONNECT suffix of a call, as modems of the era showed it (``ARQ/V34/LAPM/V42BIS``)."""
    modulation = {"v22bis": "V22BIS", "v32bis": "V32BIS", "v34": "V34",
                  "v34_33600": "V34", "v90": "V90"}.get(profile_name, profile_name.upper())
    if not cfg.error_correction:
        return f"NONE/{modulation}"
    return f"ARQ/{modulation}/LAPM" + ("/V42BIS" if cfg.compression else "")


class VirtualModem:
    """One :class:`HayesModem` on one DTE descriptor, on ``clock``'s model.

    ``link``: the scenario's link configuration (profile, rates, errors,
    drops); each dial uses it with the modem's S6/S7/S8/S11 for call progress.
    ``log(t, what, detail)`` hears call progress and result codes.
    """

    def __init__(self, clock: WallClock, fd: int, phonebook: PhoneBook, link: linkcall.LinkConfig,
                 rng: np.random.Generator, *, registers: dict[int, int] | None = None,
                 log: OnLog | None = None) -> None:
        self.clock = clock
        self.env = clock.env
        self.phonebook = phonebook
        self.link = link
        self.rng = rng
        self.log = log or (lambda _t, _w, _d: None)
        self.modem = HayesModem(registers=registers)
        self.call: linkcall.Call | None = None
        self._dialing: simpy.Process | None = None
        self._we_hung_up = False
        self._wake = self.env.event()
        self.calls = 0
        self.dte = FdStream(clock, fd, self._from_dte, self._dte_let_go)
        self.env.process(self._timers())

    # -- the DTE side --------------------------------------------------------

    def _from_dte(self, data: bytes) -> None:
        if not self.modem.dtr:
            self.modem.set_dtr(True, self.env.now)
        self.modem.receive(data, self.env.now)
        self._pump()

    def _dte_let_go(self) -> None:
        self.set_dtr_from_port(False)

    def set_dtr_from_port(self, on: bool) -> None:
        """The DTE raised or dropped DTR (a serial port's control line)."""
        self.modem.set_dtr(on, self.env.now)
        self._pump()

    def _pump(self, *, from_timer: bool = False) -> None:
        now = self.env.now
        modem = self.modem
        for chunk in modem.output(now):
            self.dte.write(chunk)
        for chunk in modem.line_output(now):
            if self.call is not None and self.call.up:
                self.call.subscriber.write(chunk)
                self.dte.hold_until(self.call.subscriber.accepted_at())
        for ev in modem.events():
            match ev:
                case DialRequested():
                    self._dialing = self.env.process(self._place_call(ev))
                case HangupRequested():
                    self.log(now, "hangup", ev.reason)
                    self._hang_up()
                case ResultCodeIssued():
                    self.log(now, "result", ev.text)
                case ControlLinesChanged():
                    pass  # a pty has no DCD/DSR to set (see the module docstring)
        if not from_timer and not self._wake.triggered:
            self._wake.succeed()

    def _timers(self):
        while True:
            deadline = self.modem.next_deadline()
            waits = [self._wake]
            if deadline is not None:
                waits.append(self.env.timeout(max(0.0, deadline - self.env.now)))
            yield self.env.any_of(waits)
            if self._wake.triggered:
                self._wake = self.env.event()
            if fire_due(self.modem, self.env.now):
                self._pump(from_timer=True)

    # -- the line side -------------------------------------------------------

    def _timing(self, ev: DialRequested) -> DialTiming:
        s = self.modem.s_register
        # X2/X4 detect the dial tone and dial as soon as it is there (the scenario's
        # dial-tone time); X0/X1/X3 dial blind after S6 seconds.
        detect = self.modem.option("X") in (2, 4)
        wait = self.link.timing.dial_tone_wait_s if detect else float(s(6))
        timing = replace(self.link.timing, dial_tone_wait_s=wait,
                         dtmf_tone_s=s(11) / 1000.0, comma_pause_s=float(s(8)))
        # The modem's own S7 runs from ATD; the network's wait runs from the last
        # digit, and gives up a moment before the modem does, so an unanswered call
        # is reported as one (NO ANSWER with X3/X4) rather than as the S7 timeout.
        dialing = timing.dial_tone_wait_s + timing.dialing_time(ev.dial_string)
        return replace(timing, carrier_wait_s=max(0.0, s(7) + ev.pause_s - dialing - 0.01))

    def _place_call(self, ev: DialRequested):
        env = self.env
        answerer = self.phonebook.lookup(ev)
        cfg = replace(self.link, phone_number=ev.dial_string, timing=self._timing(ev))
        if answerer is None:  # nobody there: it rings until the network gives up
            dial = linkcall.dial(env, replace(cfg, no_answer_probability=1.0), self.rng, self.log)
        else:
            dial = answerer.dial(self.clock, cfg, self.rng, self.log)
        me = self._dialing
        result = yield env.process(dial)
        if self._dialing is not me or self.modem.state is not ModemState.DIALING:
            # The DTE gave up (a key, ATH, S7) while the network was still working.
            if result.call is not None:
                result.call.hangup("subscriber")
            return
        self._dialing = None
        if result.outcome != "connect":
            {"busy": self.modem.busy, "no_answer": self.modem.no_answer,
             "no_carrier": self.modem.carrier_lost}[result.outcome](env.now)
            self._pump()
            return
        yield from self._online(result, cfg)

    def _online(self, result: linkcall.DialResult, cfg: linkcall.LinkConfig):
        env = self.env
        call = result.call
        self.call, self._we_hung_up = call, False
        self.calls += 1
        self.modem.connected(result.connect_rate_down_bps, env.now,
                             protocol_suffix(cfg, call.profile.name))
        self._pump()
        env.process(self._line_to_dte(call))
        reason = yield call.carrier_lost
        self.call = None
        if not self._we_hung_up:
            self.log(env.now, "carrier", reason)
            self.modem.carrier_lost(env.now)
            self._pump()

    def _line_to_dte(self, call: linkcall.Call):
        ended = call.carrier_lost
        while not ended.triggered:
            get = call.subscriber.read()
            yield get | ended
            if not get.triggered:
                get.cancel()
                return
            self.modem.line_receive(get.value, self.env.now)
            self._pump()

    def hang_up(self) -> None:
        """Go on hook now (the DTE dropped DTR for good, or the program is stopping)."""
        self._hang_up()

    def _hang_up(self) -> None:
        if self._dialing is not None:
            self._dialing = None  # _place_call sees it and drops what it got
        if self.call is not None and self.call.up:
            self._we_hung_up = True
            self.call.hangup("subscriber")

