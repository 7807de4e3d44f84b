"""Subscriber accounts: user -> password, the POP3 server's ``Authenticator``,
and the throttle that slows password guessing.

Scope: RFC 1939 USER/PASS checks and the APOP shared secret (section 7; as in
most 1990s servers the APOP secret is the account password).  ``repr`` never
shows a password.

The accounts file (``dialsim mailhost --accounts FILE``), UTF-8, one account
per line::

    # a comment: a line whose first non-blank character is "#"
    alice:tanstaafl
    bob: a password with spaces and a : colon

- the user name is everything before the first ":"; it must be a name the
  POP3 server and the Maildir tree can serve (``MAILDIR/<user>/``): lower-case
  letters, digits, ".", "_" and "-", not starting with ".", at most 64
  octets -- so no path characters, no upper case (SMTP folds local parts to
  lower case), and each name at most once;
- the password is everything after the first ":" up to the end of the line,
  exactly as written (spaces and colons included; only the line end, LF or
  CRLF, is not part of it); it must not be empty;
- blank lines and comments are ignored;
- the file must not be readable or writable by group or others (``chmod
  600``), like ssh refuses a private key with loose permissions.

A file that breaks a rule is refused with ``FILE:LINE: what is wrong`` (never
showing a password or its bytes).
"""

from __future__ import annotations

import hmac
import os
import stat
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path

from dialsim.mail.maildrop import MAX_USER, valid_user

__all__ = ["Accounts", "AccountsFileError", "LoginThrottle"]


class AccountsFileError(ValueError):
    """The accounts file is unsafe or malformed (one-line message)."""


def _parse_line(path: Path, lineno: int, raw: bytes) -> tuple[str, str] | None:
    """One line of the accounts file -> (user, password), None for a blank or comment line."""
    where = f"{path}:{lineno}"
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AccountsFileError(f"{where}: not valid UTF-8") from None
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    user, sep, password = line.partition(":")
    if not sep:
        raise AccountsFileError(f"{where}: expected user:password")
    if not valid_user(user):
        if user.lower() != user and valid_user(user.lower()):
            why = "upper-case letters (SMTP folds addresses to lower case)"
        elif len(user.encode()) > MAX_USER:
            why = f"longer than {MAX_USER} octets"
        else:
            why = "only a-z 0-9 . _ - allowed, not starting with '.'"
        raise AccountsFileError(f"{where}: user name {user!r}: {why}")
    if not password:
        raise AccountsFileError(f"{where}: user {user!r} has an empty password")
    return user, password


class Accounts:
    """Users and their passwords; implements ``dialsim.proto.pop3.Authenticator``."""

    def __init__(self, passwords: Mapping[str, str] | None = None) -> None:
        self._passwords: dict[str, str] = dict(passwords or {})

    @classmethod
    def load(cls, path: Path | str) -> Accounts:
        """Read an accounts file (format in the module docstring); raises
        :class:`AccountsFileError` with ``FILE:LINE`` for a bad one."""
        path = Path(path)
        try:
            st = os.stat(path)
            data = path.read_bytes()
        except OSError as e:
            raise AccountsFileError(f"{path}: cannot read accounts file: {e.strerror}") from None
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o066:
            raise AccountsFileError(
                f"{path}: accounts file is readable or writable by group/others "
                f"(mode {mode:04o}); chmod 600 it"
            )
        passwords: dict[str, str] = {}
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            entry = _parse_line(path, lineno, raw)
            if entry is None:
                continue
            user, password = entry
            if user in passwords:
                raise AccountsFileError(f"{path}:{lineno}: user {user!r} listed twice")
            passwords[user] = password
        return cls(passwords)

    def add(self, user: str, password: str) -> None:
        self._passwords[user] = password

    def check_password(self, user: str, password: str) -> bool:
        expected = self._passwords.get(user)
        given = password.encode("utf-8", "surrogateescape")
        if expected is None:
            # Compare anyway so an unknown user costs the same as a wrong password.
            hmac.compare_digest(given, given)
            return False
        return hmac.compare_digest(expected.encode("utf-8", "surrogateescape"), given)

    def apop_secret(self, user: str) -> str | None:
        return self._passwords.get(user)

    def users(self) -> list[str]:
        return sorted(self._passwords)

    def __contains__(self, user: object) -> bool:
        return user in self._passwords

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._passwords))

    def __len__(self) -> int:
        return len(self._passwords)

    def __repr__(self) -> str:
        return f"Accounts(users={sorted(self._passwords)!r})"

    __str__ = __repr__


class LoginThrottle:
    """Slows password guessing across sessions; implements
    ``dialsim.proto.pop3.LoginThrottle``.

    Failures are counted per user name and per client address.  After
    ``free`` failures of a key within ``window`` seconds (counted from its
    last failure), every further login of that user or from that address is
    answered only after ``base * 2 ** (failures - free)`` seconds, at most
    ``max_delay``.  The server adds the delay before it checks the password,
    so a right password waits as long as a wrong one.  A successful login
    clears its user's count (not its address's).  At most ``max_entries``
    keys are remembered (the oldest go first), so a flood of names cannot
    grow memory.  Times are the ``now`` given: no clock is read.
    """

    def __init__(
        self,
        *,
        free: int = 3,
        base: float = 1.0,
        max_delay: float = 60.0,
        window: float = 900.0,
        max_entries: int = 10_000,
    ) -> None:
        self.free = free
        self.base = base
        self.max_delay = max_delay
        self.window = window
        self.max_entries = max_entries
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<LoginThrottle keys={len(self._failures)}>"

    @staticmethod
    def _keys(user: str, peer: str) -> list[tuple[str, str]]:
        return [("user", user)] + ([("address", peer)] if peer else [])

    def _count(self, key: tuple[str, str], now: float) -> int:
        failures, last = self._failures.get(key, (0, now))
        return failures if now - last <= self.window else 0

    def delay(self, user: str, peer: str, now: float) -> float:
        worst = max(self._count(key, now) for key in self._keys(user, peer))
        if worst < self.free:
            return 0.0
        return min(self.max_delay, self.base * 2.0 ** (worst - self.free))

    def record(self, user: str, peer: str, ok: bool, now: float) -> None:
        if ok:
            self._failures.pop(("user", user), None)
            return
        for key in self._keys(user, peer):
            self._failures[key] = (self._count(key, now) + 1, now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_entries:
            self._failures.popitem(last=False)
