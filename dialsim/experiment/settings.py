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

__all__ = ["call_plan", "isp_settings", "link_config", "mtu", "subscriber_settings"]


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
        pop3_max_sessions=sc.population.pop3_sessions if sc.population is not None else None,
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
