"""Scenario schema and loading: defaults, cross-field rules, one-line FILE:LINE errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from dialsim.scenario import schema
from dialsim.scenario.load import ScenarioError, load_scenario, scenario_from_text
from dialsim.scenario.schema import Scenario

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
subscriber:
  user: alice
  password: secret
isp:
  maildrop:
    messages: 3
"""

FULL = """\
name: full
description: "every key"
seed: 1
replications: 3
duration: 2 h
framing: ppp
ppp:
  auth: chap
  accm: 0x000a0000
  mru: 1500
  vj: true
login_chat:
  - {expect: "login:", send: "alice"}
  - {expect: "Password:", send: "secret"}
link:
  profile: v34
  connect_rate: 28.8k
  error_correction: true
  compression: true
  serial_rate: 115200
  isp_serial_rate: 57600
  bit_error_rate: 1e-6
  busy_probability: 0.1
  phone_number: "555-0123"
  mtu: 1006
  carrier_loss:
    at: [45 s, 3 min]
    mean_time_between: 10 min
subscriber:
  user: alice
  password: secret
  strategy:
    mode: keep
    use_uidl: true
    pipelining: true
    apop: true
  redial:
    attempts: 5
    delay: 30 s
  calls:
    every: 2 h
  outbox:
    messages: 2
    size: {median: 3 KiB, sigma: 0.8}
    to: ["bob@elsewhere.example"]
isp:
  domain: isp.example
  maildrop:
    messages: 20
    size: {distribution: lognormal, median: 4 KiB, sigma: 1.0}
    attachments: 0.1
  incoming:
    rate: 6 /h
    size: {median: 4 KiB, sigma: 1.0}
"""


def write(tmp_path: Path, text: str, name: str = "sc.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path: Path, text: str, name: str = "sc.yaml") -> str:
    p = write(tmp_path, text, name)
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert "\n" not in msg
    return msg.removeprefix(str(p))


# --- the good paths ---------------------------------------------------------------


def test_minimal_defaults(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL, "my-run.yaml"))
    assert sc.name == "my-run"  # file stem
    assert sc.seed == 0 and sc.replications == 1 and sc.duration == 3600.0
    assert sc.framing == "ppp" and sc.ppp.auth == "pap" and sc.ppp.mru == 1500
    assert sc.link.profile == "v34" and sc.link.connect_rate is None
    assert sc.link.error_correction is True and sc.link.compression is True
    assert sc.link.serial_rate == 115200.0 and sc.link.isp_serial_rate is None
    assert sc.link.mtu == 1006 and sc.link.carrier_loss is None
    assert sc.subscriber.strategy.mode == "delete" and sc.subscriber.redial.attempts == 3
    assert sc.subscriber.calls is None and sc.subscriber.outbox is None
    assert sc.isp.maildrop.messages == 3 and sc.isp.maildrop.path is None
    assert sc.isp.incoming is None
    assert sc.scenario_text == MINIMAL
    assert sc.source_dir == tmp_path.resolve()


def test_full_example_converts_units(tmp_path):
    sc = load_scenario(write(tmp_path, FULL))
    assert sc.name == "full" and sc.duration == 7200.0
    assert sc.ppp.auth == "chap" and sc.ppp.accm == 0x000A0000
    assert [s.expect for s in sc.login_chat] == ["login:", "Password:"]
    lk = sc.link
    assert lk.connect_rate == 28800.0 and lk.isp_serial_rate == 57600.0
    assert lk.bit_error_rate == pytest.approx(1e-6)  # YAML 1.1 reads 1e-6 as a string
    assert lk.carrier_loss.at == [45.0, 180.0] and lk.carrier_loss.mean_time_between == 600.0
    sub = sc.subscriber
    assert sub.strategy.mode == "keep" and sub.strategy.apop is True
    assert sub.redial.delay == 30.0 and sub.calls.every == 7200.0
    assert sub.outbox.size.median == 3072 and sub.outbox.to == ["bob@elsewhere.example"]
    assert sc.isp.maildrop.size.median == 4096
    assert sc.isp.incoming.rate == pytest.approx(6 / 3600)


def test_compression_defaults_to_error_correction(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL + "link:\n  error_correction: false\n"))
    assert sc.link.compression is False


def test_password_not_in_repr(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL))
    assert "secret" not in repr(sc.subscriber)


def test_accm_hex_string(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL + 'ppp:\n  accm: "0xffffffff"\n'))
    assert sc.ppp.accm == 0xFFFFFFFF


def test_unquoted_phone_number_is_text(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL + "link:\n  phone_number: 5550123\n"))
    assert sc.link.phone_number == "5550123"


@pytest.mark.parametrize("path", sorted((REPO / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path):
    sc = load_scenario(path)
    assert sc.name == path.stem or sc.name


def test_maildrop_path_relative_to_scenario_file(tmp_path):
    (tmp_path / "Maildir" / "new").mkdir(parents=True)
    text = MINIMAL.replace("messages: 3", "path: ./Maildir")
    sc = load_scenario(write(tmp_path, text))
    assert (sc.source_dir / sc.isp.maildrop.path).is_dir()


def test_with_overrides(tmp_path):
    sc = load_scenario(write(tmp_path, "seed: 1\n" + MINIMAL))
    sc2 = sc.with_overrides(seed=9, replications=4)
    assert (sc2.seed, sc2.replications) == (9, 4)
    assert (sc.seed, sc.replications) == (1, 1)  # original untouched
    assert sc2.source_dir == sc.source_dir
    as_run = yaml.safe_load(sc2.scenario_text)
    assert as_run["seed"] == 9 and as_run["replications"] == 4
    assert scenario_from_text(sc2.scenario_text).seed == 9


def test_with_overrides_rejects_bad_values(tmp_path):
    sc = load_scenario(write(tmp_path, MINIMAL))
    with pytest.raises(ScenarioError) as e:
        sc.with_overrides(replications=0)
    assert str(e.value) == "(command line): replications: bad value 0; must be >= 1"
    with pytest.raises(ScenarioError, match=r"seeds: unknown key; did you mean seed\? accepted keys: name, "):
        sc.with_overrides(seeds=3)


def test_connect_rate_profile_hook(tmp_path, monkeypatch):
    monkeypatch.setitem(schema.PROFILE_CONNECT_RATES, "v32bis", (4800.0, 14400.0))
    text = MINIMAL + "link:\n  profile: v32bis\n  connect_rate: 28.8k\n"
    assert error_of(tmp_path, text) == (
        ":9: link.connect_rate: 28800 bit/s is out of reach for profile v32bis; "
        "use 4800 .. 14400 bit/s or omit connect_rate"
    )
    monkeypatch.setitem(schema.PROFILE_CONNECT_RATES, "v32bis", (4800.0, 28800.0))
    assert load_scenario(write(tmp_path, text)).link.connect_rate == 28800.0


# --- every error class: exact line, exact text --------------------------------------

LINK_KEYS = (
    "profile, connect_rate, error_correction, compression, serial_rate, isp_serial_rate, "
    "bit_error_rate, busy_probability, no_answer_probability, phone_number, mtu, carrier_loss, "
    "dial, handshake, burst_noise, retrain, call_waiting, lapm, tariff"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            MINIMAL + "link:\n  profle: v34\n",
            f":8: link.profle: unknown key; did you mean profile? accepted keys: {LINK_KEYS}",
            id="unknown-key-nested",
        ),
        pytest.param(
            MINIMAL + "link:\n  carrier_loss:\n    at: [45 s]\n    every: 3 min\n",
            ":10: link.carrier_loss.every: unknown key; accepted keys: at, mean_time_between, while_dialing",
            id="unknown-key-deep",
        ),
        pytest.param(
            "colour: blue\n" + MINIMAL,
            ":1: colour: unknown key; accepted keys: name, description, seed, replications, "
            "duration, framing, ppp, login_chat, link, subscriber, isp, sweep, population",
            id="unknown-key-top",
        ),
        pytest.param(
            MINIMAL + "duration: fast\n",
            ":7: duration: bad duration 'fast'; use a number with s, ms, min, h or d (e.g. \"45 s\")",
            id="bad-duration",
        ),
        pytest.param(
            MINIMAL + "link:\n  carrier_loss:\n    at:\n      - 45 s\n      - soon\n",
            ":11: link.carrier_loss.at[1]: bad duration 'soon'; use a number with s, ms, min, h or d (e.g. \"45 s\")",
            id="bad-duration-in-list",
        ),
        pytest.param(
            MINIMAL + "link:\n  connect_rate: quick\n",
            ":8: link.connect_rate: bad rate 'quick'; use bits per second: a number, optionally "
            'with k or M and bps or bit/s (e.g. "28.8k", "115200 bps")',
            id="bad-rate",
        ),
        pytest.param(
            MINIMAL.replace("messages: 3", "messages: 3\n    size: {median: huge}"),
            ":7: isp.maildrop.size.median: bad size 'huge'; use a whole number of bytes or a number "
            'with B, kB, KiB, MB, MiB, GB or GiB (e.g. "4 KiB")',
            id="bad-size",
        ),
        pytest.param(
            MINIMAL + "link:\n  profile: v35\n",
            ":8: link.profile: bad value 'v35'; accepted values: v22bis, v32bis, v34, v34_33600, v90",
            id="wrong-enum",
        ),
        pytest.param(
            MINIMAL + "framing: x25\n",
            ":7: framing: bad value 'x25'; accepted values: slip, cslip, ppp",
            id="wrong-enum-top",
        ),
        pytest.param(
            "seed: 1\nsubscriber:\n  password: secret\nisp:\n  maildrop: {messages: 1}\n",
            ":2: subscriber.user: missing required key; expected a string",
            id="missing-required-nested",
        ),
        pytest.param(
            "# comment\nseed: 1\nsubscriber: {user: a, password: b}\n",
            ":2: isp: missing required key; expected a mapping with keys domain, maildrop, incoming, pop3, smtp, "
            "idle_timeout, session_limit",
            id="missing-required-top",
        ),
        pytest.param(
            MINIMAL + "replications: 0\n",
            ":7: replications: bad value 0; must be >= 1",
            id="below-minimum",
        ),
        pytest.param(
            MINIMAL + "duration: 0 s\n",
            ":7: duration: bad value 0.0; must be > 0",
            id="duration-zero",
        ),
        pytest.param(
            MINIMAL + "link:\n  bit_error_rate: 0.5\n",
            ":8: link.bit_error_rate: bad value 0.5; must be <= 0.01",
            id="above-maximum",
        ),
        pytest.param(
            MINIMAL + "seed: lots\n",
            ":7: seed: bad value 'lots'; expected a whole number",
            id="wrong-type",
        ),
        pytest.param(
            MINIMAL + "link:\n  error_correction: false\n  compression: true\n",
            ":9: link.compression: compression (V.42bis) needs error_correction (V.42); "
            "set error_correction: true or compression: false",
            id="compression-needs-ec",
        ),
        pytest.param(
            MINIMAL.replace("messages: 3", "messages: 3\n    path: ./Maildir"),
            ":7: isp.maildrop.path: give messages or path, not both; use messages: N to "
            "synthesize, or path: DIR",
            id="maildrop-both",
        ),
        pytest.param(
            MINIMAL.replace("messages: 3", "attachments: 0.1"),
            ":5: isp.maildrop.path: needs messages or path; use messages: N to synthesize, "
            "or path: DIR (Maildir or mbox)",
            id="maildrop-neither",
        ),
        pytest.param(
            MINIMAL.replace("messages: 3", "path: ./nowhere"),
            ":6: isp.maildrop.path: no such Maildir or mbox './nowhere'; give a path relative "
            "to the scenario file",
            id="maildrop-path-missing",
        ),
        pytest.param(
            MINIMAL + "link:\n  profile: v34\n   mtu: 576\n",
            ":9: (yaml): mapping values are not allowed here; check indentation, colons and quoting (YAML)",
            id="yaml-syntax",
        ),
        pytest.param(
            MINIMAL + "link:\n\tprofile: v34\n",
            ":8: (yaml): found character '\\t' that cannot start any token; check indentation, "
            "colons and quoting (YAML)",
            id="yaml-tab",
        ),
        pytest.param(
            MINIMAL + "seed: 1\nseed: 2\n",
            ":8: seed: duplicate key; give each key once",
            id="duplicate-key",
        ),
        pytest.param(
            "- just\n- a list\n",
            ":1: (top level): bad value list; expected a mapping with keys name, description, seed, "
            "replications, duration, framing, ppp, login_chat, link, subscriber, isp, sweep, population",
            id="not-a-mapping",
        ),
        pytest.param(
            "# nothing here\n",
            ":1: (top level): empty file; expected a mapping with keys name, description, seed, "
            "replications, duration, framing, ppp, login_chat, link, subscriber, isp, sweep, population",
            id="empty",
        ),
        pytest.param(
            MINIMAL + "link:\n  carrier_loss: 5\n",
            ":8: link.carrier_loss: bad value 5; expected a mapping with keys at, mean_time_between, while_dialing",
            id="scalar-for-section",
        ),
        pytest.param(
            MINIMAL + "login_chat:\n  - {expect: 'login:'}\n",
            ":8: login_chat[0].send: missing required key; expected a string",
            id="missing-in-list-item",
        ),
    ],
)
def test_error_line(tmp_path, text, expected):
    assert error_of(tmp_path, text) == expected


def test_first_error_by_line_wins(tmp_path):
    text = "framing: x25\n" + MINIMAL + "duration: fast\n"
    assert error_of(tmp_path, text).startswith(":1: framing: bad value 'x25'")


def test_error_attributes(tmp_path):
    p = write(tmp_path, MINIMAL + "link:\n  profile: v35\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert (e.value.file, e.value.line, e.value.field) == (str(p), 8, "link.profile")


def test_not_utf8(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes(b"seed: 1\ndescription: caf\xe9\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert str(e.value) == f"{p}:2: (file): not UTF-8 text; save the scenario as UTF-8"


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_scenario(tmp_path / "absent.yaml")


def test_every_section_forbids_extra_keys():
    sections = [
        v
        for v in vars(schema).values()
        if isinstance(v, type) and issubclass(v, schema.Section) and v is not schema.Section
    ]
    assert Scenario in sections and len(sections) >= 14
    assert all(s.model_config.get("extra") == "forbid" for s in sections)
