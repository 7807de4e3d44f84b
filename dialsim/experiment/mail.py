"""The mail of a replication: what waits at the ISP, what arrives, what the subscriber sends.

- the maildrop at the start: synthesized messages (realistic text, or base64
  of random bytes), or an existing Maildir/mbox the scenario names;
- store-and-forward arrivals: a Poisson process of messages from the Internet,
  delivered over real SMTP into the maildrop (:func:`dialsim.hosts.isp.internet_mail`);
- the subscriber's outbox.

Every message stored is remembered by content (:class:`StoredMessage`), so
the tables can say whether what the subscriber got is intact, and how long it
waited at the ISP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialsim.hosts.isp import Isp, internet_mail
from dialsim.mail.maildrop import sim_name, to_crlf
from dialsim.mail.synth import random_message, synthesize_messages

__all__ = ["StoredMessage", "arrivals", "fill_maildrop", "outbox"]


@dataclass
class StoredMessage:
    uidl: str
    sha256: str
    size_octets: int
    t_arrived_s: float


def _sigma(dist) -> float:
    return 0.0 if dist.distribution == "fixed" else dist.sigma


def _draw_sizes(rng, count: int, dist) -> list[int]:
    if dist.distribution == "fixed" or dist.sigma == 0:
        return [int(dist.median)] * count
    return [int(x) for x in rng.lognormal(np.log(dist.median), dist.sigma, size=count)]


def fill_maildrop(maildrops, sc, rng: np.random.Generator, base: Path,
                  user: str | None = None) -> dict[str, StoredMessage]:
    """Put the scenario's starting mail into ``user``'s maildrop (default
    ``sc.subscriber.user``); {sha256: StoredMessage} of what is there."""
    user, md, domain = user or sc.subscriber.user, sc.isp.maildrop, sc.isp.domain
    msgs: list[bytes] = []
    if md.path is not None:
        maildrops.import_messages(user, base / md.path,
                                  name_for=lambda seq: sim_name(0.0, seq, "isp"))
    elif md.content == "random":
        msgs = [random_message(rng, n, to_addr=f"{user}@{domain}", domain=domain)
                for n in _draw_sizes(rng, md.messages, md.size)]
    else:
        msgs = synthesize_messages(rng, md.messages, median_size_octets=md.size.median,
                                   sigma=_sigma(md.size), attachment_share=md.attachments,
                                   to_addr=f"{user}@{domain}", domain=domain, start_time=0.0)
    for seq, m in enumerate(msgs):
        maildrops.deliver(user, m, name=sim_name(0.0, seq, "isp"))
    stored = (StoredMessage(uidl, hashlib.sha256(data).hexdigest(), len(data), 0.0)
              for uidl, data in maildrops.peek(user).items())
    return {m.sha256: m for m in stored}


def arrivals(env, isp: Isp, sc, rng: np.random.Generator, stored: dict[str, StoredMessage],
             user: str | None = None):
    """simpy process: mail for ``user`` (default the subscriber) arrives from the
    Internet (a Poisson process), over SMTP into the maildrop, where it waits
    for the next call."""
    inc, user, domain = sc.isp.incoming, user or sc.subscriber.user, sc.isp.domain
    seq = 0
    while True:
        yield env.timeout(float(rng.exponential(1.0 / inc.rate)))
        seq += 1
        (msg,) = synthesize_messages(rng, 1, median_size_octets=inc.size.median,
                                     sigma=_sigma(inc.size), attachment_share=0.1,
                                     to_addr=f"{user}@{domain}", domain=f"sender{seq % 7}.example",
                                     start_time=env.now)
        if internet_mail(isp, f"friend{seq}@elsewhere.example", [f"{user}@{domain}"], msg, env.now):
            data = to_crlf(msg)
            sha = hashlib.sha256(data).hexdigest()
            stored[sha] = StoredMessage("", sha, len(data), env.now)


def outbox(sc, rng: np.random.Generator) -> list[bytes]:
    """The mail the subscriber has written and will send on the next call."""
    ob = sc.subscriber.outbox
    if ob is None or not ob.messages:
        return []
    return synthesize_messages(rng, ob.messages, median_size_octets=ob.size.median,
                               sigma=_sigma(ob.size), attachment_share=0.1, to_addr=ob.to[0],
                               domain=sc.isp.domain, start_time=0.0)
