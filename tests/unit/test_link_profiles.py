"""Modem profiles and dial timing: rate sets, draws, limits, V.250 timing."""

import numpy as np
import pytest

from dialsim.link.profiles import CONNECT_RATE_LIMITS, PROFILES, DialTiming, get_profile


def test_all_required_profiles_exist_with_sane_numbers():
    assert set(PROFILES) >= {"v22bis", "v32bis", "v34", "v34_33600", "v90"}
    for p in PROFILES.values():
        lo, hi = p.limits_bps
        assert all(lo <= r <= hi for r in p.rates_bps)
        assert p.handshake_s[0] > 0 and p.latency_one_way_s > 0 and p.tx_buffer_bytes > 0
        assert CONNECT_RATE_LIMITS[p.name] == p.limits_bps
    assert max(PROFILES["v34"].rates_bps) == 28800
    assert max(PROFILES["v34_33600"].rates_bps) == 33600
    assert max(PROFILES["v32bis"].rates_bps) == 14400
    assert max(PROFILES["v22bis"].rates_bps) == 2400


def test_handshake_ranges_follow_generations():
    # calibrated: docs/fidelity.md (F16, HOWTO, F14) and docs/link-model.md
    assert PROFILES["v22bis"].handshake_s == (6.0, 8.0)
    assert PROFILES["v32bis"].handshake_s == (8.0, 11.0)
    assert PROFILES["v34"].handshake_s == (13.0, 19.0)
    assert PROFILES["v90"].handshake_s == (15.0, 25.0)
    rng = np.random.default_rng(0)
    for _ in range(100):
        assert 15.0 <= PROFILES["v90"].draw_handshake(rng) <= 25.0


def test_rate_draw_distribution_and_line_quality_correlation():
    p = PROFILES["v34"]
    rng = np.random.default_rng(1)
    draws = [p.draw_rates(rng)[0] for _ in range(4000)]
    share = {r: draws.count(r) / len(draws) for r in p.rates_bps}
    for r, w in zip(p.rates_bps, p.rate_weights, strict=True):
        assert share[r] == pytest.approx(w / sum(p.rate_weights), abs=0.03)
    # V.90: the same line quality drives both directions
    v90 = PROFILES["v90"]
    pairs = [v90.draw_rates(rng) for _ in range(2000)]
    down, up = np.array(pairs).T
    assert np.corrcoef(down, up)[0, 1] > 0.5
    assert down.min() >= 40000 and down.max() <= 53333.34
    assert 45000 < down.mean() < 49000


def test_fixed_rates_and_unknown_profile():
    assert PROFILES["v34"].fixed_rates(26400) == (26400, 26400)
    assert PROFILES["v90"].fixed_rates(44000) == (44000, 31200.0)
    with pytest.raises(ValueError, match="out of reach"):
        PROFILES["v32bis"].fixed_rates(28800)
    with pytest.raises(ValueError, match="unknown modem profile"):
        get_profile("bell103")


def test_dialing_time_s11():
    t = DialTiming()
    assert t.dialing_time("555-0123") == pytest.approx(7 * 0.19)
    assert t.dialing_time("9,555-0123") == pytest.approx(8 * 0.19 + 2.0)  # comma: S8
    assert t.dialing_time("*70,") == pytest.approx(3 * 0.19 + 2.0)
