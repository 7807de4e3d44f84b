"""The strategies real clients offered (batch commit, size limit, smallest first,
leave on server for a while), driving the real POP3 client and server in memory."""

from __future__ import annotations

import pytest

from dialsim.hosts.retrieval import RetrievalPolicy

from .test_retrieval import Run, sha, world  # noqa: F401  (the fixture)


def verbs(run: Run) -> list[str]:
    return [f"{r.verb} {r.arg_shown}".strip() for r in run.responses]


def test_batch_commit_quits_after_n_and_says_there_is_more(world):  # noqa: F811
    store, accounts, msgs = world
    policy = RetrievalPolicy("delete", batch=5)
    seen: set[str] = set()
    got = []
    for expected_more in (True, True, False):
        run = Run(store, accounts, policy, seen)
        run.pump()
        assert run.session.quit_ok and run.session.more is expected_more
        got += [b for _, _, b, _ in run.session.retrieved]
    assert [sha(b) for b in got] == [sha(m) for m in msgs]  # 5 + 5 + 2, each once
    assert store.count("alice") == 0


def test_batch_commit_of_a_naive_client_relies_on_the_deletes(world):  # noqa: F811
    store, accounts, msgs = world
    run = Run(store, accounts, RetrievalPolicy("delete", use_uidl=False, batch=4), set())
    run.pump()
    assert [n for _, n, _, _ in run.session.retrieved] == [1, 2, 3, 4]
    assert store.count("alice") == 8 and run.session.more
    run = Run(store, accounts, RetrievalPolicy("delete", use_uidl=False, batch=4), set())
    run.pump()
    assert [sha(b) for _, _, b, _ in run.session.retrieved] == [sha(m) for m in msgs[4:8]]


def test_size_limit_skips_large_messages_or_fetches_their_headers(world):  # noqa: F811
    store, accounts, msgs = world
    limit = sorted(map(len, msgs))[6]
    large = [i + 1 for i, m in enumerate(msgs) if len(m) > limit]
    run = Run(store, accounts, RetrievalPolicy("keep", size_limit=limit), set())
    run.pump()
    assert run.session.over_limit == large
    assert "LIST" in verbs(run) and not any(v.startswith("TOP") for v in verbs(run))
    assert {n for _, n, _, _ in run.session.retrieved}.isdisjoint(large)
    headers_seen: set[str] = set()
    policy = RetrievalPolicy("keep", size_limit=limit, over_limit="headers")
    run = Run(store, accounts, policy, set(), headers_seen=headers_seen)
    run.pump()
    assert [n for _, n, _, _ in run.session.headers] == large
    assert [v for v in verbs(run) if v.startswith("TOP")] == [f"TOP {n} 0" for n in large]
    for _, n, body, _ in run.session.headers:
        assert msgs[n - 1].startswith(body[:-2]) and b"\r\n\r\n" in body  # header and the blank line
    # once seen, a header is not fetched again
    run = Run(store, accounts, policy, set(), headers_seen=headers_seen)
    run.pump()
    assert run.session.headers == []


def test_smallest_first_orders_by_list_sizes(world):  # noqa: F811
    store, accounts, msgs = world
    run = Run(store, accounts, RetrievalPolicy("delete", order="smallest_first"), set())
    run.pump()
    sizes = [len(b) for _, _, b, _ in run.session.retrieved]
    assert sizes == sorted(sizes) and len(sizes) == 12 and store.count("alice") == 0


def test_leave_on_server_deletes_once_kept_long_enough(world):  # noqa: F811
    store, accounts, msgs = world
    policy = RetrievalPolicy("keep", leave_for=3600.0)
    seen: set[str] = set()
    when: dict[str, float] = {}
    run = Run(store, accounts, policy, seen, retrieved_at=when)
    run.pump()
    assert len(when) == 12 and store.count("alice") == 12
    later = Run(store, accounts, policy, seen, retrieved_at=when)
    later.t = 1800.0
    later.pump()
    assert later.session.retrieved == [] and store.count("alice") == 12
    much_later = Run(store, accounts, policy, seen, retrieved_at=when)
    much_later.t = 3700.0
    much_later.pump()
    assert much_later.session.retrieved == [] and store.count("alice") == 0


@pytest.mark.parametrize("kw", [
    dict(mode="keep", use_uidl=False, batch=3),
    dict(mode="delete", leave_for=10.0),
    dict(mode="keep", over_limit="maybe"),
    dict(mode="keep", order="largest_first"),
    dict(mode="keep", batch=-1),
])
def test_policy_refuses_strategies_that_cannot_work(kw):
    with pytest.raises(ValueError):
        RetrievalPolicy(**kw)
