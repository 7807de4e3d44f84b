"""Subscriber accounts: user -> password, the POP3 server's ``Authenticator``.

Scope: RFC 1939 USER/PASS checks and the APOP shared secret (section 7; as in
most 1990s servers the APOP secret is the account password).  Accounts load from
a file of ``user:password`` lines (``#`` comments and blank lines ignored); a
file that group or others can read or write is refused, like ssh refuses a
private key with loose permissions.  ``repr`` never shows a password.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["Accounts", "AccountsFileError"]


class AccountsFileError(ValueError):
    """The accounts file is unsafe or malformed (one-line message)."""


class Accounts:
    """Users and their passwords; implements ``dialsim.proto.pop3.Authenticator``."""

    def __init__(self, passwords: Mapping[str, str] | None = None) -> None:
        self._passwords: dict[str, str] = dict(passwords or {})

    @classmethod
    def load(cls, path: Path | str) -> Accounts:
        path = Path(path)
        try:
            st = os.stat(path)
        except OSError as e:
            raise AccountsFileError(f"{path}: cannot read accounts file: {e.strerror}") from None
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o066:
            raise AccountsFileError(
                f"{path}: accounts file is readable or writable by group/others "
                f"(mode {mode:04o}); chmod 600 it"
            )
        passwords: dict[str, str] = {}
        text = path.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            user, sep, password = stripped.partition(":")
            if not sep or not user or not password:
                raise AccountsFileError(f"{path}:{lineno}: expected user:password")
            if user in passwords:
                raise AccountsFileError(f"{path}:{lineno}: user {user!r} listed twice")
            passwords[user] = password
        return cls(passwords)

    def add(self, user: str, password: str) -> None:
        self._passwords[user] = password

    def check_password(self, user: str, password: str) -> bool:
        expected = self._passwords.get(user)
        if expected is None:
            # Compare anyway so an unknown user costs the same as a wrong password.
            hmac.compare_digest(password.encode(), password.encode())
            return False
        return hmac.compare_digest(expected.encode(), password.encode())

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
