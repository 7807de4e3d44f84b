"""A measured session: the scenario's subscriber on a real serial port, on the wall clock.

``dialsim dial`` runs the very story a simulated replication runs
(:class:`dialsim.hosts.subscriber.Subscriber`: dial, chat, PPP or SLIP, the
outbox, the POP3 strategy, hang-up) with a
:class:`~dialsim.drivers.serialline.SerialLine` as its modem and line, and
writes the same tables, marked ``measured`` (a column, and ``meta.json``), so
a real call and its simulation line up row for row.

Whether a retrieved message is intact is judged against the scenario's
maildrop -- the messages it synthesizes for its seed, or the Maildir/mbox it
names with ``isp.maildrop.path`` (the folder the real ISP serves).  Mail lost
at a real ISP cannot be seen from the subscriber's side: ``messages_lost`` is
left unknown (null) in the summary.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from dialsim.drivers.serialline import SerialLine
from dialsim.drivers.wallclock import WallClock
from dialsim.experiment import mail, settings
from dialsim.experiment.world import ReplicationOutcome, pyrandom, seed_streams
from dialsim.hosts.subscriber import Mailbox, Provenance, Subscriber
from dialsim.mail.maildrop import ClientInbox, MaildirStore
from dialsim.results.recorder import Recorder

__all__ = ["MeasuredCall", "dial_number", "measure"]


@dataclass
class MeasuredCall:
    outcome: ReplicationOutcome
    line: SerialLine


def dial_number(sc) -> str:
    """What follows ``ATD``: tone dialing and the scenario's number as written
    (so ``*70,555-0123`` keeps its call-waiting prefix and pause)."""
    return "T" + sc.link.phone_number


def _scenario_mail(sc, streams, scratch: Path) -> dict[str, mail.StoredMessage]:
    """The scenario's maildrop, as its seed (or its ``isp.maildrop.path``) makes it."""
    store = MaildirStore(scratch / "expected", durable=False)
    return mail.fill_maildrop(store, sc, np.random.default_rng(streams["mail"]),
                              Path(sc.source_dir))


async def measure(sc, ser, *, direct: bool = False, workdir: Path | None = None,
                  timeout: float | None = None) -> MeasuredCall:
    """Run the scenario's calls on the open pyserial port ``ser`` in real time."""
    streams = seed_streams(sc.seed, 0)
    env = simpy.Environment()
    clock = WallClock(env, asyncio.get_running_loop())
    line = SerialLine(clock, ser, direct=direct)
    rec = Recorder(0, measured=True)

    def on_link_event(t: float, event: str, detail: str) -> None:
        rec.link_event(t_s=t, event=event, detail=detail)

    with tempfile.TemporaryDirectory(prefix="dialsim-dial-") as tmp:
        scratch = Path(workdir) if workdir is not None else Path(tmp)
        stored = _scenario_mail(sc, streams, scratch)

        def origin(sha: str) -> Provenance | None:
            m = stored.get(sha)
            return Provenance(m.t_arrived_s) if m is not None else None

        mailbox = Mailbox(ClientInbox(scratch / "inbox"),
                          mail.outbox(sc, np.random.default_rng(streams["outbox"])), origin)
        plan = settings.call_plan(sc)
        subscriber = Subscriber(
            env, settings.real_line_subscriber_settings(sc), mailbox, plan,
            lambda: _dial(line, sc, on_link_event), rec,
            rngs={"tcp": pyrandom(streams["subscriber_tcp"]),
                  "ppp": pyrandom(streams["subscriber_ppp"])},
            row={"profile": sc.link.profile, "framing": sc.framing})
        story = env.process(subscriber.run())
        try:
            await clock.run_until(story, timeout=timeout if timeout is not None else plan.duration)
        finally:
            if line.call is not None and line.call.up:
                line.call.hangup()
                await clock.run_until(lambda: False, timeout=0.1)
            line.close()
            clock.stop()
    dup = sum(n - 1 for n in mailbox.retrieved_count.values() if n > 1)
    outcome = ReplicationOutcome(
        recorder=rec, stored=stored, retrieved_count=dict(mailbox.retrieved_count),
        messages_lost=None, messages_duplicated=dup, capture=None, framing=sc.framing,
        seeds={"seed_sequence_entropy": [int(sc.seed), 0]})
    return MeasuredCall(outcome, line)


def _dial(line: SerialLine, sc, on_link_event):
    """simpy process: one dial on the real line, with the link events a simulated dial
    records (dial, connect or its failure, hangup)."""
    env = line.env
    on_link_event(env.now, "dial", sc.link.phone_number)
    result = yield env.process(line.dial(dial_number(sc)))
    if result.outcome == "connect":
        rate = result.connect_rate_down_bps
        text = "direct" if line.direct else "CONNECT" + (f" {rate:.0f}" if rate == rate else "")
        on_link_event(env.now, "connect", text)
        env.process(_until_down(line, result.call, on_link_event))
    else:
        on_link_event(env.now, result.outcome, result.outcome.replace("_", " ").upper())
    return result


def _until_down(line: SerialLine, call, on_link_event):
    reason = yield call.carrier_lost
    on_link_event(line.env.now, reason, "subscriber" if reason == "hangup" else "NO CARRIER")

