"""One measured call through the real-time virtual modem, in this process.

The scenario's subscriber dials the virtual Hayes modem behind a
``dialsim://SCENARIO`` pyserial port (:mod:`dialsim.pyserial.protocol_dialsim`:
the scenario's simulated ISP and link model, on the wall clock, in a
background thread), types ``ATDT`` and the scenario's number, and at CONNECT
runs the same :class:`~dialsim.hosts.subscriber.CallSession` as a simulated
call -- PPP or SLIP, the outbox, the POP3 strategy -- on the port, timed by
``time.monotonic``.  The results folder has the tables of a run, marked
``measured`` (a column on every row, and ``meta.json``), so a notebook can set
the measurement against the simulation row for row; ``dialsim dial --port
dialsim://SCENARIO`` writes the same kind of folder from the command line.

Only one call is made (no redial), the session row's line bits are 0 (the
subscriber cannot see the modems' line), and mail loss is not judged.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import dialsim
from dialsim.drivers.direct import DirectLine
from dialsim.experiment import mail, settings
from dialsim.experiment.world import pyrandom, seed_streams
from dialsim.hosts.subscriber import CallSession, Mailbox, Provenance
from dialsim.mail.maildrop import ClientInbox, MaildirStore
from dialsim.results.recorder import Recorder
from dialsim.results.summary import summarize
from dialsim.results.tables import build_tables, write_results
from dialsim.scenario.load import load_scenario, masked_text

__all__ = ["measure_virtual_call"]

_OUTCOMES = {b"BUSY": "busy", b"NO ANSWER": "no_answer", b"NO CARRIER": "no_carrier",
             b"NO DIALTONE": "no_carrier"}


class _MeasuredRecorder(Recorder):
    """A recorder whose every row says it was measured, not simulated."""

    def _add(self, table: str, cols: dict) -> None:
        super()._add(table, {**cols, "measured": True})


def _dial(port, number: str, clock, timeout: float) -> tuple[str, float, bytes]:
    """ATDT: (outcome, connect rate in bit/s or NaN, octets after the CONNECT line)."""
    port.write(f"ATDT{number}\r".encode())
    buf, end = b"", clock() + timeout
    while clock() < end:
        buf += port.read(port.in_waiting or 1)
        m = re.search(rb"CONNECT(?: (\d+))?[^\r\n]*\r\n", buf)
        if m:
            return "connect", float(m.group(1) or "nan"), buf[m.end():]
        for text, outcome in _OUTCOMES.items():
            if text + b"\r\n" in buf:
                return outcome, float("nan"), b""
    return "no_carrier", float("nan"), b""


def measure_virtual_call(scenario: str | Path, out_dir: str | Path, *, timeout: float = 120.0
                         ) -> Path:
    """Dial the scenario's virtual modem once, measure the call, write ``out_dir``."""
    import serial

    if "dialsim.pyserial" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("dialsim.pyserial")
    path = Path(scenario).resolve()
    sc = load_scenario(path)
    streams = seed_streams(sc.seed, 0)
    rec = _MeasuredRecorder(0)
    port = serial.serial_for_url(f"dialsim://{path}", timeout=0.05)
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    with tempfile.TemporaryDirectory(prefix="dialsim-measure-") as tmp:
        stored = mail.fill_maildrop(MaildirStore(Path(tmp) / "expected", durable=False), sc,
                                    np.random.default_rng(streams["mail"]), Path(sc.source_dir))

        def origin(sha: str) -> Provenance | None:
            m = stored.get(sha)
            return Provenance(m.t_arrived_s) if m is not None else None

        mailbox = Mailbox(ClientInbox(Path(tmp) / "inbox", durable=False),
                          mail.outbox(sc, np.random.default_rng(streams["outbox"])), origin)
        try:
            _call(sc, port, mailbox, rec, streams, clock, timeout)
        finally:
            port.close()
    tables = build_tables([rec])
    dup = sum(n - 1 for n in mailbox.retrieved_count.values() if n > 1)
    summary = summarize(tables, {"scenario": sc.name, "replications": 1, "messages_lost": 0,
                                 "messages_duplicated": dup})
    summary["messages_lost"] = None  # not knowable from the subscriber's side
    meta = {"measured": True, "python": sys.version.split()[0], "seed": sc.seed,
            "replications": 1, "port": f"dialsim://{path.name}", "dialsim_version": dialsim.__version__}
    return write_results(out_dir, tables, summary, masked_text(sc), meta)


def _call(sc, port, mailbox: Mailbox, rec: Recorder, streams, clock, timeout: float) -> None:
    session = CallSession(settings.subscriber_settings(sc), mailbox, rec, session=1, attempt=0,
                          row={"profile": sc.link.profile, "framing": sc.framing}, now=clock())
    rec.link_event(clock(), "dial", sc.link.phone_number)
    outcome, rate, rest = _dial(port, sc.link.phone_number, clock, timeout)
    if outcome != "connect":
        rec.link_event(clock(), outcome, outcome.replace("_", " ").upper())
        session.not_connected(outcome, clock())
        return
    rec.link_event(clock(), "connect", f"CONNECT {rate:.0f}")
    session.connected(rate, rate, clock(), rng=pyrandom(streams["subscriber_tcp"]),
                      ppp_rng=pyrandom(streams["subscriber_ppp"]))
    line = DirectLine(session, port.fileno(), clock=time.monotonic)
    line.t0 = time.monotonic() - clock()  # one time origin for the dial and the call
    if rest:
        session.receive(rest, clock())
    line.run_until(lambda: session.finished or not port.cd, timeout)
    carrier = port.cd
    port.dtr = False  # &D2: the modem hangs up
    rec.link_event(clock(), "hangup" if carrier else "carrier_lost",
                   "subscriber" if carrier else "NO CARRIER")
    session.hung_up(clock(), {"octets_in": line.octets_in + len(rest),
                              "octets_out": line.octets_out,
                              "line_octets_in": 0, "line_octets_out": 0})
