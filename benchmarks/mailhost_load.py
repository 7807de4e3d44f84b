"""Benchmark: ``dialsim mailhost`` under load -- N concurrent SMTP senders and
M concurrent POP3 readers for a bounded time.

    python benchmarks/mailhost_load.py [--senders 16] [--readers 16] [--duration 20]
                                       [--size 4096] [--mailbox 50] [--tls]

The mail host runs as its own process (``python -m dialsim mailhost``, a
fresh maildir, ``--auth-delay 0`` so that logins measure the server and not
the anti-guessing hold).  Each sender loops over whole SMTP sessions (EHLO,
MAIL, RCPT, DATA, QUIT) delivering one message with a unique Message-ID to one
of its users; each reader loops over whole POP3 sessions on its own maildrop
of ``--mailbox`` messages (USER, PASS, STAT, RETR of every message, QUIT;
nothing deleted).  ``--tls`` makes every session start with STARTTLS/STLS.

Printed: messages accepted (250) and retrieved per second, p50/p95 session
times of each kind, errors, the server's peak RSS (VmHWM from /proc), and the
check that every message answered 250 is in its user's ``new/`` exactly once
(lost and duplicated counts; a message stored without its 250 reaching the
client is allowed by RFC 5321 and counted apart).
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dialsim.mail.maildrop import MaildirStore  # noqa: E402

_ADDR_RE = re.compile(r"(POP3|SMTP) on ([0-9.]+):(\d+)")
_ID_RE = re.compile(rb"^Message-ID: <([^>]+)>", re.M)


def start_mailhost(maildir: Path, accounts: Path, extra: list[str]):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dialsim", "mailhost", "--maildir", str(maildir), "--accounts",
         str(accounts), "--pop3", "127.0.0.1:0", "--smtp", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    banner = proc.stdout.readline() if ready else ""
    found = {name: (host, int(port)) for name, host, port in _ADDR_RE.findall(banner)}
    if len(found) != 2:
        proc.kill()
        raise SystemExit(f"mailhost did not start: {banner!r} {proc.stderr.read()!r}")
    return proc, found["POP3"], found["SMTP"]


def peak_rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", text, re.M).group(1)) / 1024


class Line:
    """A blocking line-oriented client connection (optionally upgraded to TLS)."""

    def __init__(self, addr, context: ssl.SSLContext | None) -> None:
        self.sock = socket.create_connection(addr, timeout=60)
        self.file = self.sock.makefile("rb")
        self.context = context

    def upgrade(self, hostname: str) -> None:
        self.file.close()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        got = self.file.readline()
        if not got:
            raise ConnectionError("closed by the server")
        return got

    def reply(self) -> bytes:
        """One SMTP reply (the last line of a multi-line one)."""
        while True:
            got = self.line()
            if got[3:4] != b"-":
                return got

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.smtp_times: list[float] = []
        self.pop3_times: list[float] = []
        self.accepted: dict[str, str] = {}  # Message-ID -> user, answered 250
        self.retrieved = 0
        self.errors: dict[str, int] = {}

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] = self.errors.get(what, 0) + 1


def smtp_session(addr, user: str, msgid: str, body: bytes, context) -> bool:
    c = Line(addr, context)
    try:
        assert c.reply().startswith(b"220")
        c.send(b"EHLO load.example\r\n")
        c.reply()
        if context is not None:
            c.send(b"STARTTLS\r\n")
            assert c.reply().startswith(b"220")
            c.upgrade("mail.isp.example")
            c.send(b"EHLO load.example\r\n")
            c.reply()
        c.send(b"MAIL FROM:<load@far.example>\r\nRCPT TO:<%s@isp.example>\r\nDATA\r\n" % user.encode())
        ok = [c.reply() for _ in range(3)]
        if not (ok[0].startswith(b"250") and ok[1].startswith(b"250") and ok[2].startswith(b"354")):
            return False
        c.send(b"Message-ID: <%s>\r\n" % msgid.encode() + body + b".\r\n")
        accepted = c.reply().startswith(b"250")
        c.send(b"QUIT\r\n")
        c.reply()
        return accepted
    finally:
        c.close()


def pop3_session(addr, user: str, context) -> int:
    c = Line(addr, context)
    try:
        assert c.line().startswith(b"+OK")
        if context is not None:
            c.send(b"STLS\r\n")
            assert c.line().startswith(b"+OK")
            c.upgrade("pop.isp.example")
        c.send(b"USER %s\r\nPASS pw\r\nSTAT\r\n" % user.encode())
        c.line()
        if not c.line().startswith(b"+OK"):
            raise ConnectionError("login refused")
        count = int(c.line().split()[1])
        c.send(b"".join(b"RETR %d\r\n" % (i + 1) for i in range(count)))  # pipelined
        for _ in range(count):
            assert c.line().startswith(b"+OK")
            while c.line() != b".\r\n":
                pass
        c.send(b"QUIT\r\n")
        c.line()
        return count
    finally:
        c.close()


def sender(n: int, args, addr, stats: Stats, stop: float, context) -> None:
    body = b"Subject: load\r\n\r\n" + (b"z" * 70 + b"\r\n") * max(1, args.size // 72)
    seq = 0
    while time.monotonic() < stop:
        seq += 1
        user, msgid = f"load{n % args.users}", f"{n}.{seq}@load.example"
        t0 = time.monotonic()
        try:
            ok = smtp_session(addr, user, msgid, body, context)
        except (OSError, AssertionError, ConnectionError, ssl.SSLError) as e:
            stats.error(f"smtp {type(e).__name__}")
            continue
        with stats.lock:
            stats.smtp_times.append(time.monotonic() - t0)
            if ok:
                stats.accepted[msgid] = user
        if not ok:
            stats.error("smtp refused")


def reader(n: int, addr, stats: Stats, stop: float, context) -> None:
    while time.monotonic() < stop:
        t0 = time.monotonic()
        try:
            got = pop3_session(addr, f"reader{n}", context)
        except (OSError, AssertionError, ConnectionError, ssl.SSLError) as e:
            stats.error(f"pop3 {type(e).__name__}")
            continue
        with stats.lock:
            stats.pop3_times.append(time.monotonic() - t0)
            stats.retrieved += got


def check_stored(maildir: Path, stats: Stats) -> tuple[int, int, int]:
    """(lost, duplicated, stored without a 250 seen): every 250 exactly once in new/."""
    seen: dict[str, int] = {}
    for folder in maildir.glob("load*/new"):
        for path in folder.iterdir():
            m = _ID_RE.search(path.read_bytes()[:200])
            if m:
                key = m.group(1).decode()
                seen[key] = seen.get(key, 0) + 1
    lost = sum(1 for msgid in stats.accepted if msgid not in seen)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    extra = sum(1 for msgid in seen if msgid not in stats.accepted)
    return lost, duplicated, extra


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument("--readers", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--size", type=int, default=4096, help="octets per message")
    ap.add_argument("--mailbox", type=int, default=50, help="messages in each reader's maildrop")
    ap.add_argument("--users", type=int, default=8, help="recipients the senders share")
    ap.add_argument("--tls", action="store_true", help="STARTTLS / STLS in every session")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailhost-load-") as tmp:
        root, accounts = Path(tmp) / "maildir", Path(tmp) / "accounts"
        users = [f"load{i}" for i in range(args.users)] + [f"reader{i}" for i in range(args.readers)]
        accounts.write_text("".join(f"{u}:pw\n" for u in users))
        accounts.chmod(0o600)
        store = MaildirStore(root)
        body = b"Subject: stored\r\n\r\n" + (b"r" * 70 + b"\r\n") * max(1, args.size // 72)
        for i in range(args.readers):
            for _ in range(args.mailbox):
                store.deliver(f"reader{i}", body)
        conns = str(args.senders + args.readers + 16)
        extra = ["--auth-delay", "0", "--max-connections", conns, "--max-connections-per-address", conns]
        proc, pop3, smtp = start_mailhost(root, accounts, extra if args.tls else [*extra, "--no-tls"])
        context = None
        if args.tls:
            context = ssl.create_default_context(cafile=str(root / ".dialsim-tls-cert.pem"))
        stats = Stats()
        stop = time.monotonic() + args.duration
        threads = [threading.Thread(target=sender, args=(i, args, smtp, stats, stop, context))
                   for i in range(args.senders)]
        threads += [threading.Thread(target=reader, args=(i, pop3, stats, stop, context))
                    for i in range(args.readers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        rss = peak_rss_mib(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        lost, duplicated, extra_stored = check_stored(root, stats)
    print(f"mailhost load: {args.senders} SMTP senders, {args.readers} POP3 readers, "
          f"{elapsed:.1f} s, {args.size} octet messages{', TLS' if args.tls else ''}")
    print(f"  SMTP: {len(stats.accepted) / elapsed:8.1f} messages/s accepted ({len(stats.accepted)} in all), "
          f"session p50 {pct(stats.smtp_times, 50) * 1000:.1f} ms, p95 {pct(stats.smtp_times, 95) * 1000:.1f} ms")
    print(f"  POP3: {stats.retrieved / elapsed:8.1f} messages/s retrieved ({stats.retrieved} in all, "
          f"{len(stats.pop3_times)} sessions of {args.mailbox}), session p50 "
          f"{pct(stats.pop3_times, 50) * 1000:.1f} ms, p95 {pct(stats.pop3_times, 95) * 1000:.1f} ms")
    print(f"  server peak RSS {rss:.1f} MiB; errors {stats.errors or 'none'}")
    print(f"  every 250 in new/ exactly once: lost {lost}, duplicated {duplicated} "
          f"(stored without a 250 seen: {extra_stored})")


if __name__ == "__main__":
    main()
