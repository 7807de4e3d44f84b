"""Student's t quantile and the confidence interval of a mean (dialsim.results.stats)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialsim.results.stats import mean_confidence_interval, student_t_cdf, student_t_quantile

# t(0.975, df) and t(0.95, df) from the printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2)
TABLE = [
    (1, 12.706, 6.314), (2, 4.303, 2.920), (3, 3.182, 2.353), (4, 2.776, 2.132),
    (5, 2.571, 2.015), (9, 2.262, 1.833), (10, 2.228, 1.812), (19, 2.093, 1.729),
    (29, 2.045, 1.699), (30, 2.042, 1.697), (100, 1.984, 1.660),
]


@pytest.mark.parametrize(("df", "t975", "t95"), TABLE)
def test_quantiles_match_the_printed_table(df, t975, t95):
    assert round(student_t_quantile(0.975, df), 3) == t975
    assert round(student_t_quantile(0.95, df), 3) == t95


def test_large_df_tends_to_the_normal():
    assert student_t_quantile(0.975, 1e7) == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-5)


def test_cauchy_closed_form():
    # df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi
    for t in (-30.0, -1.0, 0.3, 2.0, 50.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


@given(p=st.floats(0.001, 0.999), df=st.floats(0.5, 500))
def test_quantile_inverts_the_cdf_and_is_symmetric(p, df):
    q = student_t_quantile(p, df)
    assert student_t_cdf(q, df) == pytest.approx(p, abs=1e-9)
    assert student_t_quantile(1 - p, df) == pytest.approx(-q, abs=1e-9 * max(1, abs(q)))


def test_interval_by_hand_and_degenerate_inputs():
    mean, low, high, n = mean_confidence_interval([1.0, 2.0, 3.0])
    half = 4.302653 * 1.0 / math.sqrt(3)  # s = 1
    assert (mean, n) == (2.0, 3)
    assert low == pytest.approx(2.0 - half, rel=1e-6) and high == pytest.approx(2.0 + half, rel=1e-6)
    mean, low, high, n = mean_confidence_interval([5.0, float("nan"), None])
    assert (mean, n) == (5.0, 1) and math.isnan(low) and math.isnan(high)
    assert math.isnan(mean_confidence_interval([])[0])
    assert mean_confidence_interval([1.0, 2.0, 3.0], 0.99)[2] > 2.0 + half
    with pytest.raises(ValueError):
        student_t_quantile(1.0, 3)
