"""Maildir maildrops (dialsim.mail.maildrop) and accounts (dialsim.mail.accounts)."""

from __future__ import annotations

import mailbox
import os

import pytest

from dialsim.mail.accounts import Accounts, AccountsFileError
from dialsim.mail.maildrop import (
    ClientInbox,
    InvalidUserName,
    MaildirStore,
    to_crlf,
    write_durably,
)
from dialsim.proto.pop3 import Pop3Server

from .mailserve import Served, drain

MSGS = [
    b"Subject: one\r\n\r\nfirst\r\n.dot line\r\n",
    b"Subject: two\n\nLF only\n",  # LF line ends on disk: served and counted as CRLF
    b"Subject: three\r\n\r\n" + b"x" * 500 + b"\r\n",
]


@pytest.fixture
def store(tmp_path):
    s = MaildirStore(tmp_path / "spool")
    return s


def test_deliver_writes_into_new_and_scan_counts_crlf_octets(store):
    keys = [store.deliver("alice", m) for m in MSGS]
    folder = store.folder("alice")
    assert sorted(os.listdir(folder / "new")) == sorted(keys)
    assert os.listdir(folder / "tmp") == []
    drop = store.open("alice")
    scan = drop.scan()
    assert [size for size, _ in scan] == [len(to_crlf(m)) for m in MSGS]
    assert [drop.read(i) for i in range(3)] == [to_crlf(m) for m in MSGS]
    assert drop.read(1) == b"Subject: two\r\n\r\nLF only\r\n"
    drop.release()


def test_uidls_are_unique_printable_and_stable_across_reopen(store):
    for m in MSGS:
        store.deliver("alice", m)
    d1 = store.open("alice")
    u1 = [u for _, u in d1.scan()]
    d1.release()
    assert len(set(u1)) == 3
    for u in u1:
        assert 1 <= len(u) <= 70 and all(0x21 <= c <= 0x7E for c in u.encode())
    store2 = MaildirStore(store.root)  # a new server process, same spool
    d2 = store2.open("alice")
    assert [u for _, u in d2.scan()] == u1
    d2.commit({0})
    d3 = store.open("alice")
    assert [u for _, u in d3.scan()] == u1[1:]
    d3.release()


def test_long_or_odd_keys_get_hashed_uidls(store):
    folder = store.folder("bob")
    folder.parent.mkdir(parents=True)
    mailbox.Maildir(str(folder), create=True).close()
    (folder / "new" / ("9" * 80)).write_bytes(b"Subject: x\n\nbody\n")
    drop = store.open("bob")
    ((_, uid),) = drop.scan()
    assert len(uid) == 40 and uid != "9" * 80
    drop.release()


def test_lock_is_exclusive_until_release_or_commit(store):
    store.deliver("alice", MSGS[0])
    d = store.open("alice")
    assert d is not None
    assert store.open("alice") is None
    assert MaildirStore(store.root).open("alice") is None  # the lock file is shared
    d.release()
    d2 = store.open("alice")
    assert d2 is not None
    d2.commit(set())
    assert store.open("alice") is not None


def test_stale_lock_file_of_dead_process_is_taken_over(store):
    store.deliver("alice", MSGS[0])
    lock = store.folder("alice") / "dialsim-pop3.lock"
    lock.write_text("999999999\n")  # no such pid
    d = store.open("alice")
    assert d is not None
    d.release()
    assert not lock.exists()


def test_commit_removes_only_deleted_messages(store):
    for m in MSGS:
        store.deliver("alice", m)
    d = store.open("alice")
    d.commit({0, 2})
    assert store.count("alice") == 1
    d = store.open("alice")
    assert d.read(0) == to_crlf(MSGS[1])
    d.release()


def test_release_changes_nothing(store):
    for m in MSGS:
        store.deliver("alice", m)
    store.open("alice").release()
    assert store.count("alice") == 3


@pytest.mark.parametrize("user", ["..", "../etc", "a/b", "/abs", ".outbound", "Alice", "", "a\x00b", "x" * 65])
def test_path_traversal_and_bad_names_rejected(store, user):
    with pytest.raises(InvalidUserName):
        store.folder(user)
    with pytest.raises(InvalidUserName):
        store.deliver(user, b"x\r\n")
    assert store.open(user) is None
    assert not any(p.name == "etc" for p in store.root.parent.iterdir())


def test_symlinked_user_folder_outside_root_rejected(store, tmp_path):
    store.root.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "evil").symlink_to(outside)
    with pytest.raises(InvalidUserName):
        store.folder("evil")
    assert store.open("evil") is None


def test_import_from_mbox_and_maildir(store, tmp_path):
    mbox_path = tmp_path / "old.mbox"
    mbox_path.write_bytes(
        b"From a@example.com Mon Jan  1 00:00:00 1996\nSubject: m1\n\nbody one\n\n"
        b"From b@example.com Mon Jan  1 00:00:01 1996\nSubject: m2\n\nbody two\n"
    )
    assert store.import_messages("carol", mbox_path) == 2
    src = tmp_path / "oldmaildir"
    for m in MSGS:
        write_durably(src, m)
    assert store.import_messages("carol", src) == 3
    d = store.open("carol")
    got = [d.read(i) for i in range(len(d.scan()))]
    d.release()
    assert got[0].startswith(b"Subject: m1\r\n") and b"body one" in got[0]
    assert got[2:] == [to_crlf(m) for m in MSGS]
    with pytest.raises(FileNotFoundError):
        store.import_messages("carol", tmp_path / "missing")


def test_client_inbox_durable_add(tmp_path):
    inbox = ClientInbox(tmp_path / "home" / "Maildir")
    k = inbox.add(MSGS[0])
    assert inbox.read(k) == MSGS[0]
    assert len(inbox) == 1 and inbox.messages() == [MSGS[0]]
    assert (tmp_path / "home" / "Maildir" / "new" / k).exists()


def test_pop3_server_over_maildir_store(store):
    for m in MSGS:
        store.deliver("alice", m)
    srv = Served(Pop3Server(Accounts({"alice": "pw"}), now=0.0), store)
    srv.receive(b"USER alice\r\nPASS pw\r\nDELE 2\r\nQUIT\r\n", 1.0)
    out = drain(srv)
    assert b"+OK alice's maildrop has 3 messages" in out
    assert out.endswith(b"(2 messages left)\r\n")
    assert store.count("alice") == 2


# ---------------------------------------------------------------------------
# Accounts


def write_accounts(path, text, mode):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_accounts_load_and_check(tmp_path):
    p = write_accounts(tmp_path / "accts", "# subscribers\nalice:s3cret\n\nbob:pa:ss\n", 0o600)
    acc = Accounts.load(p)
    assert acc.check_password("alice", "s3cret")
    assert not acc.check_password("alice", "S3cret")
    assert not acc.check_password("nobody", "s3cret")
    assert acc.check_password("bob", "pa:ss")
    assert acc.apop_secret("alice") == "s3cret" and acc.apop_secret("nobody") is None
    assert "alice" in acc and len(acc) == 2
    assert "s3cret" not in repr(acc) and "s3cret" not in str(acc)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_accounts_file_readable_by_others_refused(tmp_path, mode):
    p = write_accounts(tmp_path / "accts", "alice:s3cret\n", mode)
    with pytest.raises(AccountsFileError) as ei:
        Accounts.load(p)
    msg = str(ei.value)
    assert "\n" not in msg and "group/others" in msg and "s3cret" not in msg


def test_accounts_file_malformed_line_names_line(tmp_path):
    p = write_accounts(tmp_path / "accts", "alice:x\nbroken line\n", 0o600)
    with pytest.raises(AccountsFileError, match=r"accts:2: expected user:password"):
        Accounts.load(p)
    with pytest.raises(AccountsFileError):
        Accounts.load(tmp_path / "none")


# ---------------------------------------------------------------------------
# Under hostile conditions (issue 10)


def test_stale_lock_whose_pid_was_reused_does_not_block(store):
    """The lock is an flock the kernel drops with its process: a lock file
    naming a live, unrelated process (a reused pid) is no lock."""
    store.deliver("alice", MSGS[0])
    lock = store.folder("alice") / "dialsim-pop3.lock"
    lock.write_text("1\n")  # init: alive, and certainly not ours
    d = store.open("alice")
    assert d is not None
    assert store.open("alice") is None  # while held it is exclusive
    d.release()


def test_listing_reads_no_message(store, monkeypatch):
    """Sizes at PASS come from the Maildir name or stat, never from reading
    every message (a 200 MB maildrop took 0.57 s on the event loop)."""
    import builtins

    for m in MSGS:
        store.deliver("alice", m)
    real_open, real_os_open = builtins.open, os.open

    def guard(path, *a, **kw):
        assert "/new/" not in str(path) and "/cur/" not in str(path), f"read {path}"
        return real_open(path, *a, **kw)

    def os_guard(path, *a, **kw):
        assert "/new/" not in str(path) and "/cur/" not in str(path), f"opened {path}"
        return real_os_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", guard)
    monkeypatch.setattr(os, "open", os_guard)
    d = store.open("alice")
    sizes = [size for size, _ in d.scan()]
    monkeypatch.undo()
    assert sizes == [len(to_crlf(m)) for m in MSGS]
    d.release()


def test_sizes_from_the_names_w_and_s_fields_else_stat(store):
    folder = store.folder("alice")
    store.deliver("alice", MSGS[0])  # makes the folders
    (folder / "new" / "100.M1P1Q1.h,S=7,W=9:2,").write_bytes(b"a\nb\nc\n\n")  # Dovecot: W= is CRLF size
    (folder / "cur" / "101.M1P1Q1.h,S=4:2,S").write_bytes(b"abcd")
    (folder / "new" / "102.M1P1Q1.h").write_bytes(b"12345\r\n")
    d = store.open("alice")
    assert sorted(size for size, _ in d.scan()) == sorted([len(to_crlf(MSGS[0])), 9, 4, 7])
    d.release()


def test_bad_entries_are_skipped_and_counted_not_fatal(store):
    folder = store.folder("alice")
    for m in MSGS[:2]:
        store.deliver("alice", m)
    (folder / "new" / "200.M1P1Q1.dangling").symlink_to(folder / "nowhere")
    (folder / "cur" / "201.M1P1Q1.a-folder").mkdir()
    (folder / "new" / ".hidden").write_bytes(b"not a message")
    d = store.open("alice")
    assert len(d.scan()) == 2 and d.skipped == 2
    first = d.keys[0]
    os.unlink(folder / "new" / first)  # removed between listing and reading
    with pytest.raises(FileNotFoundError):
        d.read(0)
    assert d.read(1) == to_crlf(MSGS[1])
    d.release()


def test_tmp_files_untouched_for_36_hours_are_removed_at_open(store):
    import time

    store.deliver("alice", MSGS[0])
    tmp = store.folder("alice") / "tmp"
    old, fresh = tmp / "1.M1P1Q1.died", tmp / "2.M2P2Q2.writing"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    past = time.time() - 37 * 3600
    os.utime(old, (past, past))
    os.utime(fresh, (past, time.time() - 3600))  # written an hour ago: a live delivery
    store.open("alice").release()
    assert not old.exists() and fresh.exists()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("Carol:pw", "upper-case"),
        ("../evil:pw", "only a-z"),
        ("a/b:pw", "only a-z"),
        (".hidden:pw", "only a-z"),
        ("x" * 70 + ":pw", "longer than 64"),
        ("bob:", "empty password"),
        (" bob:pw", "only a-z"),
    ],
)
def test_accounts_file_refuses_names_pop3_or_maildir_cannot_serve(tmp_path, line, why):
    p = write_accounts(tmp_path / "accts", f"alice:ok\n{line}\n", 0o600)
    with pytest.raises(AccountsFileError, match=rf"accts:2: .*{why}") as ei:
        Accounts.load(p)
    assert "\n" not in str(ei.value) and ":pw" not in str(ei.value)


def test_accounts_file_refuses_duplicates_and_names_the_line(tmp_path):
    p = write_accounts(tmp_path / "accts", "# x\nbob:a\n\nalice:b\nbob:c\n", 0o600)
    with pytest.raises(AccountsFileError, match=r"accts:5: user 'bob' listed twice"):
        Accounts.load(p)


def test_accounts_passwords_exactly_as_written(tmp_path):
    p = tmp_path / "accts"
    p.write_bytes(b"alice:  two leading\r\nbob:trailing  \ncarol:a:b c\n")
    p.chmod(0o600)
    acc = Accounts.load(p)
    assert acc.check_password("alice", "  two leading")  # CRLF line end is not part of it
    assert acc.check_password("bob", "trailing  ") and not acc.check_password("bob", "trailing")
    assert acc.check_password("carol", "a:b c")
    # ... and POP3's PASS takes the rest of the line as it is (RFC 1939)
    srv = Served(Pop3Server(acc, now=0.0, login_failure_delay=0), MaildirStore(tmp_path / "m"))
    srv.receive(b"USER bob\r\nPASS trailing  \r\nQUIT\r\n", 1.0)
    assert b"+OK bob's maildrop has 0 messages" in drain(srv)


def test_accounts_decode_error_names_the_line_not_the_byte(tmp_path):
    p = tmp_path / "accts"
    p.write_bytes(b"alice:ok\nbob:p\xe9ss\n")
    p.chmod(0o600)
    with pytest.raises(AccountsFileError) as ei:
        Accounts.load(p)
    msg = str(ei.value)
    assert msg == f"{p}:2: not valid UTF-8"
    assert "0xe9" not in msg and "\\xe9" not in msg


def test_login_throttle_per_user_and_per_address():
    from dialsim.mail.accounts import LoginThrottle

    t = LoginThrottle(free=2, base=1.0, max_delay=8.0, window=100.0)
    t.record("alice", "10.0.0.1", False, 0.0)
    assert t.delay("alice", "10.0.0.9", 1.0) == 0.0  # two failures are free
    t.record("alice", "10.0.0.1", False, 1.0)
    assert t.delay("alice", "10.0.0.9", 2.0) == 1.0  # then the user waits, from anywhere
    t.record("alice", "10.0.0.1", False, 3.0)
    assert t.delay("alice", "10.0.0.9", 4.0) == 2.0  # twice as long after each failure
    assert t.delay("bob", "10.0.0.1", 4.0) == 2.0  # the address, for anyone
    assert t.delay("bob", "10.0.0.2", 4.0) == 0.0
    for i in range(10):
        t.record("alice", "10.0.0.1", False, 5.0 + i)
    assert t.delay("alice", "", 20.0) == 8.0  # doubling, capped
    assert t.delay("alice", "", 15.0 + 101.0) == 0.0  # forgotten after the window
    t.record("bob", "10.0.0.1", True, 20.0)
    assert t.delay("carol", "10.0.0.1", 21.0) == 8.0  # a success clears the user, not the address
    small = LoginThrottle(max_entries=10)
    for i in range(100):
        small.record(f"u{i}", f"a{i}", False, 0.0)
    assert len(small._failures) == 10
