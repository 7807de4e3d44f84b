"""`dialsim dial` against real ISP software: Dovecot behind slirp.

- `--direct`: slirp already on a pty (a connected null-modem line); dialsim's
  subscriber brings up SLIP and fetches from Dovecot, whose address the scenario
  gives as `isp.pop3.address` (slirp's host alias 10.0.2.2).
- `dialsim modem --isp-command slirp`: the virtual modem answers the scenario's
  number and hands the line to a fresh slirp in PPP mode, throttled by the link
  model both ways; `dialsim dial` dials it over a pty and fetches from Dovecot
  through both.

Every message must arrive byte-identical: the `intact` column compares each
retrieved message's SHA-256 with Dovecot's Maildir, which the scenario names as
`isp.maildrop.path`.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys

import pytest
import yaml

from dialsim.results.tables import read_tables

from .peers import require

pytestmark = pytest.mark.interop


def _message(n: int, lines: int) -> bytes:
    rng = random.Random(n)
    body = "\r\n".join(("." if i % 11 == 2 else "") + "".join(
        rng.choice("abcdefghij klmnopqrstuvwxyz") for _ in range(rng.randrange(60)))
        for i in range(lines))
    return (f"From: isp@example.net\r\nTo: subscriber@example.net\r\nSubject: dial {n}\r\n"
            f"Message-ID: <{n}@example.net>\r\n\r\n{body}\r\n").encode()


@pytest.fixture
def dovecot_mail(dovecot):
    msgs = [_message(1, 5), _message(2, 120), _message(3, 400)]
    for i, m in enumerate(msgs):
        dovecot.deliver(m, name=f"200000000{i}.M{i}P1.dial")
    return dovecot, {hashlib.sha256(m).hexdigest() for m in msgs}


def _scenario(tmp_path, dovecot, framing: str, **link) -> str:
    data = {
        "name": f"dovecot-{framing}",
        "framing": framing,
        "ppp": {"auth": "none"},  # slirp asks for no authentication
        "link": {"profile": "v34", "connect_rate": "28.8k", "phone_number": "555-0199",
                 "mtu": 1006, "dial": {"post_dial_delay": ["0 s", "0 s"]}, "handshake": "0.5 s",
                 **link},
        "subscriber": {"user": dovecot.user, "password": dovecot.password,
                       "address": "10.0.2.15", "strategy": {"mode": "keep"}},
        "isp": {"domain": "example.net", "maildrop": {"path": str(dovecot.maildir)},
                "pop3": {"address": f"10.0.2.2:{dovecot.port}"}},
    }
    path = tmp_path / f"{framing}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _dial(scenario, port, out, *extra):
    r = subprocess.run([sys.executable, "-m", "dialsim", "dial", scenario, "--port", port,
                        "--out", str(out), "--timeout", "90", "-q", *extra],
                       capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr
    return read_tables(out)


def _assert_fetched(tables, expected: set[str]) -> None:
    msgs = tables["messages"]
    assert set(msgs["sha256"]) == expected and len(msgs) == len(expected), msgs
    assert msgs["intact"].all()
    assert list(tables["sessions"]["end_reason"]) == ["quit"]


def test_dial_direct_fetches_from_dovecot_through_slirp(slirp_pty, dovecot_mail, tmp_path):
    dovecot, expected = dovecot_mail
    line = slirp_pty("slip", args=("mtu 1006",))
    os.close(line.fd)  # dialsim dial opens the dial-up side itself
    line.fd = -1
    tables = _dial(_scenario(tmp_path, dovecot, "slip"), line.tty_path, tmp_path / "d",
                   "--direct")
    _assert_fetched(tables, expected)
    assert tables["sessions"]["measured"].all()


def test_modem_isp_command_runs_slirp_and_dial_fetches_through_both(
        selectfix_so, dovecot_mail, modem_on_pty_interop, tmp_path):
    dovecot, expected = dovecot_mail
    slirp = require("slirp", "slirp is not installed (apt: slirp)")
    home = tmp_path / "slirp-home"
    home.mkdir()
    scenario = _scenario(tmp_path, dovecot, "ppp")
    command = f"env HOME={home} LD_PRELOAD={selectfix_so} {slirp} ppp"
    modem, tty = modem_on_pty_interop(scenario, "--isp-command", command)
    tables = _dial(scenario, str(tty), tmp_path / "m")
    _assert_fetched(tables, expected)
    assert modem.wait_log("CONNECT")
    events = tables["link_events"]
    assert list(events["event"])[:2] == ["dial", "connect"]


@pytest.fixture
def modem_on_pty_interop(tmp_path):
    from tests.realtime.conftest import ModemProcess

    started = []

    def start(scenario, *extra):
        path = tmp_path / "ttyISP"
        m = ModemProcess([scenario, "--pty", str(path), *extra], ready_path=path)
        started.append(m)
        return m, path

    yield start
    for m in started:
        m.stop()
