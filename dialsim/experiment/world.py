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
from dialsim.results.recorder import Recorder

__all__ = ["IspWorld", "ReplicationOutcome", "isp_world", "run_replication", "seed_streams"]

# Append only: a stream's draws depend on its position, so new components go last.
STREAMS = (
    "link", "mail", "isp_tcp", "subscriber_tcp", "isp_ppp", "subscriber_ppp", "incoming",
    "outbox",
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


@dataclass
class IspWorld:
    """The scenario's ISP on ``env``: its host, its NAS, its scratch maildrops and
    the mail stored there (by content)."""

    isp: Isp
    nas: Nas
    maildrops: MaildirStore | MemoryStore
    delivery: Delivery
    stored: dict[str, mail.StoredMessage]


def isp_world(env: simpy.Environment, sc, workdir: Path | None, streams) -> IspWorld:
    """The ISP of ``sc`` with its starting mail: in memory when ``workdir`` is
    None (a simulated replication), else in scratch Maildir folders under
    ``workdir`` (real time: real programs may look at them).  Either way they
    are thrown away afterwards: no fsync."""
    names = iter(range(1, 1 << 62))
    user = sc.subscriber.user
    naming = dict(hostname="isp", name_source=lambda: sim_name(env.now, next(names), "isp"))
    if workdir is None:
        maildrops = MemoryStore()
        delivery = MemoryDelivery(maildrops, [sc.isp.domain], {user}, **naming)
    else:
        root = workdir / "isp-mail"
        maildrops = MaildirStore(root, durable=False)
        delivery = MaildirDelivery(root, [sc.isp.domain], {user}, durable=False, **naming)
    isp = Isp(settings.isp_settings(sc), Accounts({user: sc.subscriber.password}), delivery,
              MailStore(maildrops, delivery), tcp_rng=pyrandom(streams["isp_tcp"]),
              ppp_rng=pyrandom(streams["isp_ppp"]))
    stored = mail.fill_maildrop(maildrops, sc, np.random.default_rng(streams["mail"]),
                                Path(sc.source_dir))
    if sc.isp.incoming is not None:
        env.process(mail.arrivals(env, isp, sc, np.random.default_rng(streams["incoming"]),
                                  stored))
    return IspWorld(isp, Nas(env, isp), maildrops, delivery, stored)


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
        return Provenance(m.t_arrived_s) if m is not None else None

    inbox = ClientInbox(workdir / "subscriber-inbox", durable=False) if maildirs else MemoryInbox()
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
    lost, dup = _lost_and_duplicated(sc, world, mailbox)
    return ReplicationOutcome(
        recorder=rec, stored=dict(stored), retrieved_count=dict(mailbox.retrieved_count),
        messages_lost=lost, messages_duplicated=dup, capture=log, framing=sc.framing,
        seeds={"seed_sequence_entropy": [int(sc.seed), int(replication)],
               "streams": {k: list(v.spawn_key) for k, v in streams.items()}},
    )


def _lost_and_duplicated(sc, world: IspWorld, mailbox: Mailbox) -> tuple[int, int]:
    """A message is lost if it is no longer in the maildrop and never reached the
    subscriber intact (a DELE committed for mail the client does not have), or if
    the ISP answered 250 to outbox mail that is not in its relay queue."""
    user = sc.subscriber.user
    remaining = {hashlib.sha256(m).hexdigest() for m in world.maildrops.peek(user).values()}
    got = mailbox.retrieved_count
    lost = sum(1 for sha in world.stored if sha not in remaining and sha not in got)
    queued = {hashlib.sha256(data).hexdigest() for _s, _r, data in world.delivery.queued()}
    lost += len(mailbox.sent_sha - queued)
    dup = sum(n - 1 for n in got.values() if n > 1)
    return lost, dup
