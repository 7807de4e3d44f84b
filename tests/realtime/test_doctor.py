"""`dialsim doctor`: the support page's three checks, each with a verdict and a next step,
on the simulated line, on a live (virtual) modem, and directly against a mail host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dialsim.drivers.sockets import ServiceThread
from dialsim.hosts.mailhost import MailHost, MailHostConfig

ROOT = Path(__file__).resolve().parents[2]


def _doctor(*args):
    return subprocess.run([sys.executable, "-m", "dialsim", "doctor", *args],
                          capture_output=True, text=True, timeout=180)


def test_simulated_line_all_checks_pass():
    r = _doctor(str(ROOT / "scenarios" / "quickstart.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    for check in ("line", "ping", "pop3", "login"):
        assert f"ok   {check}" in r.stdout, r.stdout
    assert "answered in" in r.stdout and "POP3 server ready" in r.stdout


def test_wrong_password_gets_the_case_hint():
    # SLIP: no PPP authentication, so the POP3 server is the one to refuse.
    r = _doctor(str(ROOT / "scenarios" / "slow-2400.yaml"), "--password", "TANSTAAF")
    assert r.returncode == 1
    assert "FAIL login" in r.stdout and "case sensitive" in r.stdout
    assert "ok   ping" in r.stdout and "ok   pop3" in r.stdout


def test_live_line_through_the_virtual_modem(fast_scenario):
    scenario = fast_scenario()
    r = _doctor(str(scenario), "--port", f"dialsim://{scenario}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   login" in r.stdout


def test_direct_to_a_mail_host(tmp_path, fast_scenario):
    accounts = tmp_path / "accounts"
    accounts.write_text("alice:tanstaaf\n")
    accounts.chmod(0o600)
    config = MailHostConfig.from_paths(tmp_path / "maildir", accounts, pop3=("127.0.0.1", 0),
                                       smtp=None, auth_delay=0.0)
    mh = ServiceThread(MailHost(config))
    mh.start()
    try:
        host, port = mh.addresses["pop3"]
        r = _doctor(str(fast_scenario()), "--host", host, "--pop3-port", str(port))
        assert "ok   pop3" in r.stdout and "ok   login" in r.stdout, r.stdout
        wrong = _doctor(str(fast_scenario()), "--host", host, "--pop3-port", str(port),
                        "--password", "TANSTAAF")
        assert wrong.returncode == 1 and "case sensitive" in wrong.stdout
    finally:
        mh.stop()
