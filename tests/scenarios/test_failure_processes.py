"""Failure processes and client strategies in whole replications: each scenario key
ends calls with its own end_reason, and nothing is lost."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dialsim.experiment.world import run_replication
from dialsim.results.tables import build_tables
from dialsim.scenario.load import scenario_from_text

BASE = """
name: faults
seed: 4
duration: 2 h
framing: ppp
link:
  profile: v34
  connect_rate: 28.8k
subscriber:
  user: alice
  password: tanstaaf
  redial: {attempts: 12, delay: 1 min}
isp:
  maildrop:
    messages: 8
    size: {distribution: lognormal, median: 4 KiB, sigma: 1.0}
  pop3: {autologout: 2 min}
"""


def run(tmp_path, overrides: dict | None = None, **top):
    sc = scenario_from_text(BASE).with_overrides(overrides or {}, **top)
    out = run_replication(sc, 0, tmp_path / "rep")
    return out, build_tables([out.recorder])


def reasons(tables) -> list[str]:
    return list(tables["sessions"]["end_reason"])


def test_defaults_retrieve_everything_in_one_call(tmp_path):
    out, t = run(tmp_path)
    s = t["sessions"]
    assert reasons(t) == ["quit"] and out.messages_lost == 0
    assert s["pop3_sessions"].tolist() == [1] and s["octets_wasted"].tolist() == [0]
    assert s["retrains"].tolist() == [0]
    assert s["connect_rate_lowest_bps"].tolist() == s["connect_rate_final_bps"].tolist() == [28800]
    assert (t["messages"]["attempts"] == 1).all()
    assert s["t_answer_s"][0] < s["t_connect_s"][0] < s["t_pop3_connected_s"][0] \
        < s["t_pop3_greeting_s"][0]


def test_no_answer_has_its_end_reason(tmp_path):
    _out, t = run(tmp_path, {"link.no_answer_probability": 1.0})
    assert reasons(t) == ["no_answer"] * 12
    assert (t["sessions"]["phone_cost"] == 0).all()


@pytest.mark.parametrize("refusal", ["not_listening", "busy"])
def test_pop3_refused_has_its_end_reason(tmp_path, refusal):
    out, t = run(tmp_path, {"isp.pop3.refusal_probability": 1.0, "isp.pop3.refusal": refusal})
    assert reasons(t) == ["pop3_refused"] * 12
    assert out.messages_lost == 0 and t["messages"].empty
    pop3 = t["commands"][t["commands"]["protocol"] == "pop3"]
    assert pop3.empty  # no USER ever went out


def test_pop3_refusals_are_drawn_per_connection(tmp_path):
    out, t = run(tmp_path, {"isp.pop3.refusal_probability": 0.5})
    assert reasons(t)[-1] == "quit" and "pop3_refused" in reasons(t)
    assert len(t["messages"]) == 8 and out.messages_lost == 0


def test_wrong_password_ends_the_call_and_is_not_redialled(tmp_path):
    _out, t = run(tmp_path, {"subscriber.pop3_password": "tanstaag"})
    assert reasons(t) == ["wrong_password"]


def test_isp_session_limit_hangs_up_and_the_subscriber_calls_again(tmp_path):
    out, t = run(tmp_path, {"isp.session_limit": "25 s", "isp.maildrop.messages": 25})
    r = reasons(t)
    assert r[0] == "isp_session_limit" and r[-1] == "quit"
    s = t["sessions"]
    limited = s[s["end_reason"] == "isp_session_limit"]
    # the NAS's session timer runs from CONNECT, when it takes the call
    assert list(limited["t_end_s"] - limited["t_connect_s"]) == pytest.approx([25.0] * len(limited))
    ev = t["link_events"]
    assert (ev["detail"] == "isp: isp_session_limit").sum() == len(limited)
    assert out.messages_lost == 0 and len(out.retrieved_count) == 25


def test_idle_dialer_stays_online_until_the_isp_idle_timeout(tmp_path):
    out, t = run(tmp_path, {"subscriber.strategy.hangup": "idle",
                            "subscriber.strategy.idle_hangup": "20 min",
                            "isp.idle_timeout": "5 min"})
    s = t["sessions"]
    assert reasons(t) == ["isp_idle_timeout"]  # the mail was in: no redial
    quit_done = t["commands"]["t_done_s"].max()  # then only TCP's closing segments
    assert 300 <= s["t_end_s"][0] - quit_done < 302
    assert out.messages_lost == 0 and len(t["messages"]) == 8


def test_idle_dialer_checks_again_and_hangs_up_after_its_idle_time(tmp_path):
    out, t = run(tmp_path, {"subscriber.strategy.hangup": "idle",
                            "subscriber.strategy.idle_hangup": "4 min",
                            "subscriber.strategy.check_every": "10 min",
                            "isp.incoming": {"rate": "12 /h"},
                            "link.tariff": {"per_call": 0.1, "per_minute": 0.05}})
    s = t["sessions"]
    assert reasons(t)[0] == "quit"
    assert s["pop3_sessions"][0] == 1  # the check at 10 min came after the 4 min idle hang-up
    online = s["t_end_s"][0] - s["t_answer_s"][0]
    assert online > 240
    assert s["phone_cost"][0] == pytest.approx(0.1 + 0.05 * math.ceil(online / 60))
    # with checks more often than the idle time the call goes on, fetching new mail
    out, t = run(tmp_path / "b", {"subscriber.strategy.hangup": "idle",
                                  "subscriber.strategy.idle_hangup": "4 min",
                                  "subscriber.strategy.check_every": "3 min",
                                  "isp.incoming": {"rate": "12 /h"},
                                  "isp.session_limit": "40 min"})
    s = t["sessions"]
    assert s["end_reason"][0] == "isp_session_limit" and s["pop3_sessions"][0] >= 10
    late = t["messages"][t["messages"]["t_arrived_s"] > 0]
    assert len(late) > 3 and (late["session"] == 1).all()
    assert (late["latency_s"] < 3 * 60 + 30).all()


def test_batch_commit_quits_and_reconnects_every_n_messages(tmp_path):
    out, t = run(tmp_path, {"subscriber.strategy.batch": 3})
    s = t["sessions"]
    assert reasons(t) == ["quit"] and s["pop3_sessions"][0] == 3  # 3 + 3 + 2
    quits = t["commands"][t["commands"]["command"] == "QUIT"]
    assert len(quits) == 3 and out.messages_lost == 0 and len(out.commits) == 3


def test_size_limit_skips_or_fetches_headers(tmp_path):
    over = {"subscriber.strategy.size_limit": "4 KiB"}
    out, t = run(tmp_path, over)
    sizes = sorted(m.size_octets for m in out.stored.values())
    small = sum(1 for x in sizes if x <= 4096)
    assert 0 < small < 8
    assert len(t["messages"]) == small and out.messages_lost == 0
    out, t = run(tmp_path / "h", {**over, "subscriber.strategy.over_limit": "headers"})
    s = t["sessions"]
    assert s["headers_fetched"][0] == 8 - small
    tops = t["commands"][t["commands"]["command"].str.startswith("TOP")]
    assert len(tops) == 8 - small and tops["command"].str.endswith(" 0").all()


def test_smallest_first_fetches_in_size_order(tmp_path):
    _out, t = run(tmp_path, {"subscriber.strategy.order": "smallest_first"})
    got = t["messages"]["size_octets"].tolist()
    assert got == sorted(got) and len(got) == 8


def test_leave_on_server_deletes_after_the_time(tmp_path):
    out, t = run(tmp_path, {"subscriber.strategy.mode": "keep",
                            "subscriber.strategy.leave_for": "50 min",
                            "subscriber.calls": {"every": "30 min"}, "duration": "2 h"})
    deles = t["commands"][t["commands"]["command"].str.startswith("DELE")]
    assert len(deles) == 8 and (deles["t_sent_s"] >= 50 * 60).all()
    assert len(t["messages"]) == 8 and not t["messages"]["duplicate"].any()
    assert out.messages_lost == 0


def test_naive_client_wastes_octets_and_counts_attempts_after_a_drop(tmp_path):
    out, t = run(tmp_path, {"subscriber.strategy.use_uidl": False,
                            "link.carrier_loss": {"at": ["26 s"]}})
    s, m = t["sessions"], t["messages"]
    assert s["end_reason"][0] == "carrier_lost" and s["end_reason"].iloc[-1] == "quit"
    dup = m[m["duplicate"]]
    assert len(dup) == out.messages_duplicated > 0
    # the repeats, and what the drop cut short of the RETR under way
    assert s["octets_wasted"].sum() > dup["size_octets"].sum()
    assert (m.loc[~m["duplicate"], "attempts"] >= 1).all() and m["attempts"].max() >= 2
    assert out.messages_lost == 0


def test_retrains_show_in_link_events_and_session_rates(tmp_path):
    _out, t = run(tmp_path, {"link.retrain": {"mean_time_between": "5 s",
                                              "fallback_probability": 1.0},
                             "isp.maildrop.messages": 20})
    s, ev = t["sessions"], t["link_events"]
    changes = ev[ev["event"] == "rate_change"]
    assert len(changes) >= 2 and (ev["event"] == "retrain").sum() >= len(changes)
    assert s["retrains"].sum() == len(changes)
    first = s.iloc[0]
    assert first["connect_rate_lowest_bps"] < 28800
    assert first["connect_rate_final_bps"] == first["connect_rate_lowest_bps"]  # always down


def test_call_waiting_drops_unless_star_70(tmp_path):
    # a click every 5 s on average: a call of 20 messages (~20 s online) hears one
    cw = {"link.call_waiting": {"rate": "720 /h"}, "isp.maildrop.messages": 20}
    _out, t = run(tmp_path, cw)
    assert "call_waiting" in set(t["link_events"]["event"])
    assert "carrier_lost" in reasons(t)
    _out, t = run(tmp_path / "b", {**cw, "link.phone_number": "*70,555-0123"})
    assert "call_waiting" not in set(t["link_events"]["event"]) and reasons(t) == ["quit"]


def test_burst_noise_with_v42_gives_up_and_the_next_call_finishes(tmp_path):
    out, t = run(tmp_path, {"link.burst_noise": {"mean_time_between": "10 s",
                                                 "mean_length": "20 s",
                                                 "bit_error_rate": 1e-2},
                            "link.lapm": {"n400": 2, "t401": "1 s"},
                            "isp.maildrop.messages": 20})
    ev = t["link_events"]
    assert (ev["detail"] == "NO CARRIER (V.42: N400 retransmissions)").any()
    assert out.messages_lost == 0 and t["messages"]["intact"].all()


def test_burst_noise_without_v42_corrupts_but_loses_nothing(tmp_path):
    out, t = run(tmp_path, {"link.error_correction": False,
                            "link.burst_noise": {"mean_time_between": "20 s",
                                                 "mean_length": "1 s",
                                                 "bit_error_rate": 1e-4}})
    assert out.messages_lost == 0 and t["messages"]["intact"].all()
    assert len(t["messages"].drop_duplicates("sha256")) == 8


def test_fcs32_is_negotiated_when_asked(tmp_path):
    _o, t16 = run(tmp_path)
    _o, t32 = run(tmp_path / "b", {"ppp.fcs32": True})
    a, b = t16["sessions"].iloc[0], t32["sessions"].iloc[0]
    # two more FCS octets per PPP frame each way
    assert b["down_framing_octets"] - a["down_framing_octets"] >= 2 * a["down_packets"] - 5
    assert b["up_framing_octets"] > a["up_framing_octets"]
    pd.testing.assert_series_equal(t16["messages"]["sha256"], t32["messages"]["sha256"])


def test_the_mail_password_is_masked_in_the_results_too(tmp_path):
    from dialsim.experiment.run import run_scenario

    sc = scenario_from_text(BASE).with_overrides({"subscriber.pop3_password": "s3cr3tpop"})
    run_scenario(sc, tmp_path / "o")
    text = (tmp_path / "o" / "scenario.yaml").read_text()
    assert "s3cr3tpop" not in text and "tanstaaf" not in text and "*********" in text
    assert "s3cr3tpop" not in repr(sc.subscriber)
