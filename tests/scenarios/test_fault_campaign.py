"""The fault-injection campaign, bounded: one drop in every phase of the reference
call for the strategies whose outcome differs most; nothing lost, and exactly the
duplicates each strategy implies.  (benchmarks/fault_campaign.py runs 200+ drops
per strategy and writes docs/fault-campaign.md.)"""

from __future__ import annotations

import pytest

from dialsim.experiment import campaign
from dialsim.experiment.campaign import PHASES, STRATEGIES, campaign_table, run_campaign

BOUNDED = {k: STRATEGIES[k] for k in ("delete, UIDL", "delete, no UIDL", "batch 3, no UIDL",
                                      "size limit, headers")}


@pytest.fixture(scope="module")
def drops():
    return run_campaign(1, BOUNDED)


def test_every_phase_is_hit_and_every_run_keeps_the_rules(drops):
    table = campaign_table(drops)
    assert set(table["phase"]) == set(PHASES)
    assert len(drops) == len(BOUNDED) * len(PHASES)
    assert [d.problems for d in drops if not d.ok] == []
    assert sum(d.lost for d in drops) == 0


def test_the_expectation_is_not_trivially_zero(drops):
    """The naive clients do get duplicates where the rule says so, so the check
    above could fail: inside RETR some, between DELE and QUIT all of the
    session's, and none once the UPDATE state committed."""
    naive = {d.phase: d for d in drops if d.strategy == "delete, no UIDL"}
    assert naive["retr"].duplicates > 0
    assert naive["dele_to_quit"].duplicates == 8  # all of them: the QUIT never arrived
    assert naive["greeting"].duplicates == 0
    batch = {d.phase: d for d in drops if d.strategy == "batch 3, no UIDL"}
    assert 0 < batch["dele_to_quit"].duplicates <= 3  # only the interrupted batch
    uidl = [d for d in drops if d.strategy == "delete, UIDL"]
    assert all(d.duplicates == 0 for d in uidl)
    assert any(d.octets_wasted > 0 for d in drops if d.phase == "retr")


def test_expected_duplicates_follows_the_commit(tmp_path):
    """A drop after the server committed (QUIT arrived, its answer did not) costs
    the naive client nothing; one before it, the whole session."""
    strategy = STRATEGIES["delete, no UIDL"]
    ref = campaign._reference(strategy, tmp_path)
    (t_quit, t_quit_done), = ref.windows["update"]
    (t_commit,) = ref.commits
    assert t_quit < t_commit < t_quit_done
    before = campaign.expected_duplicates(strategy, ref.tables, ref.commits, t_commit - 1e-6)
    after = campaign.expected_duplicates(strategy, ref.tables, ref.commits, t_commit + 1e-6)
    assert (before, after) == (8, 0)
    assert campaign.expected_duplicates(STRATEGIES["delete, UIDL"], ref.tables, ref.commits,
                                        t_commit - 1e-6) == 0
