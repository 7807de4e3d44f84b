"""`dialsim shell`: unmodified programs behind the simulated modem, on the kernel's own TCP.

Each test runs `python -m dialsim shell ... -- COMMAND` as a user would (root, a
network namespace with a TUN device as its only interface).  Every transfer is
checked byte for byte; nothing may be left behind (namespace, /etc/netns folder,
processes).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from dialsim.experiment.run import run_scenario
from dialsim.scenario.load import load_scenario
from tests.interop.peers import require

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _needs_namespaces():
    require(os.geteuid() == 0, "dialsim shell needs root (network namespace, TUN device)")
    require(os.path.exists("/dev/net/tun"), "/dev/net/tun is missing")
    require("ip", "iproute2 is not installed (apt: iproute2)")
    before = _namespaces()
    yield
    assert _namespaces() == before, "dialsim shell left a namespace behind"
    assert not [p for p in Path("/etc/netns").glob("dialsim-*")] if Path("/etc/netns").exists() \
        else True


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("dialsim-")}


def _shell(scenario, *args, command, timeout=180, **kw):
    return subprocess.run([sys.executable, "-m", "dialsim", "shell", str(scenario), "-q", *args,
                           "--", *command], capture_output=True, text=True, timeout=timeout, **kw)


# Random octets (V.42bis cannot shrink them): about 16 s at 28.8k.
SIZE = 48 * 1024


@pytest.fixture
def http_server(tmp_path):
    """A server on the host's loopback with one file of random octets."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.bin").write_bytes(os.urandom(SIZE))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], hashlib.sha256((root / "file.bin").read_bytes()).hexdigest()
    server.shutdown()


DOWNLOAD = """
import hashlib, sys, urllib.request
data = urllib.request.urlopen(sys.argv[1], timeout=120).read()
print(len(data), hashlib.sha256(data).hexdigest())
"""


def test_urllib_downloads_from_the_host_through_10_0_2_2(fast_scenario, http_server, tmp_path):
    port, sha = http_server
    r = _shell(fast_scenario(), "--out", str(tmp_path / "r"), "--pcap", str(tmp_path / "line.pcap"),
               command=[sys.executable, "-c", DOWNLOAD, f"http://10.0.2.2:{port}/file.bin"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == [str(SIZE), sha]
    flows = pd.read_parquet(tmp_path / "r" / "flows.parquet")
    web = flows[(flows.dst == "10.0.2.2") & (flows.dport == port)]
    assert len(web) == 1 and web.octets_down.iloc[0] > SIZE  # payload + TCP/IP headers
    sessions = pd.read_parquet(tmp_path / "r" / "sessions.parquet")
    assert sessions["measured"].all() and sessions["t_link_up_s"].notna().all()
    assert (tmp_path / "line.pcap").stat().st_size > SIZE


def test_nothing_else_is_reachable(fast_scenario, http_server):
    port, _sha = http_server
    probe = ("import socket, sys\n"
             "for host in ('10.0.2.2', '192.0.2.1'):\n"
             "    try:\n"
             "        socket.create_connection((host, int(sys.argv[1])), 10).close(); print('open')\n"
             "    except OSError as e: print(type(e).__name__)\n")
    r = _shell(fast_scenario(), command=[sys.executable, "-c", probe, str(port)])
    assert r.stdout.split() == ["open", "ConnectionRefusedError"], r.stdout + r.stderr


def test_fetchmail_fetches_from_the_simulated_isp(fast_scenario, tmp_path):
    fetchmail = require("fetchmail", "fetchmail is not installed (apt: fetchmail)")
    scenario = fast_scenario()
    out = tmp_path / "delivered"
    out.mkdir()
    mda = tmp_path / "mda.py"
    mda.write_text("import os, sys\nd = sys.argv[1]\n"
                   "open(os.path.join(d, '%04d' % len(os.listdir(d))), 'wb')"
                   ".write(sys.stdin.buffer.read())\n")
    rc = tmp_path / "fetchmailrc"
    rc.write_text("poll pop.isp.example protocol pop3 auth password uidl\n"
                  "  user 'alice' password 'tanstaaf' is root here\n"
                  f"  sslproto '' keep norewrite mda '{sys.executable} {mda} {out}'\n")
    rc.chmod(0o600)
    r = _shell(scenario, command=["env", f"HOME={tmp_path}", fetchmail, "-f", str(rc),
                                  "--nosyslog", "-N", "--idfile", str(tmp_path / "ids")])
    assert r.returncode == 0, r.stdout + r.stderr
    got = []
    for f in sorted(out.iterdir()):  # fetchmail adds its Received: header, hands LF lines
        head, _, rest = f.read_bytes().partition(b"\n")
        while rest[:1] in (b" ", b"\t"):
            _, _, rest = rest.partition(b"\n")
        assert head.startswith(b"Received:")
        got.append(hashlib.sha256(rest.replace(b"\n", b"\r\n")).hexdigest())
    sc = load_scenario(scenario).with_overrides(replications=1)
    stored = run_scenario(sc, tmp_path / "sim").outcomes[0].stored.values()
    assert got == [m.sha256 for m in sorted(stored, key=lambda m: m.uidl)]


def test_carrier_loss_cuts_a_download_and_the_redial_brings_the_link_back(fast_scenario,
                                                                          http_server):
    port, sha = http_server
    # Online at ~6.5 s; the download needs ~16 s at 28.8k: the drop at 10 s cuts it, and
    # the read stalls (the NAT forgets the flow at the hang-up) until its timeout.
    scenario = fast_scenario(link={"carrier_loss": {"at": ["10 s"]}},
                             subscriber={"redial": {"attempts": 3, "delay": "1 s"}})
    script = f"""
import hashlib, socket, subprocess, time, urllib.request
url = "http://10.0.2.2:{port}/file.bin"
try:
    urllib.request.urlopen(url, timeout=15).read()
    print("not cut")
except Exception as e:
    print("cut", type(e).__name__)
def up():
    out = subprocess.run(["ip", "-o", "link", "show", "ppp0"], capture_output=True, text=True).stdout
    return ",UP," in out or "<UP" in out or ",UP>" in out
for _ in range(120):  # the interface came back after the redial
    if up():
        break
    time.sleep(0.25)
print("up again" if up() else "still down")
"""
    r = _shell(scenario, command=[sys.executable, "-c", script], timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("cut") and lines[-1] == "up again", r.stdout + r.stderr


def test_sigint_leaves_nothing_behind(fast_scenario):
    p = subprocess.Popen([sys.executable, "-m", "dialsim", "shell", str(fast_scenario()), "-q",
                          "--", "sleep", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _namespaces() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(8)  # online, sleep running inside
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    assert subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True).returncode == 1


def test_not_root_is_one_clear_line(fast_scenario, monkeypatch, capsys):
    # (A non-root user cannot even import this checkout's packages under /root, so the
    # check is driven in-process with the effective uid of an ordinary user.)
    from dialsim.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["shell", str(fast_scenario()), "--", "true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "root" in err[0] and "sudo" in err[0]
