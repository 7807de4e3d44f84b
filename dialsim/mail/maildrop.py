"""POP3 maildrops on real Maildir folders (maildir(5) layout, via stdlib :mod:`mailbox`).

Scope:

- :class:`MaildirStore` implements :class:`dialsim.proto.pop3.MaildropStore`: one
  Maildir per user at ``root/<user>/`` (the same folders the SMTP side's
  :mod:`dialsim.mail.delivery` writes).  User names must match
  ``[a-z0-9_-][a-z0-9._-]*`` so no name can reach outside ``root`` (no "/", no
  "..", no dot-folders such as the relay queue).
- ``open`` takes an exclusive per-user lock (RFC 1939 section 8: the maildrop is
  locked for the TRANSACTION state): ``flock`` on a lock file held open for
  the session (it holds our pid, for people).  The kernel drops the lock with
  the process, so a lock file left by a dead process -- even one whose pid was
  reused since -- never blocks the maildrop.  ``open`` returns None when the
  lock is held, which the server answers with ``-ERR [IN-USE]``.  ``open``
  also removes files older than 36 hours from ``tmp/`` (maildir(5): a delivery
  that died half-way).
- :class:`MaildirMaildrop` snapshots the message list at open without reading
  any message: sizes come from the name's ``W=`` (the CRLF size, as Dovecot
  writes it) or ``S=`` field, else from ``stat``; both are exact for every
  file dialsim writes (CRLF line ends on disk, RFC 1939 section 11).  Entries
  that are no message (a dangling symlink, a folder, a dot-file) are skipped
  and counted in ``skipped``.  ``read`` returns the message with CRLF line
  ends.  UIDLs are the Maildir keys (unique and stable across sessions); a
  key that is not 1..70 printable octets 0x21..0x7E (RFC 1939 section 7) is
  replaced by its SHA-1 hex digest.  ``commit`` removes the deleted messages,
  fsyncs the folders, then unlocks.
- Writes are durable: file in ``tmp/``, ``fsync``, ``rename`` into ``new/``,
  ``fsync`` of ``new/`` (stdlib ``mailbox`` does not fsync).  Used by
  :meth:`MaildirStore.deliver` and by :class:`ClientInbox`, the subscriber's
  own Maildir that retrieved messages are written into.  A scratch store
  (``durable=False``: a simulated replication's folders, thrown away after
  it) keeps the same layout and steps but skips every ``fsync``.
- :meth:`MaildirStore.import_messages` copies an existing mbox file or Maildir
  folder (e.g. one named in a scenario) into a user's maildrop.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import mailbox
import os
import re
import socket
import stat
import threading
import time
from pathlib import Path

__all__ = [
    "MaildirStore",
    "MaildirMaildrop",
    "MaildropSnapshot",
    "ClientInbox",
    "InvalidUserName",
    "valid_user",
    "MAX_USER",
    "remove_stale_tmp",
    "to_crlf",
    "write_durably",
    "key_order",
    "size_for_key",
    "uidl_for",
]

MAX_USER = 64  # octets of a user name (its Maildir folder's name)
_USER_RE = re.compile(rf"[a-z0-9_-][a-z0-9._-]{{0,{MAX_USER - 1}}}")
_UIDL_RE = re.compile(r"[\x21-\x7e]{1,70}")
_KEY_ORDER_RE = re.compile(r"(\d+)(?:\.M(\d+))?(?:P\d+)?(?:Q(\d+))?")
_SIZE_FIELD_RE = re.compile(r",([SW])=(\d{1,15})(?=[,:]|$)")
_LOCK_NAME = "dialsim-pop3.lock"
TMP_MAX_AGE = 36 * 3600.0  # maildir(5): a file in tmp/ untouched this long is a dead delivery

_counter = itertools.count()
_held: set[Path] = set()  # maildirs locked by this process
_held_guard = threading.Lock()


class InvalidUserName(ValueError):
    """A user name that could name a path outside the store, or is malformed."""


def valid_user(user: str) -> bool:
    """A name POP3 and the Maildir tree can both serve: lower-case letters,
    digits, ``.``, ``_``, ``-``; no leading dot; at most :data:`MAX_USER`."""
    return bool(_USER_RE.fullmatch(user))


def to_crlf(data: bytes) -> bytes:
    """Every line end as CRLF (bare LF becomes CRLF; CRLF stays).  Data with
    no bare LF comes back as it is, without a copy."""
    if data.count(b"\n") == data.count(b"\r\n"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_maildir(folder: Path, durable: bool = True) -> None:
    if all((folder / sub).is_dir() for sub in ("tmp", "new", "cur")):
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(exist_ok=True)
    if durable:
        _fsync_dir(folder)
        if created:
            _fsync_dir(folder.parent)


def unique_name(host: str | None = None) -> str:
    """A Maildir file name unique on this machine (wall clock, pid, counter, host)."""
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    host = (host or socket.gethostname()).replace("/", "_").replace(":", "_").replace(",", "_")
    return f"{sec}.M{usec}P{os.getpid()}Q{next(_counter)}.{host}"


def sim_name(t: float, seq: int, host: str = "sim") -> str:
    """A Maildir file name for simulated time ``t``: reproducible for a seed,
    unlike :func:`unique_name`, which reads the wall clock and the pid."""
    sec = int(t)
    usec = int(round((t - sec) * 1_000_000))
    return f"{sec}.M{usec}P0Q{seq}.{host}"


def write_synced(path: Path, data: bytes, durable: bool = True) -> None:
    """Create ``path`` (it must not exist), write all of ``data`` and fsync it
    (unless not ``durable``); on failure after creating it, remove it again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_durably(
    folder: Path, data: bytes, name: str | None = None, *, durable: bool = True
) -> str:
    """Write one message into Maildir ``folder``: tmp/, fsync, rename to new/, fsync new/.

    Returns the Maildir key (the file name): ``name`` when given (simulations
    pass :func:`sim_name` so UIDLs repeat for a seed), else a fresh unique one
    with the size in its ``S=`` field (so listing needs no ``stat``).
    On failure the tmp file is removed and the error propagates; nothing
    appears in ``new/``.  ``durable=False`` (scratch folders) skips the fsyncs.
    """
    folder = Path(folder)
    _ensure_maildir(folder, durable)
    name = name or f"{unique_name()},S={len(data)}"
    tmp = folder / "tmp" / name
    try:
        write_synced(tmp, data, durable)
        os.rename(tmp, folder / "new" / name)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    if durable:
        _fsync_dir(folder / "new")
    return name


def key_order(key: str) -> tuple[int, int, int, str]:
    """Sort key of Maildir keys: delivery time, microseconds, sequence (the order
    POP3 lists a maildrop in)."""
    m = _KEY_ORDER_RE.match(key)
    if not m:
        return (1 << 62, 0, 0, key)
    return (int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), key)


def uidl_for(key: str) -> str:
    """A Maildir key as its UIDL: itself when it is 1..70 printable octets
    (RFC 1939 section 7), else its SHA-1 hex digest."""
    if _UIDL_RE.fullmatch(key):
        return key
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()


def _size_field(name: str) -> int | None:
    fields = dict(_SIZE_FIELD_RE.findall(name.partition(":")[0]))
    size = fields.get("W") or fields.get("S")
    return int(size) if size is not None else None


def size_for_key(name: str, stored_octets: int) -> int:
    """A message's size as POP3 sends it: the name's W= (CRLF size) or S=
    field, else the octets stored (dialsim writes CRLF, so it is exact)."""
    size = _size_field(name)
    return stored_octets if size is None else size


def _size_of(name: str, entry: os.DirEntry) -> int:
    """:func:`size_for_key` of a file, which is only ``stat``-ed when its name has no size."""
    size = _size_field(name)
    return entry.stat().st_size if size is None else size


def _scan_messages(folder: Path) -> tuple[dict[str, tuple[Path, int]], int]:
    """Maildir key -> (file, size) of the messages in new/ and cur/, read from
    the directory alone; and how many entries were skipped as no message."""
    found: dict[str, tuple[Path, int]] = {}
    skipped = 0
    for sub in ("new", "cur"):
        with os.scandir(folder / sub) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if not entry.is_file():  # a folder, a dangling symlink, a device
                        skipped += 1
                        continue
                    size = _size_of(entry.name, entry)
                except OSError:  # vanished meanwhile, or unreadable
                    skipped += 1
                    continue
                found[entry.name.split(":")[0]] = (Path(entry.path), size)
    return found, skipped


def remove_stale_tmp(folder: Path, now: float | None = None) -> int:
    """maildir(5): delete files in ``tmp/`` not accessed for 36 hours; how many."""
    now = time.time() if now is None else now
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(folder / "tmp") as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) or now - max(st.st_atime, st.st_mtime) < TMP_MAX_AGE:
                    continue
                os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


class MaildropSnapshot:
    """What every POP3 maildrop shares: the message keys and sizes taken at open,
    ``scan``, and UPDATE's ``commit`` (remove the deleted, then unlock) and
    ``release`` (unlock, idempotent).  A store says how to remove
    (``_remove``) and how to unlock (``_unlock``)."""

    _keys: list[str]
    _sizes: list[int]
    _released: bool = False

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def scan(self) -> list[tuple[int, str]]:
        return [(size, uidl_for(k)) for size, k in zip(self._sizes, self._keys, strict=True)]

    def commit(self, deleted: set[int]) -> None:
        """UPDATE state: remove the deleted messages, then unlock."""
        if self._released:
            raise RuntimeError("maildrop already released")
        try:
            self._remove(sorted(deleted))
        finally:
            self.release()

    def release(self) -> None:
        """Unlock without changes (idempotent)."""
        if not self._released:
            self._released = True
            self._unlock()

    def _remove(self, indexes: list[int]) -> None:
        raise NotImplementedError

    def _unlock(self) -> None:
        raise NotImplementedError


class MaildirMaildrop(MaildropSnapshot):
    """One locked user's Maildir as a POP3 maildrop (a snapshot taken at open)."""

    def __init__(self, folder: Path, lock: _Lock, *, durable: bool = True) -> None:
        self.folder = folder
        self.durable = durable
        self._lock = lock
        found, self.skipped = _scan_messages(folder)
        self._keys = sorted(found, key=key_order)
        self._paths = [found[k][0] for k in self._keys]
        self._sizes = [found[k][1] for k in self._keys]

    def __repr__(self) -> str:
        return f"<MaildirMaildrop {self.folder} messages={len(self._keys)} skipped={self.skipped}>"

    def read(self, index: int) -> bytes:
        with open(self._paths[index], "rb") as f:
            return to_crlf(f.read())

    def _remove(self, indexes: list[int]) -> None:
        """Unlink the deleted messages, durably (the directories fsynced)."""
        for i in indexes:
            with contextlib.suppress(FileNotFoundError):  # gone: the goal is reached
                os.unlink(self._paths[i])
        if indexes and self.durable:
            _fsync_dir(self.folder / "new")
            _fsync_dir(self.folder / "cur")

    def _unlock(self) -> None:
        self._lock.release()


class _Lock:
    """The exclusive lock of one maildrop: ``flock`` on ``dialsim-pop3.lock``,
    held open while the session lasts; the kernel drops it with the process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / _LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        for _ in range(3):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            try:  # the file we locked must still be the one at the path
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return True
        return False

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None
        with _held_guard:
            _held.discard(self.folder)


class MaildirStore:
    """Per-user Maildirs under ``root``, the maildrops the POP3 server's storage
    effects reach.  ``durable=False``: a scratch store (no fsync)."""

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root).resolve()
        self.durable = durable

    def __repr__(self) -> str:
        return f"<MaildirStore {self.root}>"

    def folder(self, user: str) -> Path:
        """The Maildir of ``user``; raises :class:`InvalidUserName` for unsafe names."""
        if not isinstance(user, str) or not valid_user(user):
            raise InvalidUserName(f"invalid user name {user!r}: expected [a-z0-9._-]+")
        folder = (self.root / user).resolve()
        if folder.parent != self.root:
            raise InvalidUserName(f"user name {user!r} leaves the maildrop root")
        return folder

    def open(self, user: str) -> MaildirMaildrop | None:
        """Lock and open ``user``'s maildrop; None if it is locked already.

        An invalid user name also gives None (the server then answers -ERR
        rather than touching any path).
        """
        try:
            folder = self.folder(user)
        except InvalidUserName:
            return None
        _ensure_maildir(folder, self.durable)
        lock = _Lock(folder)
        with _held_guard:
            if folder in _held or not lock.acquire():
                return None
            _held.add(folder)
        try:
            if self.durable:
                remove_stale_tmp(folder)
            return MaildirMaildrop(folder, lock, durable=self.durable)
        except BaseException:
            lock.release()
            raise

    def peek(self, user: str) -> dict[str, bytes]:
        """UIDL -> message (CRLF) of ``user``'s maildrop as it is on disk, without
        taking the lock: for accounting after a run, never for serving POP3."""
        folder = self.folder(user)
        if not folder.exists():
            return {}
        mb = mailbox.Maildir(str(folder), factory=None, create=False)
        return {uidl_for(k): to_crlf(mb.get_bytes(k)) for k in sorted(mb.keys(), key=key_order)}

    def deliver(self, user: str, message: bytes, *, name: str | None = None) -> str:
        """Write ``message`` (line ends normalised to CRLF) durably into ``user``'s new/."""
        return write_durably(self.folder(user), to_crlf(message), name, durable=self.durable)

    def import_messages(self, user: str, source: Path | str, *, name_for=None) -> int:
        """Copy every message of an mbox file or a Maildir folder into ``user``'s maildrop.

        Returns the number of messages copied.  The source is not modified.
        ``name_for(seq)`` names the copies (simulations: :func:`sim_name`).
        """
        return import_into(self, user, source, name_for)

    def count(self, user: str) -> int:
        """Messages currently in ``user``'s maildrop (no lock taken)."""
        folder = self.folder(user)
        if not folder.is_dir():
            return 0
        return len(mailbox.Maildir(str(folder), factory=None, create=False))


def source_messages(source: Path | str):
    """The messages of an mbox file or a Maildir folder (in key order), one at a time."""
    src = Path(source)
    if src.is_dir():
        box: mailbox.Mailbox = mailbox.Maildir(str(src), factory=None, create=False)
        keys = sorted(box.keys(), key=key_order)
    elif src.is_file():
        box = mailbox.mbox(str(src), factory=None, create=False)
        keys = list(box.keys())
    else:
        raise FileNotFoundError(f"{src}: no such mbox file or Maildir folder")
    try:
        for k in keys:
            yield box.get_bytes(k)
    finally:
        box.close()


def import_into(store, user: str, source: Path | str, name_for=None) -> int:
    """``store.deliver`` every message of ``source`` to ``user``; how many.
    ``name_for(seq)`` names the copies (simulations: :func:`sim_name`)."""
    n = 0
    for seq, data in enumerate(source_messages(source)):
        store.deliver(user, data, name=name_for(seq) if name_for is not None else None)
        n += 1
    return n


class ClientInbox:
    """The subscriber's own Maildir, into which retrieved messages are written
    durably (``durable=False``: a scratch inbox, no fsync; a simulated
    replication keeps its inbox in memory, :class:`dialsim.mail.memory.MemoryInbox`)."""

    def __init__(self, path: Path | str, *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        _ensure_maildir(self.path, durable)

    def __repr__(self) -> str:
        return f"<ClientInbox {self.path}>"

    def add(self, message: bytes) -> str:
        """Store one message durably; returns its Maildir key."""
        return write_durably(self.path, message, durable=self.durable)

    def keys(self) -> list[str]:
        mb = mailbox.Maildir(str(self.path), factory=None, create=False)
        return sorted(mb.keys(), key=key_order)

    def read(self, key: str) -> bytes:
        mb = mailbox.Maildir(str(self.path), factory=None, create=False)
        return mb.get_bytes(key)

    def messages(self) -> list[bytes]:
        mb = mailbox.Maildir(str(self.path), factory=None, create=False)
        return [mb.get_bytes(k) for k in sorted(mb.keys(), key=key_order)]

    def __len__(self) -> int:
        return len(self.keys())
