"""A population of subscribers sharing one ISP's modem pool: one replication in simpy time.

The scenario's ``population`` section (docs/capacity.md) turns the one
subscriber of a scenario into N of them, each built from the ``subscriber``
and ``isp.maildrop`` / ``isp.incoming`` settings as a template:

- its own account (``alice0001`` ...), maildrop, mail arriving from the
  Internet, outbox and inbox;
- its own calling pattern (:class:`CallTimes`: periodic, Poisson, or Poisson
  with a time-of-day profile), its own redials (the template's policy);
- a modem profile and a POP3 strategy drawn from the population's shares.

They all dial one NAS (:class:`~dialsim.drivers.nas.Nas`) whose M lines are a
hunt group: a call that finds every line taken hears BUSY.  Behind it one mail
host (:class:`~dialsim.hosts.isp.Isp`) serves every subscriber, with a cap on
the POP3 sessions open at once.  Every row a subscriber's calls write gets its
``subscriber`` index, and session rows the NAS ``line`` that carried the call
(-1: all lines were busy); a call still going when the replication ends is
written as it stands, ended ``unfinished`` then, so the lines it held count.
:mod:`dialsim.results.capacity` turns the rows into the per-line, per-hour and
per-subscriber tables.

Randomness: the ISP's streams are the single-subscriber world's
(:func:`~dialsim.experiment.world.seed_streams`); subscriber *i* has its own
:class:`numpy.random.SeedSequence` with spawn key ``(POPULATION_KEY, i)``, split
into named streams, so its draws depend neither on N nor on the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import simpy

from dialsim.drivers.nas import Nas
from dialsim.experiment import mail, settings
from dialsim.experiment.world import (
    ReplicationOutcome,
    add_phone_cost,
    isp_host,
    mail_accounting,
    pyrandom,
    relay_queue,
    remaining_mail,
    seed_streams,
)
from dialsim.hosts.subscriber import CallPlan, Mailbox, Provenance, Subscriber
from dialsim.mail.maildrop import ClientInbox
from dialsim.mail.memory import MemoryInbox
from dialsim.results.recorder import Recorder

__all__ = [
    "POPULATION_KEY",
    "CallTimes",
    "MemberRecorder",
    "Traits",
    "draw_traits",
    "member_streams",
    "run_population_replication",
    "user_names",
]

POPULATION_KEY = 0x706F70  # "pop": spawn keys (POPULATION_KEY, i) never meet seed_streams' (k,)

# Append only: a stream's draws depend on its position.
MEMBER_STREAMS = ("traits", "calls", "holding", "link", "mail", "incoming", "outbox", "tcp", "ppp")


def member_streams(seed: int, replication: int, index: int) -> dict[str, np.random.SeedSequence]:
    root = np.random.SeedSequence([seed, replication], spawn_key=(POPULATION_KEY, index))
    return dict(zip(MEMBER_STREAMS, root.spawn(len(MEMBER_STREAMS)), strict=True))


def user_names(sc) -> list[str]:
    """The subscribers' account names: the template's user and a number from 1."""
    n = sc.population.subscribers
    width = max(4, len(str(n)))
    return [f"{sc.subscriber.user}{i + 1:0{width}d}" for i in range(n)]


@dataclass(frozen=True, slots=True)
class Traits:
    """What one subscriber was dealt: a modem and a way of fetching mail."""

    profile: str
    strategy: object  # the scenario's Strategy section

    @property
    def strategy_label(self) -> str:
        st = self.strategy
        flags = [f for f, on in (("uidl", st.use_uidl), ("pipelining", st.pipelining),
                                 ("apop", st.apop)) if on]
        return "+".join([st.mode, *flags])


def draw_traits(sc, rng: np.random.Generator) -> Traits:
    """A modem profile and a POP3 strategy by the population's shares (two draws,
    always, so one share list does not shift the other's draws)."""
    pop = sc.population
    u_modem, u_strategy = (float(x) for x in rng.random(2))
    profile = sc.link.profile
    if pop.modems:
        profile = _by_share(list(pop.modems), list(pop.modems.values()), u_modem)
    strategy = sc.subscriber.strategy
    if pop.strategies:
        strategy = _by_share(pop.strategies, [s.share for s in pop.strategies], u_strategy)
    return Traits(profile, strategy)


def _by_share(items: list, shares: list[float], u: float):
    total = 0.0
    for item, share in zip(items, shares, strict=True):
        total += share
        if u < total:
            return item
    return items[-1]


class CallTimes:
    """One subscriber's calling pattern, as :class:`CallPlan`'s ``next_call``.

    ``periodic``: every ``every`` from a random phase; a call planned while the
    last one still ran is skipped.  ``poisson``: the subscriber picks up the
    phone an exponential time (mean ``every``) after the last call ended, or
    after the start.  ``profile``: the same with a rate that follows the hour of
    the day (a non-homogeneous Poisson process, drawn by thinning).
    """

    def __init__(self, calls, rng: np.random.Generator) -> None:
        self.pattern = calls.pattern
        self.every = float(calls.every)
        self.rng = rng
        self.weights = calls.hourly_weights() if calls.pattern == "profile" else (1.0,) * 24
        self.peak = max(self.weights)

    def __call__(self, now: float, planned: float | None) -> float:
        rng = self.rng
        if self.pattern == "periodic":
            if planned is None:
                return float(rng.uniform(0.0, self.every))
            return planned + self.every * (math.floor((now - planned) / self.every) + 1)
        t = max(now, planned or 0.0)
        scale = self.every / self.peak
        while True:
            t += float(rng.exponential(scale))
            hour = int(t // 3600.0) % 24
            if rng.random() * self.peak < self.weights[hour]:
                return t


class MemberRecorder:
    """One subscriber's view of the replication's recorder: every row gets its
    ``subscriber`` index, session rows the NAS ``line`` of the call (-1: busy)."""

    def __init__(self, recorder: Recorder, subscriber: int) -> None:
        self.recorder = recorder
        self.subscriber = subscriber
        self.line = -1

    def seized(self, line: int | None) -> None:
        self.line = -1 if line is None else line

    def session(self, **cols) -> None:
        self.recorder.session(subscriber=self.subscriber, line=self.line, **cols)

    def command(self, **cols) -> None:
        self.recorder.command(subscriber=self.subscriber, **cols)

    def message(self, **cols) -> None:
        self.recorder.message(subscriber=self.subscriber, **cols)

    def link_event(self, t_s: float, event: str, detail: str = "") -> None:
        self.recorder.link_event(t_s, event, detail, subscriber=self.subscriber)


@dataclass
class Member:
    """A subscriber of the population, wired: what the accounting needs afterwards."""

    user: str
    stored: dict[str, mail.StoredMessage]
    mailbox: Mailbox
    subscriber: Subscriber


def run_population_replication(sc, replication: int, workdir: Path | None = None, *,
                               capture: bool = False,
                               maildirs: bool = False) -> ReplicationOutcome:
    """One replication of a population scenario (``capture`` is not offered: a
    pool has many lines).  Its mail is kept in memory, unless ``maildirs``: then
    in scratch Maildir folders under ``workdir`` (the same results, slower)."""
    if capture:
        raise ValueError("a population has many lines: no single-line capture")
    pop = sc.population
    streams = seed_streams(sc.seed, replication)
    env = simpy.Environment()
    rec = Recorder(replication)
    if maildirs:
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = None
    users = user_names(sc)
    isp, maildrops, delivery, store = isp_host(env, sc, workdir, streams, users, lines=pop.lines)
    nas = Nas(env, isp)
    members = [_member(env, sc, i, user, replication, workdir, isp, nas, maildrops, store, rec)
               for i, user in enumerate(users)]
    env.run(until=sc.duration)
    for m in members:  # the lines still held at the end were held until then
        m.subscriber.close_books(env.now)
    add_phone_cost(rec.sessions, settings.link_config(sc).tariff)
    queued = relay_queue(delivery)
    lost = dup = 0
    stored: dict[str, mail.StoredMessage] = {}
    retrieved: dict[str, int] = {}
    remaining: set[str] = set()
    for m in members:
        left = remaining_mail(maildrops, m.user)
        m_lost, m_dup = mail_accounting(left, m.stored, m.mailbox, queued)
        lost, dup = lost + m_lost, dup + m_dup
        stored.update(m.stored)
        retrieved.update(m.mailbox.retrieved_count)
        remaining |= left
    return ReplicationOutcome(
        recorder=rec, stored=stored, retrieved_count=retrieved, messages_lost=lost,
        messages_duplicated=dup, capture=None, framing=sc.framing,
        seeds={"seed_sequence_entropy": [int(sc.seed), int(replication)],
               "streams": {k: list(v.spawn_key) for k, v in streams.items()},
               "subscriber_spawn_key": [POPULATION_KEY, "subscriber"]},
        commits=list(store.commits), remaining=remaining,
    )


def _member(env, sc, index: int, user: str, replication: int, workdir: Path | None, isp, nas: Nas,
            maildrops, store, rec: Recorder) -> Member:
    """Subscriber ``index``: its mail at the ISP, its computer, its calls."""
    ss = member_streams(sc.seed, replication, index)
    rng = {name: np.random.default_rng(seq) for name, seq in ss.items()}
    traits = draw_traits(sc, rng["traits"])
    stored = mail.fill_maildrop(maildrops, sc, rng["mail"], Path(sc.source_dir), user=user)
    if sc.isp.incoming is not None:
        env.process(mail.arrivals(env, isp, sc, rng["incoming"], stored, user=user))

    def origin(sha: str) -> Provenance | None:
        m = stored.get(sha)
        return Provenance(m.t_arrived_s, store.reads.get(sha, 0)) if m is not None else None

    inbox = (MemoryInbox(keep_content=False) if workdir is None
             else ClientInbox(workdir / "inboxes" / user, durable=False))
    mailbox = Mailbox(inbox, mail.outbox(sc, rng["outbox"]), origin)
    st = traits.strategy
    computer = settings.subscriber_settings(sc, user=user, strategy=st)
    link = replace(settings.link_config(sc), profile=traits.profile)
    tagged = MemberRecorder(rec, index)
    link_rng = rng["link"]

    def dial():
        return nas.dial(link, link_rng, tagged.link_event, on_seized=tagged.seized)

    subscriber = Subscriber(
        env, computer, mailbox, _plan(sc, CallTimes(sc.population.calls, rng["calls"]),
                                      rng["holding"]),
        dial, tagged, rngs={"tcp": pyrandom(ss["tcp"]), "ppp": pyrandom(ss["ppp"])},
        row={"profile": traits.profile, "framing": sc.framing, "strategy": traits.strategy_label})
    env.process(subscriber.run())
    return Member(user, stored, mailbox, subscriber)


def _plan(sc, times: CallTimes, holding_rng: np.random.Generator) -> CallPlan:
    hold = sc.population.holding
    holding: Callable[[], float] | None = None
    if hold.mode == "exponential":
        mean = float(hold.mean)

        def holding() -> float:
            return float(holding_rng.exponential(mean))

    redial = sc.subscriber.redial
    return CallPlan(duration=sc.duration, attempts=redial.attempts, delay=redial.delay,
                    next_call=times, holding=holding)
