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
