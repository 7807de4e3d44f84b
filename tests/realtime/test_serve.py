"""`dialsim serve`: unmodified mail clients fetch through the modem line.

Python's poplib and fetchmail connect to the local ports; dialsim dials the
scenario's ISP in real time and carries each connection over its own dial-up
stack.  Every message must arrive byte-identical to the scenario's maildrop;
connections are refused while the line is down and cut when the carrier goes.
"""

from __future__ import annotations

import hashlib
import poplib
import socket
import subprocess
import sys
import time

import pytest

from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario
from tests.interop.peers import require
from tests.realtime.conftest import free_port


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ServeProcess:
    def __init__(self, scenario, pop3: int, smtp: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dialsim", "serve", str(scenario), "--pop3",
             f"127.0.0.1:{pop3}", "--smtp", f"127.0.0.1:{smtp}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.pop3 = pop3

    def wait_online(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.pop3), 0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("dialsim serve never came online")

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=15)
        return out


@pytest.fixture
def serve(fast_scenario):
    started = []

    def start(**over):
        scenario = fast_scenario(**over)
        s = ServeProcess(scenario, free_port(), free_port())
        started.append(s)
        return s, scenario

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop()


def _stored(scenario, tmp_path) -> list[bytes]:
    """The scenario's maildrop, in POP3 order (its seed makes it)."""
    sc = load_scenario(scenario).with_overrides(replications=1)
    out = run_scenario(sc, tmp_path / "sim").outcomes[0]
    return [m.sha256 for m in sorted(out.stored.values(), key=lambda m: m.uidl)]


def test_poplib_fetches_through_serve_intact(serve, tmp_path):
    s, scenario = serve()
    # While the line is still dialing the port refuses connections.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.pop3), 1).close()
    s.wait_online()
    p = poplib.POP3("127.0.0.1", s.pop3, timeout=60)
    p.user("alice")
    p.pass_("tanstaaf")
    count, _size = p.stat()
    got = [_sha(b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n") for i in range(count)]
    p.quit()
    assert got == _stored(scenario, tmp_path)
    log = s.stop()
    assert "CONNECT 28800" in log and "online" in log


def test_fetchmail_fetches_through_serve_intact(serve, tmp_path):
    fetchmail = require("fetchmail", "fetchmail is not installed (apt: fetchmail)")
    s, scenario = serve()
    s.wait_online()
    out = tmp_path / "delivered"
    out.mkdir()
    mda = tmp_path / "mda.py"
    mda.write_text("import os, sys\nd = sys.argv[1]\n"
                   "open(os.path.join(d, '%04d' % len(os.listdir(d))), 'wb')"
                   ".write(sys.stdin.buffer.read())\n")
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"poll 127.0.0.1 service {s.pop3} protocol pop3 auth password uidl\n"
                  f"  user 'alice' password 'tanstaaf' is root here\n"
                  f"  sslproto '' keep norewrite mda '{sys.executable} {mda} {out}'\n")
    rc.chmod(0o600)
    r = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "-N", "--idfile",
                        str(tmp_path / "ids")], capture_output=True, text=True, timeout=120,
                       env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    delivered = []
    for f in sorted(out.iterdir()):
        data = f.read_bytes()
        # fetchmail prepends its own Received: header and hands the MDA LF line ends
        head, _, rest = data.partition(b"\n")
        while rest[:1] in (b" ", b"\t"):
            _, _, rest = rest.partition(b"\n")
        assert head.startswith(b"Received:")
        delivered.append(_sha(rest.replace(b"\n", b"\r\n")))
    assert delivered == _stored(scenario, tmp_path)
    s.stop()


def test_carrier_loss_cuts_connections_and_the_line_comes_back(serve):
    # The carrier drops 9 s after start (online at ~6.5 s); the redial brings it back.
    s, _scenario = serve(link={"carrier_loss": {"at": ["9 s"]}},
                         subscriber={"redial": {"attempts": 3, "delay": "1 s"}})
    s.wait_online()
    p = poplib.POP3("127.0.0.1", s.pop3, timeout=30)
    p.user("alice")
    p.pass_("tanstaaf")
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        for _ in range(200):  # cut mid-session when the carrier goes
            p.noop()
            time.sleep(0.1)
    # Back online after the redial.
    s.wait_online(timeout=30)
    log = s.stop()
    assert "line down" in log and log.count("online") >= 2
