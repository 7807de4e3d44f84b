"""One replication of a scenario: the ISP, the subscriber and the phone line, in simpy time.

This module only wires: the scenario's settings (:mod:`dialsim.experiment.settings`)
become the hosts (:mod:`dialsim.hosts.isp`, :mod:`dialsim.hosts.subscriber`), the
NAS's lines (:mod:`dialsim.drivers.nas`) and the link model
(:mod:`dialsim.link.call`), and the subscriber's story runs until the scenario's
duration.  Afterwards the maildrop and the relay queue are checked: a message
is lost if it left the maildrop without reaching the subscriber intact, or if
the ISP answered 250 to outbox mail it did not queue.

Randomness: one :class:`numpy.random.SeedSequence` per (seed, replication),
split into named child streams so a component's draws never shift another's.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import simpy

from dialsim.drivers.nas import Nas
from dialsim.experiment import mail, settings
from dialsim.hosts.endpoint import FrameLog
from dialsim.hosts.isp import Isp
from dialsim.hosts.mailhost import MailStore
from dialsim.hosts.subscriber import Mailbox, Provenance, Subscriber
from dialsim.mail.accounts import Accounts
from dialsim.mail.delivery import Delivery, MaildirDelivery
from dialsim.mail.maildrop import ClientInbox, MaildirStore, sim_name
from dialsim.mail.memory import MemoryDelivery, MemoryInbox, MemoryStore
from dialsim.proto.pop3 import CommitMaildrop, ReadMessage
from dialsim.results.recorder import Recorder

__all__ = [
    "IspWorld",
    "ReplicationOutcome",
    "WatchedStore",
    "isp_host",
    "isp_world",
    "mail_accounting",
    "relay_queue",
    "remaining_mail",
    "run_replication",
    "seed_streams",
]

# Append only: a stream's draws depend on its position, so new components go last.
STREAMS = (
    "link", "mail", "isp_tcp", "subscriber_tcp", "isp_ppp", "subscriber_ppp", "incoming",
    "outbox", "isp_faults",
)


def seed_streams(seed: int, replication: int) -> dict[str, np.random.SeedSequence]:
    root = np.random.SeedSequence([seed, replication])
    return dict(zip(STREAMS, root.spawn(len(STREAMS)), strict=True))


def pyrandom(ss: np.random.SeedSequence) -> random.Random:
    return random.Random(int(ss.generate_state(2, dtype=np.uint64)[0]))


@dataclass
class ReplicationOutcome:
    recorder: Recorder
    stored: dict[str, mail.StoredMessage]
    retrieved_count: dict[str, int]  # sha256 -> times retrieved
    messages_lost: int
    messages_duplicated: int
    capture: FrameLog | None
    framing: str
    seeds: dict[str, list[int]] = field(default_factory=dict)
    commits: list[float] = field(default_factory=list)  # when the ISP's UPDATE states committed
    remaining: set[str] = field(default_factory=set)  # sha256 of the mail left in the maildrop


class WatchedStore:
    """The ISP's store as the experiment sees it: how often the POP3 server read
    each message for RETR (by content: the attempts to deliver it) and when
    each UPDATE committed.  The servers see the store they always do."""

    def __init__(self, store: MailStore, env: simpy.Environment) -> None:
        self.store = store
        self.env = env
        self.reads: dict[str, int] = {}
        self.commits: list[float] = []

    def carry_out(self, effect):
        result = self.store.carry_out(effect)
        if isinstance(effect, ReadMessage) and effect.top_lines is None and isinstance(result, bytes):
            sha = hashlib.sha256(result).hexdigest()
            self.reads[sha] = self.reads.get(sha, 0) + 1
        elif isinstance(effect, CommitMaildrop):
            self.commits.append(self.env.now)
        return result


@dataclass
class IspWorld:
    """The scenario's ISP on ``env``: its host, its NAS, its scratch maildrops and
    the mail stored there (by content)."""

    isp: Isp
    nas: Nas
    maildrops: MaildirStore | MemoryStore
    delivery: Delivery
    stored: dict[str, mail.StoredMessage]
    store: WatchedStore


def isp_host(env: simpy.Environment, sc, workdir: Path | None, streams, users: list[str], *,
             lines: int = 1) -> tuple[Isp, MaildirStore | MemoryStore, Delivery, WatchedStore]:
    """The ISP of ``sc`` for ``users`` (all with the scenario's password) with
    ``lines`` NAS lines.  Its maildrops are in memory when ``workdir`` is None
    (a simulated replication), else in scratch Maildir folders under
    ``workdir`` (real time: real programs may look at them).  Either way they
    are thrown away afterwards: no fsync."""
    names = iter(range(1, 1 << 62))
    naming = dict(hostname="isp", name_source=lambda: sim_name(env.now, next(names), "isp"))
    maildrops: MaildirStore | MemoryStore
    delivery: Delivery
    if workdir is None:
        maildrops = MemoryStore()
        delivery = MemoryDelivery(maildrops, [sc.isp.domain], set(users), **naming)
    else:
        root = workdir / "isp-mail"
        maildrops = MaildirStore(root, durable=False)
        delivery = MaildirDelivery(root, [sc.isp.domain], set(users), durable=False, **naming)
    store = WatchedStore(MailStore(maildrops, delivery), env)
    isp = Isp(settings.isp_settings(sc), Accounts(dict.fromkeys(users, sc.subscriber.password)),
              delivery, store, lines=lines,
              tcp_rng=pyrandom(streams["isp_tcp"]), ppp_rng=pyrandom(streams["isp_ppp"]),
              fault_rng=pyrandom(streams["isp_faults"]))
    return isp, maildrops, delivery, store


def isp_world(env: simpy.Environment, sc, workdir: Path | None, streams) -> IspWorld:
    """The ISP of ``sc`` with its starting mail (see :func:`isp_host`)."""
    isp, maildrops, delivery, store = isp_host(env, sc, workdir, streams, [sc.subscriber.user])
    stored = mail.fill_maildrop(maildrops, sc, np.random.default_rng(streams["mail"]),
                                Path(sc.source_dir))
    if sc.isp.incoming is not None:
        env.process(mail.arrivals(env, isp, sc, np.random.default_rng(streams["incoming"]),
                                  stored))
    return IspWorld(isp, Nas(env, isp), maildrops, delivery, stored, store)


def run_replication(sc, replication: int, workdir: Path | None = None, *,
                    capture: bool = False, maildirs: bool = False):
    """One replication of ``sc``.  Its mail is kept in memory, unless ``maildirs``:
    then in scratch Maildir folders under ``workdir`` (the same results, slower)."""
    streams = seed_streams(sc.seed, replication)
    env = simpy.Environment()
    rec = Recorder(replication)
    if maildirs:
        workdir.mkdir(parents=True, exist_ok=True)
    world = isp_world(env, sc, workdir if maildirs else None, streams)
    stored = world.stored

    def origin(sha: str) -> Provenance | None:
        m = stored.get(sha)
        return Provenance(m.t_arrived_s, world.store.reads.get(sha, 0)) if m is not None else None

    inbox = ClientInbox(workdir / "subscriber-inbox", durable=False) if maildirs else MemoryInbox(keep_content=False)
    mailbox = Mailbox(inbox,
                      mail.outbox(sc, np.random.default_rng(streams["outbox"])), origin)
    link, link_rng = settings.link_config(sc), np.random.default_rng(streams["link"])

    def on_link_event(t: float, event: str, detail: str) -> None:
        rec.link_event(t_s=t, event=event, detail=detail)

    log = FrameLog(packets_only=sc.framing in ("slip", "cslip")) if capture else None
    subscriber = Subscriber(
        env, settings.subscriber_settings(sc), mailbox, settings.call_plan(sc),
        lambda: world.nas.dial(link, link_rng, on_link_event), rec,
        rngs={"tcp": pyrandom(streams["subscriber_tcp"]),
              "ppp": pyrandom(streams["subscriber_ppp"])},
        row={"profile": sc.link.profile, "framing": sc.framing}, capture=log)
    env.process(subscriber.run())
    env.run(until=sc.duration)
    add_phone_cost(rec.sessions, link.tariff)
    remaining = remaining_mail(world.maildrops, sc.subscriber.user)
    lost, dup = mail_accounting(remaining, world.stored, mailbox, relay_queue(world.delivery))
    return ReplicationOutcome(
        recorder=rec, stored=dict(stored), retrieved_count=dict(mailbox.retrieved_count),
        messages_lost=lost, messages_duplicated=dup, capture=log, framing=sc.framing,
        seeds={"seed_sequence_entropy": [int(sc.seed), int(replication)],
               "streams": {k: list(v.spawn_key) for k, v in streams.items()}},
        commits=list(world.store.commits),
        remaining=remaining,
    )


def add_phone_cost(sessions: list[dict], tariff) -> None:
    """What each call cost, from answer to hang-up."""
    for row in sessions:
        row["phone_cost"] = tariff.cost(row["t_end_s"] - row.get("t_answer_s", float("nan")))


def remaining_mail(maildrops: MaildirStore | MemoryStore, user: str) -> set[str]:
    """sha256 of the mail left in ``user``'s maildrop."""
    return {hashlib.sha256(m).hexdigest() for m in maildrops.peek(user).values()}


def relay_queue(delivery: Delivery) -> set[str]:
    """sha256 of every message in the ISP's relay queue (outbox mail it accepted)."""
    return {hashlib.sha256(data).hexdigest() for _s, _r, data in delivery.queued()}


def mail_accounting(remaining: set[str], stored: dict, mailbox: Mailbox,
                    queued: set[str]) -> tuple[int, int]:
    """(lost, duplicated) for one subscriber: a message is lost if it is no longer
    in the maildrop (``remaining``) and never reached the subscriber intact (a
    DELE committed for mail the client does not have), or if the ISP answered
    250 to outbox mail that is not in its relay queue (``queued``)."""
    got = mailbox.retrieved_count
    lost = sum(1 for sha in stored if sha not in remaining and sha not in got)
    lost += len(mailbox.sent_sha - queued)
    dup = sum(n - 1 for n in got.values() if n > 1)
    return lost, dup
