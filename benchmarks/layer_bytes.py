"""Bytes per layer on the line for one bulk retrieval, by framing and header compression.

    python benchmarks/layer_bytes.py

Runs the same retrieval (30 messages, median 8 KiB, V.34 28800, V.42 on,
V.42bis off) over SLIP, CSLIP, PPP without VJ and PPP with VJ, and prints a
Markdown table of the octets the subscriber received, split by layer:
application payload (POP3 bytes), TCP/IP headers (after VJ compression),
link framing (SLIP END/escapes or PPP flags/header/FCS/escapes), link control
(LCP/auth/IPCP), and the modem's own framing on the line (LAPM).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from dialsim.experiment.world import run_replication
from dialsim.scenario.load import scenario_from_text

TEMPLATE = """
name: layers
seed: 9
duration: 1 h
framing: {framing}
ppp: {{auth: pap, vj: {vj}}}
link: {{profile: v34, connect_rate: 28.8k, error_correction: true, compression: false}}
subscriber: {{user: alice, password: tanstaaf, strategy: {{mode: delete}}}}
isp: {{maildrop: {{messages: 30, size: {{median: 8 KiB, sigma: 0.7}}, attachments: 0.2}}}}
"""

CASES = [("SLIP", "slip", "false"), ("CSLIP", "cslip", "false"),
         ("PPP, no VJ", "ppp", "false"), ("PPP + VJ", "ppp", "true")]


def measure() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, framing, vj in CASES:
            sc = scenario_from_text(TEMPLATE.format(framing=framing, vj=vj))
            out = run_replication(sc, 0, Path(tmp) / label.replace(" ", "_").replace(",", ""))
            (s,) = out.recorder.sessions
            modem = s["line_bits_down"] / 8 - s["line_bytes_down"]
            rows.append({
                "framing": label,
                "app": s["down_app_octets"],
                "tcpip": s["down_tcpip_header_octets"],
                "framing_octets": s["down_framing_octets"],
                "control": s["down_link_control_octets"],
                "serial": s["line_bytes_down"],
                "modem": modem,
                "packets": s["down_packets"],
                "t_retrieve": s["t_end_s"] - s["t_link_up_s"],
            })
    return rows


def main() -> None:
    rows = measure()
    print("| framing | application | TCP/IP headers | per packet | link framing | link control "
          "| serial octets | LAPM on the line | link up to hang-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['framing']} | {r['app']:,} | {r['tcpip']:,} | {r['tcpip'] / r['packets']:.1f} "
              f"| {r['framing_octets']:,} | {r['control']:,} | {r['serial']:,} | {r['modem']:,.0f} "
              f"| {r['t_retrieve']:.1f} s |")


if __name__ == "__main__":
    main()
