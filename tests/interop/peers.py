"""Real, independent peers for dialsim's interop tests, and the byte tools to talk to them.

This module starts and stops real software that dialsim must interoperate with, so
that interop tests can prove dialsim's protocols against implementations it did not
write (facts: ``/work/shared/interop/README.md``):

* slirp 1.0.17 on a socat pty pair: SLIP/CSLIP (RFC 1055, RFC 1144) or PPP in
  async HDLC framing (RFC 1661, RFC 1662), see :class:`SlirpLine`;
* Dovecot as a POP3 server (RFC 1939) from a private config, see :class:`Dovecot`;
* the Linux kernel's TCP/IP behind a TUN device in a private network namespace,
  see :class:`TunNamespace`;
* availability checks for fetchmail, getmail6, mpop, msmtp, swaks, tshark and aiosmtpd.

It also holds small, deliberately independent encoders/decoders used only by tests
(RFC 1055 SLIP framing, RFC 1662 async HDLC with FCS-16), so that smoke tests prove
the peers without any dialsim code.  The fixtures in ``conftest.py`` wrap these
classes; tests may also use them directly.

Missing peers: :func:`require` skips with a reason, or fails when the environment
variable ``CI`` is non-empty, so that a broken install step cannot hide.
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import hashlib
import importlib.util
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dialsim.drivers.netns import call_in_netns, open_tun

HERE = Path(__file__).resolve().parent
SELECTFIX_SOURCE = HERE / "selectfix.c"

# --------------------------------------------------------------------------------------
# Skip or fail


def in_ci() -> bool:
    """True when the environment variable CI is set and non-empty."""
    return bool(os.environ.get("CI"))


def require(tool_or_condition: str | bool | object, reason: str = "") -> Any:
    """Make sure a peer is available, else skip (or fail when ``CI`` is set).

    ``tool_or_condition`` is either a command name (looked up on ``PATH``; the full
    path is returned) or any truthy/falsy value (returned as is when truthy).
    """
    if isinstance(tool_or_condition, str):
        found = shutil.which(tool_or_condition)
        why = reason or f"{tool_or_condition!r} is not installed (scripts/install-peers.sh)"
        if found is None:
            _missing(f"{why} [command {tool_or_condition!r} not on PATH]")
        return found
    if not tool_or_condition:
        _missing(reason or "required interop condition not met")
    return tool_or_condition


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"interop peer missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def require_root(what: str) -> None:
    require(os.geteuid() == 0, f"{what} needs root (CAP_NET_ADMIN / CAP_SYS_ADMIN)")


def require_module(name: str, reason: str = "") -> Any:
    """Require an importable Python module; returns the imported module."""
    if importlib.util.find_spec(name) is None:
        _missing(reason or f"Python module {name!r} is not installed (pip install -e '.[test]')")
    return __import__(name)


def require_fetchmail() -> str:
    """Path of the ``fetchmail`` POP3 client (Debian package fetchmail)."""
    return require("fetchmail", "fetchmail is not installed (apt: fetchmail)")


def require_getmail() -> str:
    """Path of the ``getmail`` command from getmail6 (PyPI getmail6, version 6 or later)."""
    path = require("getmail", "getmail6 is not installed (pip install getmail6)")
    out = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=20, check=False
    )
    m = re.search(r"(\d+)\.\d+", out.stdout + out.stderr)
    require(m is not None and int(m.group(1)) >= 6, f"{path} is not getmail6: {out.stdout!r}")
    return path


def require_swaks() -> str:
    """Path of ``swaks``, the SMTP test client (Debian package swaks)."""
    return require("swaks", "swaks is not installed (apt: swaks)")


def require_mpop() -> str:
    """Path of ``mpop``, a POP3 client with STLS (Debian package mpop)."""
    return require("mpop", "mpop is not installed (apt: mpop)")


def require_msmtp() -> str:
    """Path of ``msmtp``, an SMTP client with STARTTLS (Debian package msmtp)."""
    return require("msmtp", "msmtp is not installed (apt: msmtp)")


def require_tshark() -> str:
    """Path of ``tshark`` (Debian package tshark)."""
    return require("tshark", "tshark is not installed (apt: tshark)")


def require_aiosmtpd() -> Any:
    """The ``aiosmtpd`` module (PyPI aiosmtpd), for a real SMTP server in-process."""
    return require_module("aiosmtpd", "aiosmtpd is not installed (pip install aiosmtpd)")


# --------------------------------------------------------------------------------------
# Small I/O helpers (every read has a timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> bool:
    """Poll until a TCP connect to (host, port) succeeds; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def read_available(fd: int, timeout: float, size: int = 65536) -> bytes:
    """One read from ``fd`` if it becomes readable within ``timeout`` s, else b""."""
    r, _, _ = select.select([fd], [], [], max(0.0, timeout))
    if not r:
        return b""
    try:
        return os.read(fd, size)
    except OSError as e:  # pty master after the slave side closed
        if e.errno in (errno.EIO, errno.EAGAIN):
            return b""
        raise


def write_all(fd: int, data: bytes, timeout: float = 5.0) -> None:
    """Write all of ``data`` to ``fd`` (waiting at most ``timeout`` s for room)."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        _, w, _ = select.select([], [fd], [], max(0.0, deadline - time.monotonic()))
        if not w:
            raise TimeoutError(f"fd {fd} not writable within {timeout} s")
        n = os.write(fd, view)
        view = view[n:]


def _kill_group(proc: subprocess.Popen | None, grace: float = 3.0) -> None:
    """SIGTERM then SIGKILL a process started with ``start_new_session=True``."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    # the leader may be gone while others in its group live on
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------
# RFC 1055 SLIP framing (test-side, independent of dialsim.proto.slip)

SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
_SLIP_ESCAPE_RE = re.compile(rb"[\xc0\xdb]")
_SLIP_UNESCAPE_RE = re.compile(rb"\xdb([\xdc\xdd])")


def slip_encode(packet: bytes) -> bytes:
    """END + escaped packet + END (RFC 1055, with the leading END flush)."""
    body = _SLIP_ESCAPE_RE.sub(lambda m: b"\xdb\xdc" if m[0] == b"\xc0" else b"\xdb\xdd", packet)
    return b"\xc0" + body + b"\xc0"


class SlipDecoder:
    """Split a SLIP byte stream into packets; ``feed(data)`` returns complete packets."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        *frames, self._buf = self._buf.split(b"\xc0")
        return [
            _SLIP_UNESCAPE_RE.sub(lambda m: b"\xc0" if m[1] == b"\xdc" else b"\xdb", f)
            for f in frames
            if f
        ]


# --------------------------------------------------------------------------------------
# RFC 1662 async HDLC-like framing with FCS-16 (test-side, independent of dialsim)

_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
PPP_GOOD_FCS16 = 0xF0B8


def fcs16(data: bytes, fcs: int = 0xFFFF) -> int:
    """RFC 1662 FCS-16 register after ``data`` (no final complement).

    Reflected CRC-16/0x8408 == CCITT CRC (crc_hqx) over bit-reversed bytes, reversed.
    """
    rev_init = int(f"{fcs:016b}"[::-1], 2)
    crc = binascii.crc_hqx(data.translate(_BITREV), rev_init)
    return int(f"{crc:016b}"[::-1], 2)


def ppp_fcs16(data: bytes) -> bytes:
    """The two FCS octets to append to ``data`` (complemented, least significant first)."""
    return ((fcs16(data) ^ 0xFFFF) & 0xFFFF).to_bytes(2, "little")


def hdlc_encode(frame: bytes, accm: int = 0xFFFFFFFF) -> bytes:
    """Flag + escaped (frame + FCS) + flag.  ``frame`` starts at the Address field
    (FF 03 ...) unless ACFC was negotiated.  Control characters whose bit is set in
    ``accm`` are escaped, as are 0x7D and 0x7E (RFC 1662 section 4.2)."""
    data = frame + ppp_fcs16(frame)
    esc = {0x7D, 0x7E} | {c for c in range(32) if accm >> c & 1}
    cls = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in sorted(esc)) + b"]")
    return b"\x7e" + cls.sub(lambda m: bytes((0x7D, m[0][0] ^ 0x20)), data) + b"\x7e"


class HdlcDecoder:
    """Split an async-HDLC byte stream into frames with a good FCS (FCS removed).

    ``feed(data)`` returns the complete, FCS-checked frames; frames with a bad FCS
    are counted in ``bad_fcs`` and dropped.
    """

    _UNESC = re.compile(rb"\x7d(.)", re.DOTALL)

    def __init__(self) -> None:
        self._buf = b""
        self.bad_fcs = 0

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        *frames, self._buf = self._buf.split(b"\x7e")
        out = []
        for raw in frames:
            f = self._UNESC.sub(lambda m: bytes((m[1][0] ^ 0x20,)), raw)
            if len(f) < 4:
                continue
            if fcs16(f) != PPP_GOOD_FCS16:
                self.bad_fcs += 1
                continue
            out.append(f[:-2])
        return out


# --------------------------------------------------------------------------------------
# slirp on a pty pair


def build_selectfix(out_dir: Path) -> Path:
    """Compile selectfix.c (the slirp select() timeout fix) into ``out_dir``."""
    gcc = require("gcc", "gcc is needed to build the slirp select() wrapper (apt: gcc libc6-dev)")
    so = Path(out_dir) / "selectfix.so"
    res = subprocess.run(
        [gcc, "-shared", "-fPIC", "-O2", "-o", str(so), str(SELECTFIX_SOURCE), "-ldl"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if res.returncode != 0:
        pytest.fail(f"gcc could not build selectfix.so:\n{res.stderr}", pytrace=False)
    return so


def _raw_tty(fd: int) -> None:
    import tty

    with contextlib.suppress(Exception):
        tty.setraw(fd)


@dataclass
class SlirpLine:
    """slirp running on one end of a null-modem pty pair; the test holds the other end.

    ``fd`` is an open, raw, non-blocking read/write descriptor on the dial-up side's
    pty (``tty_path``); bytes written there reach slirp as if over a serial line.
    """

    mode: str  # "slip" (autodetect SLIP/CSLIP) or "ppp"
    tty_path: str  # the dial-up side (ours)
    slirp_tty_path: str  # slirp's side
    fd: int
    workdir: Path
    host_alias: str = "10.0.2.2"  # reaches the host's 127.0.0.1
    our_addr: str = "10.0.2.15"  # the dial-up side's address as slirp sees it
    slirp_proc: subprocess.Popen | None = field(default=None, repr=False)
    socat_proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "slirp.stderr"

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")
        return ""

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        write_all(self.fd, data, timeout)

    def read(self, timeout: float = 1.0) -> bytes:
        """Whatever arrives within ``timeout`` s (one read; b"" on timeout)."""
        return read_available(self.fd, timeout)

    def read_until(self, decoder: Any, want: Callable[[bytes], bool], timeout: float = 10.0):
        """Feed arriving bytes to ``decoder`` (SlipDecoder/HdlcDecoder) until a frame
        satisfies ``want``; returns (that frame, all frames seen).  Fails on timeout."""
        deadline = time.monotonic() + timeout
        seen: list[bytes] = []
        while (left := deadline - time.monotonic()) > 0:
            for frame in decoder.feed(self.read(min(left, 0.5))):
                seen.append(frame)
                if want(frame):
                    return frame, seen
            if self.slirp_proc is not None and self.slirp_proc.poll() is not None:
                break
        alive = self.slirp_proc is None or self.slirp_proc.poll() is None
        pytest.fail(
            f"no wanted frame from slirp in {timeout} s (slirp alive={alive}); "
            f"frames seen: {[f.hex() for f in seen]}; stderr: {self.stderr_text()!r}",
            pytrace=False,
        )

    def close(self) -> None:
        _kill_group(self.slirp_proc)
        _kill_group(self.socat_proc)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1


def start_slirp(
    mode: str, workdir: Path, selectfix_so: Path, timeout: float = 10.0, args: tuple = ()
) -> SlirpLine:
    """Start socat + slirp in ``workdir`` (created if needed); see :class:`SlirpLine`."""
    if mode not in ("slip", "ppp"):
        raise ValueError(f"mode must be 'slip' or 'ppp', not {mode!r}")
    socat = require("socat", "socat is not installed (apt: socat)")
    slirp = require("slirp", "slirp is not installed (apt: slirp)")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    a, b = workdir / "slirp.tty", workdir / "dialup.tty"
    socat_proc = subprocess.Popen(
        [socat, "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "socat.stderr", "wb"),  # noqa: SIM115 - owned by child
        start_new_session=True,
    )
    line = SlirpLine(mode, str(b), str(a), -1, workdir, socat_proc=socat_proc)
    try:
        deadline = time.monotonic() + timeout
        while not (a.exists() and b.exists()):
            if socat_proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "socat did not create the pty pair: "
                    + (workdir / "socat.stderr").read_text(errors="replace"),
                    pytrace=False,
                )
            time.sleep(0.02)
        line.fd = os.open(b, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        _raw_tty(line.fd)
        slirp_fd = os.open(a, os.O_RDWR | os.O_NOCTTY)  # "<>TTY >&0": stdin read-write
        _raw_tty(slirp_fd)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LD_PRELOAD": str(selectfix_so),
        }
        argv = [slirp, *(["ppp"] if mode == "ppp" else []), *args]
        try:
            line.slirp_proc = subprocess.Popen(
                argv,
                stdin=slirp_fd,
                stdout=slirp_fd,
                stderr=open(line.stderr_path, "wb"),  # noqa: SIM115 - owned by child
                env=env,
                cwd=home,
                start_new_session=True,
            )
        finally:
            os.close(slirp_fd)
        while "SLiRP Ready" not in line.stderr_text():
            if line.slirp_proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"slirp gave no banner (rc={line.slirp_proc.poll()}): {line.stderr_text()!r}",
                    pytrace=False,
                )
            time.sleep(0.02)
        # slirp may still print text on the line right after the banner; drop it
        time.sleep(0.2)
        while read_available(line.fd, 0.05):
            pass
        if line.slirp_proc.poll() is not None:
            pytest.fail(
                f"slirp exited after its banner (rc={line.slirp_proc.returncode}); "
                f"is selectfix.so preloaded? stderr: {line.stderr_text()!r}",
                pytrace=False,
            )
        return line
    except BaseException:
        line.close()
        raise


# --------------------------------------------------------------------------------------
# Dovecot POP3 server

DOVECOT_CONF = """\
# dialsim interop: private Dovecot config (no systemd, no /etc/dovecot)
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
protocols = pop3
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


def mail_owner() -> tuple[int, int, str]:
    """(uid, gid, name) of the non-root user that owns test Maildirs.

    Creates the system user ``dialsimtest`` when missing (as root); otherwise falls
    back to nobody/nogroup.
    """
    import grp
    import pwd

    with contextlib.suppress(KeyError):
        pw = pwd.getpwnam("dialsimtest")
        return pw.pw_uid, pw.pw_gid, pw.pw_name
    if os.geteuid() == 0 and shutil.which("useradd"):
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", "dialsimtest"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam("dialsimtest")
            return pw.pw_uid, pw.pw_gid, pw.pw_name
    pw = pwd.getpwnam("nobody")
    gid = pw.pw_gid
    with contextlib.suppress(KeyError):
        gid = grp.getgrnam("nogroup").gr_gid
    return pw.pw_uid, gid, pw.pw_name


@dataclass
class Dovecot:
    """A private Dovecot POP3 server on ``host:port`` with one mailbox.

    ``maildir`` is the user's Maildir (cur/ new/ tmp/), owned by ``uid``/``gid``.
    """

    host: str
    port: int
    user: str
    password: str
    maildir: Path
    base: Path
    uid: int
    gid: int
    conf: Path
    _counter: int = 0

    @property
    def log_path(self) -> Path:
        return self.base / "dovecot.log"

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def deliver(self, message: bytes, name: str | None = None) -> Path:
        """Write ``message`` (bytes exactly as given) into new/ via tmp/, owned by the
        mail user; returns the path in new/.  Dovecot serves LF line ends as CRLF."""
        self._counter += 1
        name = name or f"{int(time.time())}.M{self._counter}P{os.getpid()}.dialsim"
        tmp = self.maildir / "tmp" / name
        with open(tmp, "wb") as f:
            f.write(message)
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, self.uid, self.gid)
        dest = self.maildir / "new" / name
        os.rename(tmp, dest)
        return dest

    def messages(self) -> list[Path]:
        """Message files currently in new/ and cur/ (sorted by name)."""
        return sorted(
            p for d in ("new", "cur") for p in (self.maildir / d).iterdir() if p.is_file()
        )

    def stop(self) -> None:
        doveadm = shutil.which("doveadm") or "doveadm"
        subprocess.run(
            [doveadm, "-c", str(self.conf), "stop"], capture_output=True, timeout=20, check=False
        )
        pidfile = self.base / "run" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def start_dovecot(
    user: str = "subscriber", password: str = "dialup-pw", host: str = "127.0.0.1"
) -> Dovecot:
    """Start Dovecot POP3 from a private config in a fresh scratch folder under /tmp.

    The folder is world-traversable (mode 0755) because Dovecot's mail processes run
    as the non-root mail user; pytest's own tmp folders are 0700.
    """
    require_root("Dovecot (private instance with its internal users)")
    dovecot = require("dovecot", "Dovecot is not installed (apt: dovecot-core dovecot-pop3d)")
    require("doveadm", "doveadm is not installed (apt: dovecot-core)")
    require(
        Path("/usr/lib/dovecot/pop3").exists(), "Dovecot POP3 is not installed (apt: dovecot-pop3d)"
    )
    uid, gid, _ = mail_owner()
    base = Path(tempfile.mkdtemp(prefix="dialsim-dovecot-"))
    os.chmod(base, 0o755)
    port = free_port(host)
    maildir = base / "home" / user / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for p in (
        base / "home",
        base / "home" / user,
        maildir,
        *(maildir / s for s in ("cur", "new", "tmp")),
    ):
        os.chown(p, uid, gid)
    (base / "home").chmod(0o755)
    (base / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    conf = base / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(base=base, host=host, port=port, uid=uid, gid=gid))
    server = Dovecot(host, port, user, password, maildir, base, uid, gid, conf)
    try:
        # dovecot daemonizes: its children must not hold our pipes open, so no capture
        with open(base / "dovecot.stderr", "wb") as err:
            res = subprocess.run(
                [dovecot, "-c", str(conf)],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=30, check=False,
            )  # fmt: skip
        if res.returncode != 0 or not wait_for_port(host, port, 15.0):
            msg = (base / "dovecot.stderr").read_text(errors="replace") + server.log_text()
            pytest.fail(f"Dovecot did not start (rc={res.returncode}):\n{msg}", pytrace=False)
    except BaseException:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return server


# --------------------------------------------------------------------------------------
# Linux kernel TCP/IP behind TUN in a private network namespace

# The namespace and TUN plumbing is dialsim's own (dialsim shell uses it too).
_open_tun = open_tun


@dataclass
class TunNamespace:
    """A TUN device inside a private network namespace, the kernel at ``kernel_addr``.

    Writing an IPv4 packet to ``fd`` delivers it to the kernel as if it came from
    ``peer_addr`` (dialsim's side); packets the kernel routes to ``peer_addr`` (or
    anything in ``prefix``) can be read from ``fd``.  One packet per read/write
    (IFF_TUN | IFF_NO_PI: raw IP, no header).
    """

    netns: str
    ifname: str
    fd: int
    kernel_addr: str = "10.99.0.1"
    peer_addr: str = "10.99.0.2"
    prefix: int = 24
    mtu: int = 1500

    def write(self, packet: bytes) -> None:
        write_all(self.fd, bytes(packet))

    def read_packet(self, timeout: float = 2.0, ipv4_only: bool = True) -> bytes | None:
        """Next packet within ``timeout`` s; IPv6 housekeeping skipped when ``ipv4_only``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            pkt = read_available(self.fd, left, 65536)
            if pkt and (not ipv4_only or pkt[0] >> 4 == 4):
                return pkt
        return None

    def read_until(self, want: Callable[[bytes], bool], timeout: float = 5.0) -> bytes:
        """First IPv4 packet satisfying ``want``; fails the test on timeout."""
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            pkt = self.read_packet(left)
            if pkt is None:
                break
            if want(pkt):
                return pkt
            seen.append(pkt.hex())
        pytest.fail(f"no wanted packet from the kernel in {timeout} s; seen {seen}", pytrace=False)

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30.0) -> Any:
        """``fn(*args)`` run in a fresh thread inside the namespace (see call_in_netns)."""
        return call_in_netns(self.netns, fn, *args, timeout=timeout)

    def socket(
        self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0
    ) -> socket.socket:
        """A socket that lives in the namespace, usable from any thread of the test."""
        return self.call(socket.socket, family, type, proto)

    def listen_tcp(self, port: int = 0, backlog: int = 8) -> socket.socket:
        """A kernel TCP listener on ``kernel_addr:port`` (port 0: any); see getsockname()."""
        s = self.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.kernel_addr, port))
        s.listen(backlog)
        return s

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed with ``ip netns exec NS``."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
        """subprocess.run inside the namespace (timeout defaults to 30 s)."""
        kw.setdefault("timeout", 30)
        kw.setdefault("check", False)
        return subprocess.run(self.argv(argv), **kw)

    def popen(self, argv: list[str], **kw: Any) -> subprocess.Popen:
        """subprocess.Popen inside the namespace, in its own session; the fixture kills
        what it started through this method at teardown."""
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(self.argv(argv), **kw)
        self._children.append(p)
        return p

    def python(self, code: str, **kw: Any) -> subprocess.Popen:
        """A ``python -c code`` process inside the namespace (e.g. a poplib client)."""
        import sys

        return self.popen([sys.executable, "-c", code], **kw)

    def __post_init__(self) -> None:
        self._children: list[subprocess.Popen] = []

    def close(self) -> None:
        for p in self._children:
            _kill_group(p)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        subprocess.run(
            ["ip", "netns", "del", self.netns], capture_output=True, timeout=20, check=False
        )


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


def start_tun_netns(
    kernel_addr: str = "10.99.0.1", peer_addr: str = "10.99.0.2", prefix: int = 24
) -> TunNamespace:
    """Create namespace ``dialsim-<random>``, open a TUN device in it (via a thread
    that joined it with setns), address it, bring it and ``lo`` up."""
    require_root("a TUN device in a network namespace")
    require("ip", "iproute2 is not installed (apt: iproute2)")
    require(os.path.exists("/dev/net/tun"), "/dev/net/tun is missing (no TUN support)")
    netns = f"dialsim-{uuid.uuid4().hex[:10]}"
    ifname = "dstun0"
    _ip("netns", "add", netns)
    fd = -1
    try:
        fd = call_in_netns(netns, _open_tun, ifname)
        tun = TunNamespace(netns, ifname, fd, kernel_addr, peer_addr, prefix)
        # no IPv6 on the device: fewer housekeeping packets to skip
        for key in (f"net.ipv6.conf.{ifname}.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
            subprocess.run(
                ["ip", "netns", "exec", netns, "sysctl", "-qw", f"{key}=1"],
                capture_output=True, timeout=20, check=False,
            )  # fmt: skip
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "addr", "add", f"{kernel_addr}/{prefix}", "dev", ifname)
        _ip("-n", netns, "link", "set", ifname, "up")
        return tun
    except BaseException:
        if fd >= 0:
            os.close(fd)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=20, check=False)
        raise


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def scratch_dir(prefix: str = "dialsim-interop-") -> Iterator[Path]:
    """A temporary folder under /tmp, removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
