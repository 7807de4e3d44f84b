"""Retrieval time of one big message against the line-rate formula (docs/link-model.md).

One 200 KiB message of base64'd random bytes over V.34 at 28800 bps with error
correction off: every byte crosses the line as 10 bits (start, 8 data, stop),
so the RETR must take (octets on the line, down) * 10 / 28800 seconds, within 3%.
"""

from dialsim.experiment.world import run_replication
from dialsim.scenario.load import scenario_from_text

SCENARIO = """
name: throughput
seed: 5
replications: 1
duration: 30 min
framing: slip
link:
  profile: v34
  connect_rate: 28.8k
  error_correction: false
  serial_rate: 115200
subscriber:
  user: alice
  password: tanstaaf
isp:
  maildrop:
    messages: 1
    content: random
    size: {distribution: fixed, median: 200 KiB}
"""


def test_retr_time_matches_line_rate(tmp_path):
    sc = scenario_from_text(SCENARIO)
    out = run_replication(sc, 0, tmp_path)
    (session,) = out.recorder.sessions
    retr = [c for c in out.recorder.commands if c["command"].startswith("RETR")]
    assert len(retr) == 1 and retr[0]["ok"]
    assert retr[0]["bytes_down"] > 200 * 1024
    t_retr = retr[0]["t_done_s"] - retr[0]["t_sent_s"]
    # Octets that crossed the line downstream during the whole call (SLIP frames
    # as they left the serial port); the RETR response is all but ~0.5% of them
    # (greeting, login, STAT, UIDL, QUIT).  10 bits each on an async line.
    expected = session["line_bytes_down"] * 10 / 28800
    assert session["line_bits_down"] == session["line_bytes_down"] * 10
    assert session["connect_rate_bps"] == 28800
    assert abs(t_retr - expected) / expected < 0.03, (t_retr, expected)
    # And nothing arrived faster than the line allows.
    assert t_retr > retr[0]["bytes_down"] * 10 / 28800
