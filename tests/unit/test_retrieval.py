"""Retrieval strategy (dialsim.hosts.retrieval) driving a real POP3 client against the
real server over Maildir maildrops, wired together in memory."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dialsim.hosts.retrieval import RetrievalPolicy, RetrievalSession
from dialsim.mail.accounts import Accounts
from dialsim.mail.maildrop import ClientInbox, MaildirStore
from dialsim.mail.synth import synthesize_messages
from dialsim.proto.pop3 import Pop3Client, Pop3Server, ResponseReceived

from .mailserve import Served, drain

CHALLENGE = "<4711.820454400@pop.isp.example>"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture
def world(tmp_path):
    store = MaildirStore(tmp_path / "spool")
    accounts = Accounts({"alice": "s3cret"})
    msgs = synthesize_messages(
        np.random.default_rng(11),
        12,
        median_size_octets=3000,
        attachment_share=0.3,
        to_addr="alice@isp.example",
        domain="isp.example",
        start_time=820454400.0,
    )
    for m in msgs:
        store.deliver("alice", m)
    return store, accounts, msgs


class Run:
    """One dial-up session: client, server and strategy, pumped in memory."""

    def __init__(self, store, accounts, policy, seen, *, password="s3cret", **kw):
        self.t = 0.0
        self.server = Served(Pop3Server(accounts, apop_challenge=CHALLENGE, now=self.t), store)
        self.client = Pop3Client(now=self.t)
        self.session = RetrievalSession(
            self.client, user="alice", password=password, policy=policy, seen_uidls=seen, **kw
        )
        self.round_trips = 0
        self.responses: list[ResponseReceived] = []

    def pump(self, drop_after_retrieved: int | None = None) -> None:
        while not self.session.done:
            self.t += 0.1
            down = drain(self.server)
            if not down:
                dl = self.server.next_deadline()
                if dl is not None and dl < self.t + 60:
                    self.t = dl
                    self.server.on_timer(dl)
                    continue
                raise AssertionError("stalled")
            self.round_trips += 1
            self.client.receive(down, self.t)
            for ev in self.client.events():
                if isinstance(ev, ResponseReceived):
                    self.responses.append(ev)
                self.session.on_event(ev, self.t)
                if drop_after_retrieved is not None and len(self.session.retrieved) >= drop_after_retrieved:
                    self.server.connection_lost(self.t)
                    self.client.connection_lost(self.t)
                    for e in self.client.events():
                        self.session.on_event(e, self.t)
                    return
            self.server.receive(drain(self.client), self.t)


def test_delete_mode_retrieves_every_message_intact_and_empties_maildrop(world, tmp_path):
    store, accounts, msgs = world
    run = Run(store, accounts, RetrievalPolicy("delete"), set())
    run.pump()
    s = run.session
    assert s.quit_ok and s.error is None
    assert s.message_count == 12 and s.maildrop_octets == sum(map(len, msgs))
    assert [sha(b) for _, _, b, _ in s.retrieved] == [sha(m) for m in msgs]
    assert [n for _, n, _, _ in s.retrieved] == list(range(1, 13))
    assert sorted(s.deleted) == list(range(1, 13))
    assert store.count("alice") == 0
    inbox = ClientInbox(tmp_path / "home")
    for _, _, body, _ in s.retrieved:
        inbox.add(body)
    assert sorted(map(sha, inbox.messages())) == sorted(map(sha, msgs))
    verbs = [r.verb for r in run.responses]
    assert verbs[:4] == ["USER", "PASS", "STAT", "UIDL"] and verbs[-1] == "QUIT"
    assert verbs.count("RETR") == 12 and verbs.count("DELE") == 12


def test_keep_mode_with_uidl_fetches_only_new_mail(world):
    store, accounts, msgs = world
    seen: set[str] = set()
    run = Run(store, accounts, RetrievalPolicy("keep"), seen)
    run.pump()
    assert len(run.session.retrieved) == 12 and len(seen) == 12
    assert store.count("alice") == 12
    assert "DELE" not in [r.verb for r in run.responses]
    store.deliver("alice", b"Subject: new\r\n\r\nfresh\r\n")
    run2 = Run(store, accounts, RetrievalPolicy("keep"), seen)
    run2.pump()
    assert [b for _, _, b, _ in run2.session.retrieved] == [b"Subject: new\r\n\r\nfresh\r\n"]
    assert run2.session.retrieved[0][1] == 13 and len(run2.session.skipped) == 12


def test_drop_mid_session_loses_no_mail_and_uidl_client_gets_no_duplicates(world):
    store, accounts, msgs = world
    seen: set[str] = set()
    run = Run(store, accounts, RetrievalPolicy("delete"), seen)
    run.pump(drop_after_retrieved=5)
    assert run.session.done and not run.session.quit_ok
    assert run.session.error == "connection_lost"
    assert store.count("alice") == 12  # DELE never took effect
    got = [b for _, _, b, _ in run.session.retrieved]
    run2 = Run(store, accounts, RetrievalPolicy("delete"), seen)
    run2.pump()
    assert run2.session.quit_ok
    assert run2.session.skipped == [1, 2, 3, 4, 5]
    got += [b for _, _, b, _ in run2.session.retrieved]
    assert [sha(b) for b in got] == [sha(m) for m in msgs]  # each exactly once
    assert store.count("alice") == 0


def test_drop_mid_session_naive_client_fetches_duplicates(world):
    store, accounts, msgs = world
    seen: set[str] = set()
    policy = RetrievalPolicy("delete", use_uidl=False)
    run = Run(store, accounts, policy, seen)
    run.pump(drop_after_retrieved=4)
    run2 = Run(store, accounts, policy, seen)
    run2.pump()
    assert "UIDL" not in [r.verb for r in run.responses + run2.responses]
    got = [b for _, _, b, _ in run.session.retrieved + run2.session.retrieved]
    assert len(got) == 16 and len(set(got)) == 12  # the first 4 twice
    assert all(u is None for u, _, _, _ in run2.session.retrieved)
    assert store.count("alice") == 0


def test_pipelining_gives_same_mail_in_fewer_round_trips(world, tmp_path):
    store, accounts, msgs = world
    plain = Run(store, accounts, RetrievalPolicy("keep"), set())
    plain.pump()
    piped = Run(store, accounts, RetrievalPolicy("keep"), set(), pipelining=True)
    piped.pump()
    assert [b for _, _, b, _ in piped.session.retrieved] == [b for _, _, b, _ in plain.session.retrieved]
    assert piped.round_trips < plain.round_trips - 8
    store2 = MaildirStore(tmp_path / "spool2")
    for m in msgs:
        store2.deliver("alice", m)
    piped_del = Run(store2, accounts, RetrievalPolicy("delete"), set(), pipelining=True)
    piped_del.pump()
    assert piped_del.session.quit_ok and store2.count("alice") == 0
    assert len(piped_del.session.retrieved) == 12


def test_apop_login(world):
    store, accounts, _ = world
    run = Run(store, accounts, RetrievalPolicy("keep"), set(), use_apop=True)
    run.pump()
    assert run.responses[0].verb == "APOP" and run.responses[0].ok
    assert len(run.session.retrieved) == 12


def test_bad_password_quits_cleanly(world):
    store, accounts, _ = world
    run = Run(store, accounts, RetrievalPolicy("delete"), set(), password="nope")
    run.pump()
    assert run.session.error == "auth" and run.session.quit_ok
    assert run.session.retrieved == [] and store.count("alice") == 12
    assert "nope" not in repr(run.session)


def test_maildrop_in_use(world):
    store, accounts, _ = world
    held = store.open("alice")
    run = Run(store, accounts, RetrievalPolicy("delete"), set())
    run.pump()
    assert run.session.error == "in_use" and run.session.retrieved == []
    held.release()


def test_empty_maildrop_goes_straight_to_quit(tmp_path):
    store = MaildirStore(tmp_path / "spool")
    run = Run(store, Accounts({"alice": "s3cret"}), RetrievalPolicy("delete"), set())
    run.pump()
    assert [r.verb for r in run.responses] == ["USER", "PASS", "STAT", "QUIT"]
    assert run.session.message_count == 0 and run.session.quit_ok


def test_policy_validation():
    with pytest.raises(ValueError):
        RetrievalPolicy("archive")
