"""RFC 1939 autologout counts inactivity, not time spent sending a long RETR."""

from dialsim.experiment.world import run_replication
from dialsim.scenario.load import scenario_from_text

SCENARIO = """
seed: 2
duration: 1 h
framing: slip
link: {profile: v22bis, error_correction: false, serial_rate: 9600}
subscriber: {user: alice, password: pw}
isp:
  maildrop: {messages: 1, content: random, size: {distribution: fixed, median: 60 KiB}}
  pop3: {autologout: 1 min}
"""


def test_long_retr_outlasts_a_short_autologout(tmp_path):
    out = run_replication(scenario_from_text(SCENARIO), 0, tmp_path)
    (s,) = out.recorder.sessions
    retr = [c for c in out.recorder.commands if c["command"].startswith("RETR")]
    assert retr[0]["t_done_s"] - retr[0]["t_sent_s"] > 200  # 60 KiB at 240 octets/s
    assert s["end_reason"] == "quit" and s["messages_retrieved"] == 1
    assert out.messages_lost == 0
