"""Test helper: ``python -m dialsim mailhost`` as a subprocess, for tests that
need the mail host in a process of its own (its RSS, its latency under load,
its answer to SIGTERM) or against real mail programs.

``with MailHostProcess(root, accounts, "--auth-delay", "0") as mh:`` starts it
on free loopback ports (read back from its first line), ``mh.pop3`` and
``mh.smtp`` are (host, port), ``mh.rss_kib()`` / ``mh.peak_rss_kib()`` read
``/proc``; leaving the block sends SIGTERM, and ``mh.returncode``,
``mh.stdout`` and ``mh.stderr`` hold the outcome.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ADDR_RE = re.compile(r"(POP3|SMTP) on \[?([0-9a-f.:]+?)\]?:(\d+)")


def write_accounts(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


class MailHostProcess:
    def __init__(self, maildir: Path, accounts: Path, *args: str, timeout: float = 20.0) -> None:
        self.argv = [
            sys.executable, "-m", "dialsim", "mailhost", "--maildir", str(maildir),
            "--accounts", str(accounts), "--pop3", "127.0.0.1:0", "--smtp", "127.0.0.1:0", *args,
        ]  # fmt: skip
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.banner = ""
        self.pop3: tuple[str, int] = ("", 0)
        self.smtp: tuple[str, int] = ("", 0)
        self.returncode: int | None = None
        self.stdout = ""
        self.stderr = ""

    def start(self) -> MailHostProcess:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=env,
        )  # fmt: skip
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        self.banner = self.proc.stdout.readline() if ready else ""
        found = {name: (host, int(port)) for name, host, port in _ADDR_RE.findall(self.banner)}
        if "POP3" not in found or "SMTP" not in found:
            self.stop()
            raise RuntimeError(f"mailhost did not start: {self.banner!r} {self.stderr!r}")
        self.pop3, self.smtp = found["POP3"], found["SMTP"]
        return self

    def _status(self, field: str) -> int:
        assert self.proc is not None
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))

    def rss_kib(self) -> int:
        return self._status("VmRSS")

    def peak_rss_kib(self) -> int:
        return self._status("VmHWM")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        self.stdout, self.stderr = self.banner + out, err
        self.returncode = self.proc.returncode
        return self.returncode

    def __enter__(self) -> MailHostProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
