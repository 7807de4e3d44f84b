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
from dialsim.link.call import LinkConfig, Tariff
from dialsim.link.impairments import BurstNoiseConfig, RetrainConfig
from dialsim.link.profiles import DialTiming

__all__ = [
    "call_plan",
    "ignored_on_a_real_line",
    "isp_settings",
    "link_config",
    "mtu",
    "real_line_subscriber_settings",
    "retrieval_policy",
    "subscriber_settings",
]


def mtu(sc) -> int:
    """PPP's MRU, or SLIP's MTU."""
    return int(sc.ppp.mru) if sc.framing == "ppp" else int(sc.link.mtu)


def _burst_noise(lk) -> BurstNoiseConfig | None:
    b = lk.burst_noise
    if b is None:
        return None
    return BurstNoiseConfig(mean_good_s=b.mean_time_between, mean_bad_s=b.mean_length,
                            bad_bit_error_rate=b.bit_error_rate,
                            good_bit_error_rate=lk.bit_error_rate)


def _retrain(lk) -> RetrainConfig | None:
    r = lk.retrain
    if r is None:
        return None
    return RetrainConfig(mean_time_between_s=r.mean_time_between, duration_s=tuple(r.duration),
                         fallback_probability=r.fallback_probability,
                         failure_probability=r.failure_probability)


def link_config(sc) -> LinkConfig:
    lk = sc.link
    d = lk.dial
    t = lk.tariff
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
        no_answer_probability=lk.no_answer_probability,
        carrier_loss_while_dialing=lk.carrier_loss.while_dialing if lk.carrier_loss else False,
        burst_noise=_burst_noise(lk),
        retrain=_retrain(lk),
        call_waiting_per_s=lk.call_waiting.rate if lk.call_waiting else 0.0,
        lapm_n400=lk.lapm.n400,
        lapm_t401_s=lk.lapm.t401,
        tariff=Tariff(per_call=t.per_call, per_minute=t.per_minute, increment_s=t.increment),
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
        ppp_fcs32=sc.ppp.fcs32,
        idle_timeout=sc.isp.idle_timeout,
        session_limit=sc.isp.session_limit,
        pop3_refusal_probability=sc.isp.pop3.refusal_probability,
        pop3_refusal=sc.isp.pop3.refusal,
        pop3_max_sessions=sc.population.pop3_sessions if sc.population is not None else None,
    )


def retrieval_policy(st) -> RetrievalPolicy:
    """The client's strategy from ``subscriber.strategy``."""
    return RetrievalPolicy(mode=st.mode, use_uidl=st.use_uidl, batch=st.batch,
                           size_limit=st.size_limit, over_limit=st.over_limit,
                           header_lines=st.header_lines, order=st.order, leave_for=st.leave_for)


def subscriber_settings(sc, *, user: str | None = None, strategy=None) -> SubscriberSettings:
    """The scenario's subscriber; a population member has its own ``user`` and
    ``strategy`` (drawn from the population's shares)."""
    sub = sc.subscriber
    st = strategy if strategy is not None else sub.strategy
    return SubscriberSettings(
        user=user if user is not None else sub.user,
        password=sub.password,
        domain=sc.isp.domain,
        framing=sc.framing,
        mtu=mtu(sc),
        address=None if sc.framing == "ppp" else SUBSCRIBER_ADDR,
        ppp_auth=sc.ppp.auth,
        ppp_accm=sc.ppp.accm,
        ppp_vj=sc.ppp.vj,
        login_chat=tuple((c.expect, c.send, c.timeout) for c in sc.login_chat),
        policy=retrieval_policy(st),
        apop=st.apop,
        pipelining=st.pipelining,
        outbox_to=tuple(sub.outbox.to) if sub.outbox is not None else ("bob@elsewhere.example",),
        ppp_fcs32=sc.ppp.fcs32,
        pop3_password=sub.pop3_password,
        hangup=st.hangup,
        idle_hangup=st.idle_hangup,
        check_every=st.check_every,
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
