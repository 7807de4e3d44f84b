"""Durable final delivery for the ISP's SMTP server: Maildir and the relay queue.

Implements the ``RecipientPolicy`` of :mod:`dialsim.proto.smtp`, and
``deliver`` carries out the server's ``DeliverMessage`` effect.  Scope:

- Local recipients (a domain in ``local_domains``) are delivered into
  ``root/<user>/new/`` in the Maildir layout (D. J. Bernstein's maildir(5)):
  write the file in ``tmp/``, ``fsync`` it, ``rename`` it into ``new/``, ``fsync``
  the ``new/`` directory.  Only then does ``deliver`` return and the SMTP server
  (told so by its driver) answer 250 (RFC 5321 4.1.1.4 / 6.1: the server takes responsibility for the
  message only when it says 250).  The POP3 side reads the same folders.
- Other recipients (a subscriber relaying through the ISP) go to the ISP's
  outbound relay queue ``root/.outbound/new/``, equally durable: one file per
  message whose first line is a JSON envelope (sender, recipients) followed by
  the message bytes.  :func:`read_queued` parses it back.
- A message for several recipients is made durable as a whole: every copy is
  written and synced in ``tmp/`` first; only then are they renamed.  If a write
  fails, the temporary files are removed and the error propagates (-> 451), so
  a retry does not deliver duplicates.

User names are the local part lower-cased and must be what the POP3 side can
serve (:func:`dialsim.mail.maildrop.valid_user`: ``[a-z0-9_-][a-z0-9._-]``, at
most 64 octets); anything else (a path, "..", ".outbound") is refused 550 5.1.3
before it can name a file.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

from dialsim.mail.maildrop import (
    _ensure_maildir,
    _fsync_dir,
    unique_name,
    valid_user,
    write_synced,
)

__all__ = ["Delivery", "MaildirDelivery", "read_queued", "OUTBOUND", "POSTMASTER"]

OUTBOUND = ".outbound"
POSTMASTER = "postmaster"


def read_queued(path: Path) -> tuple[str, list[str], bytes]:
    """Parse one relay-queue file back into (sender, recipients, message bytes)."""
    raw = Path(path).read_bytes()
    head, _, data = raw.partition(b"\n")
    env = json.loads(head)
    return env["sender"], list(env["recipients"]), data


class Delivery:
    """The SMTP side's recipient policy and the naming of delivered copies, without
    the storage: :class:`MaildirDelivery` keeps copies in Maildir folders,
    :class:`dialsim.mail.memory.MemoryDelivery` in memory.

    ``users`` is a set of user names or a callable ``name -> bool``;
    ``postmaster`` names the user who gets mail for ``postmaster@`` a local
    domain; without one it goes to the Maildir ``root/postmaster/``.  Either
    way it is accepted (RFC 5321 4.5.1: every SMTP server must take mail for
    postmaster).
    """

    def __init__(
        self,
        local_domains: Iterable[str],
        users: set[str] | frozenset[str] | Callable[[str], bool],
        *,
        hostname: str | None = None,
        postmaster: str | None = None,
        name_source: Callable[[], str] | None = None,
    ) -> None:
        self.local_domains = frozenset(d.lower() for d in local_domains)
        self._users = users
        self.hostname = (hostname or socket.gethostname()).replace("/", "_").replace(":", "_")
        self.postmaster = postmaster  # user who receives postmaster@ (RFC 5321 4.5.1)
        self.delivered = 0  # copies made durable (one per local user or queue file)
        # Maildir file names; a simulation passes names from simulated time so
        # UIDLs repeat for a seed (the default reads the wall clock and pid).
        self.name_source = name_source

    # -- policy
    def user_for(self, address: str) -> str | None:
        """The Maildir user of a local address, or None if it cannot be one."""
        local, _, _domain = address.rpartition("@")
        local = local.lower()
        if local == POSTMASTER and self.postmaster:
            local = self.postmaster
        return local if valid_user(local) else None

    def is_local(self, address: str) -> bool:
        return address.rpartition("@")[2].lower() in self.local_domains

    def _known(self, user: str) -> bool:
        if user == (self.postmaster or POSTMASTER):
            return True
        users = self._users
        return bool(users(user)) if callable(users) else user in users

    def recipient_ok(self, address: str, *, from_subscriber: bool) -> tuple[int, str]:
        if self.is_local(address):
            user = self.user_for(address)
            if user is None:
                return 550, "5.1.3 Bad destination mailbox address syntax"
            if not self._known(user):
                return 550, "5.1.1 No such user here"
            return 250, "2.1.5 Recipient OK"
        if from_subscriber:
            return 250, "2.1.5 Recipient OK, will relay"
        return 554, "5.7.1 Relay access denied"

    def split_recipients(self, recipients: list[str]) -> tuple[list[str], list[str]]:
        """(local users, once each, in order; remote recipients); ValueError for a
        local address that is no mailbox here."""
        users: list[str] = []
        remote: list[str] = []
        for rcpt in recipients:
            if self.is_local(rcpt):
                user = self.user_for(rcpt)
                if user is None or not self._known(user):
                    raise ValueError(f"not a local mailbox: {rcpt!r}")
                if user not in users:
                    users.append(user)
            else:
                remote.append(rcpt)
        return users, remote

    @staticmethod
    def envelope(sender: str, remote: list[str]) -> bytes:
        """The first line of a relay-queue file: the JSON envelope."""
        return json.dumps({"sender": sender, "recipients": remote}).encode() + b"\n"

    def _unique(self, size: int) -> str:
        if self.name_source is not None:
            return self.name_source()
        return f"{unique_name(self.hostname)},S={size}"


class MaildirDelivery(Delivery):
    """Recipient policy and delivery to per-user Maildirs under ``root`` and a relay
    queue (see :class:`Delivery` for the policy).  ``durable=False``: a scratch
    store, no fsync."""

    def __init__(
        self,
        root: Path | str,
        local_domains: Iterable[str],
        users: set[str] | frozenset[str] | Callable[[str], bool],
        *,
        hostname: str | None = None,
        postmaster: str | None = None,
        name_source: Callable[[], str] | None = None,
        durable: bool = True,
    ) -> None:
        super().__init__(local_domains, users, hostname=hostname, postmaster=postmaster,
                         name_source=name_source)
        self.root = Path(root)
        self.durable = durable  # False: a simulation's scratch folders (no fsync)

    # -- delivery
    def maildir(self, user: str) -> Path:
        return self.root / user

    def outbound(self) -> Path:
        return self.root / OUTBOUND

    def queued(self) -> list[tuple[str, list[str], bytes]]:
        """(sender, recipients, message) of every file in the relay queue's new/."""
        queue = self.outbound() / "new"
        return [read_queued(p) for p in sorted(queue.glob("*"))] if queue.is_dir() else []

    def deliver(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Make the message durable for every recipient before returning."""
        users, remote = self.split_recipients(recipients)
        copies = [(self.maildir(user), data) for user in users]  # (maildir folder, content)
        if remote:
            copies.append((self.outbound(), self.envelope(sender, remote) + data))

        written: list[tuple[Path, Path]] = []  # (tmp path, new path)
        try:
            for folder, content in copies:
                _ensure_maildir(folder, self.durable)
                name = self._unique(len(content))
                tmp = folder / "tmp" / name
                write_synced(tmp, content, self.durable)
                written.append((tmp, folder / "new" / name))
        except BaseException:
            for tmp, _ in written:
                try:
                    tmp.unlink()
                except OSError:
                    pass
            raise
        for tmp, new in written:
            os.rename(tmp, new)
        if self.durable:
            for _, new in written:
                _fsync_dir(new.parent)
        self.delivered += len(written)
