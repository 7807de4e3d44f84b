"""Non-durable mail storage in memory, for simulated replications.

A simulated replication's maildrops, the ISP's relay queue and the
subscriber's inbox are scratch: they are thrown away when the replication
ends, and simulated time does not pass while they work.  Writing them as real
Maildir folders (even without ``fsync``) was the largest cost of a short
replication, so the simulation keeps them here instead:

- :class:`MemoryStore` has the interface of
  :class:`~dialsim.mail.maildrop.MaildirStore` that the POP3 server's storage
  effects and the experiment use (``open`` with an exclusive per-user lock,
  ``deliver``, ``peek``, ``count``, ``import_messages``);
- :class:`MemoryDelivery` is :class:`~dialsim.mail.delivery.MaildirDelivery`'s
  recipient policy with delivery into a :class:`MemoryStore` and a relay queue
  held as a list (``queued()``);
- :class:`MemoryInbox` is :class:`~dialsim.mail.maildrop.ClientInbox`'s
  interface over a list.

Every observable the POP3 server sees is the Maildir store's: the Maildir key
is the UIDL (or its SHA-1 when it is no valid UIDL), messages are listed in
the order of their keys, sizes are those of the octets delivered (or a key's
``W=``/``S=`` field), and a message reads back with CRLF line ends.  So a
seed gives the same UIDLs, sizes and tables on either store (tested in
``tests/unit/test_memory_store.py``).  Real time (``dialsim modem``) and
``dialsim mailhost`` keep real, durable Maildirs.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from dialsim.mail.delivery import Delivery
from dialsim.mail.maildrop import (
    InvalidUserName,
    MaildropSnapshot,
    import_into,
    key_order,
    size_for_key,
    to_crlf,
    uidl_for,
    valid_user,
)

__all__ = ["MemoryDelivery", "MemoryInbox", "MemoryMaildrop", "MemoryStore"]


class MemoryMaildrop(MaildropSnapshot):
    """One locked user's messages as a POP3 maildrop (a snapshot taken at open)."""

    def __init__(self, store: MemoryStore, user: str) -> None:
        self._store = store
        self._user = user
        box = store._boxes.get(user, {})
        self._keys = sorted(box, key=key_order)
        self._sizes = [size_for_key(k, len(box[k])) for k in self._keys]
        self.skipped = 0

    def __repr__(self) -> str:
        return f"<MemoryMaildrop {self._user} messages={len(self._keys)}>"

    def read(self, index: int) -> bytes:
        data = self._store._boxes.get(self._user, {}).get(self._keys[index])
        if data is None:
            raise FileNotFoundError(f"message {self._keys[index]} of {self._user} is gone")
        return to_crlf(data)

    def _remove(self, indexes: list[int]) -> None:
        box = self._store._boxes.get(self._user, {})
        for i in indexes:
            box.pop(self._keys[i], None)  # gone already: the goal is reached

    def _unlock(self) -> None:
        self._store._locked.discard(self._user)


class MemoryStore:
    """Per-user maildrops in memory: user -> {Maildir key: message octets as delivered}."""

    def __init__(self) -> None:
        self._boxes: dict[str, dict[str, bytes]] = {}
        self._locked: set[str] = set()
        self._names = itertools.count()

    def __repr__(self) -> str:
        return f"<MemoryStore users={len(self._boxes)}>"

    def _check(self, user: str) -> str:
        if not isinstance(user, str) or not valid_user(user):
            raise InvalidUserName(f"invalid user name {user!r}: expected [a-z0-9._-]+")
        return user

    def put(self, user: str, key: str, data: bytes) -> None:
        """Store ``data`` as it is under ``key`` (what a Maildir file would hold)."""
        box = self._boxes.setdefault(self._check(user), {})
        if key in box:
            raise FileExistsError(f"{user}: message {key} exists")
        box[key] = bytes(data)

    def open(self, user: str) -> MemoryMaildrop | None:
        """Lock and open ``user``'s maildrop; None if it is locked or the name is invalid."""
        if not isinstance(user, str) or not valid_user(user) or user in self._locked:
            return None
        self._locked.add(user)
        return MemoryMaildrop(self, user)

    def peek(self, user: str) -> dict[str, bytes]:
        """UIDL -> message (CRLF) of ``user``'s maildrop, without taking the lock."""
        box = self._boxes.get(self._check(user), {})
        return {uidl_for(k): to_crlf(box[k]) for k in sorted(box, key=key_order)}

    def deliver(self, user: str, message: bytes, *, name: str | None = None) -> str:
        """Store ``message`` (line ends normalised to CRLF) in ``user``'s maildrop."""
        data = to_crlf(message)
        key = name or f"{next(self._names)}.M0P0Q0.memory,S={len(data)}"
        self.put(user, key, data)
        return key

    def import_messages(self, user: str, source: Path | str, *, name_for=None) -> int:
        """Copy every message of an mbox file or a Maildir folder into ``user``'s maildrop."""
        return import_into(self, user, source, name_for)

    def count(self, user: str) -> int:
        """Messages currently in ``user``'s maildrop."""
        return len(self._boxes.get(self._check(user), {}))


class MemoryDelivery(Delivery):
    """The SMTP side's recipient policy (:class:`~dialsim.mail.delivery.Delivery`),
    delivering into ``store`` and an in-memory relay queue: the same acceptance,
    copy names and counts as :class:`~dialsim.mail.delivery.MaildirDelivery`."""

    def __init__(self, store: MemoryStore, local_domains, users, **kw) -> None:
        super().__init__(local_domains, users, **kw)
        self.store = store
        self._queue: list[tuple[str, list[str], bytes]] = []

    def deliver(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Keep the message for every recipient: local users' maildrops, the relay queue."""
        users, remote = self.split_recipients(recipients)
        for user in users:
            self.store.put(user, self._unique(len(data)), data)
        if remote:
            self._unique(len(self.envelope(sender, remote)) + len(data))  # named as on disk
            self._queue.append((sender, list(remote), bytes(data)))
        self.delivered += len(users) + (1 if remote else 0)

    def queued(self) -> list[tuple[str, list[str], bytes]]:
        """(sender, recipients, message) of every message in the relay queue."""
        return list(self._queue)


class MemoryInbox:
    """The subscriber's inbox in memory (:class:`~dialsim.mail.maildrop.ClientInbox`'s interface).

    ``keep_content=False`` (a simulated replication's scratch inbox, never read
    back: the accounting hashes each message as it arrives) keeps each
    message's key and size only, so a 10,000-message maildrop is not held
    twice, at the ISP and here."""

    def __init__(self, *, keep_content: bool = True) -> None:
        self._messages: dict[str, bytes | None] = {}
        self._keep = keep_content

    def __repr__(self) -> str:
        return f"<MemoryInbox messages={len(self._messages)}>"

    def add(self, message: bytes) -> str:
        key = f"{len(self._messages)}.M0P0Q{len(self._messages)}.inbox,S={len(message)}"
        self._messages[key] = bytes(message) if self._keep else None
        return key

    def keys(self) -> list[str]:
        return sorted(self._messages, key=key_order)

    def read(self, key: str) -> bytes:
        data = self._messages[key]
        if data is None:
            raise LookupError(f"{key}: this inbox keeps no content (keep_content=False)")
        return data

    def messages(self) -> list[bytes]:
        return [self.read(k) for k in self.keys()]

    def __len__(self) -> int:
        return len(self._messages)
