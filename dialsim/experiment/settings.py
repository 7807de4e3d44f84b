"""A scenario, translated into what the hosts and the link model take.

The scenario file speaks the user's language (``28.8k``, ``45 s``, one file for
both ends); the hosts and the link take plain settings objects in seconds,
octets and bits per second.  This module is the only place that maps one onto
the other, so the simulated run and the real-time modes build the same
subscriber, the same ISP and the same link from a scenario.
"""

from __future__ import annotations

from dialsim.hosts.isp import IspSettings
from dialsim.hosts.network import SUBSCRIBER_ADDR
from dialsim.hosts.retrieval import RetrievalPolicy
from dialsim.hosts.subscriber import CallPlan, SubscriberSettings
from dialsim.link.call import LinkConfig
from dialsim.link.profiles import DialTiming

__all__ = [
    "call_plan",
    "ignored_on_a_real_line",
    "isp_settings",
    "link_config",
    "mtu",
    "real_line_subscriber_settings",
    "subscriber_settings",
]


def mtu(sc) -> int:
    """PPP's MRU, or SLIP's MTU."""
    return int(sc.ppp.mru) if sc.framing == "ppp" else int(sc.link.mtu)


def link_config(sc) -> LinkConfig:
    lk = sc.link
    d = lk.dial
    return LinkConfig(
        profile=lk.profile,
        connect_rate_bps=lk.connect_rate,
        error_correction=lk.error_correction,
        compression=lk.compression,
        dte_rate_subscriber_bps=lk.serial_rate,
        dte_rate_isp_bps=lk.isp_serial_rate or lk.serial_rate,
        bit_error_rate=lk.bit_error_rate,
        busy_probability=lk.busy_probability,
        phone_number=lk.phone_number,
        carrier_loss_at=list(lk.carrier_loss.at) if lk.carrier_loss else [],
        carrier_loss_mtbf_s=lk.carrier_loss.mean_time_between if lk.carrier_loss else None,
        timing=DialTiming(dial_tone_wait_s=d.dial_tone_wait, dtmf_tone_s=d.dtmf_tone,
                          carrier_wait_s=d.carrier_wait, answer_after_rings=d.answer_after_rings,
                          post_dial_delay_s=tuple(d.post_dial_delay)),
        handshake_s=lk.handshake,
    )


def isp_settings(sc) -> IspSettings:
    return IspSettings(
        domain=sc.isp.domain,
        framing=sc.framing,
        mtu=mtu(sc),
        ppp_auth=sc.ppp.auth,
        ppp_accm=sc.ppp.accm,
        ppp_vj=sc.ppp.vj,
        login_prompts=tuple(step.expect for step in sc.login_chat),
        pop3_autologout=sc.isp.pop3.autologout,
        pop3_login_delay=sc.isp.pop3.login_delay,
    )


def subscriber_settings(sc) -> SubscriberSettings:
    sub, st = sc.subscriber, sc.subscriber.strategy
    return SubscriberSettings(
        user=sub.user,
        password=sub.password,
        domain=sc.isp.domain,
        framing=sc.framing,
        mtu=mtu(sc),
        address=None if sc.framing == "ppp" else SUBSCRIBER_ADDR,
        ppp_auth=sc.ppp.auth,
        ppp_accm=sc.ppp.accm,
        ppp_vj=sc.ppp.vj,
        login_chat=tuple((c.expect, c.send, c.timeout) for c in sc.login_chat),
        policy=RetrievalPolicy(mode=st.mode, use_uidl=st.use_uidl),
        apop=st.apop,
        pipelining=st.pipelining,
        outbox_to=tuple(sub.outbox.to) if sub.outbox is not None else ("bob@elsewhere.example",),
    )


def call_plan(sc) -> CallPlan:
    sub = sc.subscriber
    return CallPlan(duration=sc.duration, every=sub.calls.every if sub.calls else None,
                    attempts=sub.redial.attempts, delay=sub.redial.delay)


def real_line_subscriber_settings(sc) -> SubscriberSettings:
    """The subscriber's settings on a real line (``dialsim dial``): the ISP's servers
    where the scenario says they are (``isp.pop3.address``, ``isp.smtp.address``),
    SLIP's address as ``subscriber.address`` gives it."""
    from dataclasses import replace

    s = subscriber_settings(sc)
    changes: dict = {}
    if sc.subscriber.address is not None:
        changes["address"] = sc.subscriber.address
    if sc.isp.pop3.address is not None:
        host, _, port = sc.isp.pop3.address.rpartition(":")
        changes.update(isp_address=host, pop3_port=int(port))
    if sc.isp.smtp.address is not None:
        host, _, port = sc.isp.smtp.address.rpartition(":")
        changes["smtp_port"] = int(port)
        changes.setdefault("isp_address", host)
    return replace(s, **changes)


def ignored_on_a_real_line(sc) -> list[str]:
    """Keys of ``sc`` that a real line takes from the real world instead (a note for
    the user): the link model and the synthetic ISP."""
    notes = []
    lk = sc.link
    if lk.carrier_loss or lk.bit_error_rate or lk.busy_probability or lk.connect_rate:
        notes.append("link: the real modem and line set rate, errors, drops and busy signals")
    if sc.isp.incoming is not None:
        notes.append("isp.incoming: mail arrives at the real ISP by itself")
    return notes
