"""The simulation's in-memory mail store (dialsim.mail.memory) against the Maildir one.

The memory store replaces scratch Maildir folders in simulated replications, so
everything the servers and the experiment can observe must be the same: UIDLs,
sizes, order, contents, locking, commits, relay queue and copy names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialsim.experiment.world import run_replication
from dialsim.mail.delivery import MaildirDelivery
from dialsim.mail.maildrop import ClientInbox, MaildirStore, sim_name
from dialsim.mail.memory import MemoryDelivery, MemoryInbox, MemoryStore
from dialsim.results.tables import build_tables
from dialsim.scenario.load import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

# Message octets with CR, LF and CRLF in them (to_crlf must act alike), and keys
# with and without a size field, some not valid UIDLs (too long, a space).
_octets = st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n"))
_names = st.one_of(
    st.builds(lambda t, q: sim_name(t, q, "isp"), st.floats(0, 1e6), st.integers(0, 10**6)),
    st.builds(lambda q, s: f"{q}.M1P2Q3.h,S={s}", st.integers(0, 99), st.integers(0, 10**6)),
    st.builds(lambda q: f"{q}.M1P2Q3.{'x' * 70}", st.integers(0, 99)),
    st.builds(lambda q: f"{q} with space", st.integers(0, 99)),
)


def _both(tmp_path):
    return MemoryStore(), MaildirStore(tmp_path / "spool", durable=False)


def _observe(store, user: str = "alice") -> tuple:
    drop = store.open(user)
    assert store.open(user) is None  # locked while open
    listing = drop.scan()
    texts = [drop.read(i) for i in range(len(listing))]
    drop.release()
    return listing, texts, store.peek(user), store.count(user)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_names, _octets), max_size=8, unique_by=lambda x: x[0]),
       st.sets(st.integers(0, 7)))
def test_memory_store_serves_what_a_maildir_serves(tmp_path_factory, messages, deleted):
    memory, disk = _both(tmp_path_factory.mktemp("m"))
    for store in (memory, disk):
        for name, data in messages:
            store.deliver("alice", data, name=name)
    assert _observe(memory) == _observe(disk)
    deleted = {i for i in deleted if i < len(messages)}
    for store in (memory, disk):
        drop = store.open("alice")
        drop.commit(deleted)
        assert store.open("alice") is not None  # commit unlocks
    assert memory.peek("alice") == disk.peek("alice")
    assert memory.count("alice") == len(messages) - len(deleted)


def test_a_message_delivered_while_open_is_not_in_the_snapshot(tmp_path):
    for store in _both(tmp_path):
        store.deliver("alice", b"Subject: 1\r\n\r\none\r\n", name=sim_name(0, 1, "isp"))
        drop = store.open("alice")
        store.deliver("alice", b"Subject: 2\r\n\r\ntwo\r\n", name=sim_name(5, 2, "isp"))
        assert len(drop.scan()) == 1
        drop.commit({0})
        assert [m for m in store.peek("alice").values()] == [b"Subject: 2\r\n\r\ntwo\r\n"]


def test_invalid_users_are_refused_alike(tmp_path):
    for store in _both(tmp_path):
        assert store.open("../etc") is None
        with pytest.raises(ValueError):
            store.deliver("../etc", b"x")


def _deliveries(tmp_path):
    names = iter(range(1, 100))
    memory = MemoryStore()
    naming = dict(hostname="isp", name_source=lambda: sim_name(7.0, next(names), "isp"))
    mem = MemoryDelivery(memory, ["isp.example"], {"alice"}, **naming)
    names2 = iter(range(1, 100))
    disk_store = MaildirStore(tmp_path / "spool", durable=False)
    disk = MaildirDelivery(tmp_path / "spool", ["isp.example"], {"alice"}, durable=False,
                           hostname="isp",
                           name_source=lambda: sim_name(7.0, next(names2), "isp"))
    return (memory, mem), (disk_store, disk)


def test_memory_delivery_names_queues_and_counts_as_the_maildir_one(tmp_path):
    sides = _deliveries(tmp_path)
    for _store, delivery in sides:
        delivery.deliver("bob@x.example", ["alice@isp.example", "ALICE@isp.example",
                                           "carol@far.example"], b"Subject: a\n\nhi\n")
        delivery.deliver("carol@far.example", ["alice@isp.example"], b"Subject: b\r\n\r\n")
        with pytest.raises(ValueError):
            delivery.deliver("x@y.example", ["nobody@isp.example"], b"Subject: c\r\n\r\n")
        assert delivery.recipient_ok("nobody@isp.example", from_subscriber=True)[0] == 550
    (mem_store, mem), (disk_store, disk) = sides
    assert mem.delivered == disk.delivered == 3
    assert mem.queued() == disk.queued() == [("bob@x.example", ["carol@far.example"],
                                              b"Subject: a\n\nhi\n")]
    assert _observe(mem_store) == _observe(disk_store)


def test_memory_inbox_keeps_what_it_is_given(tmp_path):
    mem, disk = MemoryInbox(), ClientInbox(tmp_path / "inbox", durable=False)
    for inbox in (mem, disk):
        for m in (b"one\r\n", b"two\n", b"one\r\n"):
            inbox.add(m)
    assert mem.messages() == disk.messages() == [b"one\r\n", b"two\n", b"one\r\n"]
    assert len(mem) == len(disk) == 3
    assert [mem.read(k) for k in mem.keys()] == mem.messages()


@pytest.mark.parametrize("name", ["quickstart", "store-and-forward"])
def test_a_replication_gives_the_same_tables_in_memory_and_on_maildirs(tmp_path, name):
    """UIDLs, sizes, timings: every table equal, and the loss accounting too."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    if name == "store-and-forward":
        sc = sc.with_overrides(duration="5 h")
    mem = run_replication(sc, 0)
    disk = run_replication(sc, 0, tmp_path / "rep", maildirs=True)
    assert (tmp_path / "rep" / "isp-mail").is_dir()  # it did use Maildir folders
    a, b = build_tables([mem.recorder]), build_tables([disk.recorder])
    for table in a:
        pd.testing.assert_frame_equal(a[table], b[table], check_exact=True)
    assert len(a["messages"]) > 0 and a["messages"]["uidl"].str.len().gt(0).any()
    assert (mem.messages_lost, mem.messages_duplicated) == (disk.messages_lost,
                                                            disk.messages_duplicated)
    assert mem.stored == disk.stored and mem.retrieved_count == disk.retrieved_count


def test_a_scratch_inbox_keeps_keys_and_sizes_but_no_content():
    full, scratch = MemoryInbox(), MemoryInbox(keep_content=False)
    for inbox in (full, scratch):
        for m in (b"one\r\n", b"two\n"):
            inbox.add(m)
    assert scratch.keys() == full.keys() and len(scratch) == 2
    assert all(k.endswith(f"S={len(m)}") for k, m in zip(scratch.keys(), full.messages(),
                                                           strict=True))
    with pytest.raises(LookupError, match="keeps no content"):
        scratch.read(scratch.keys()[0])
