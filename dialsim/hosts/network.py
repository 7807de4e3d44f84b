"""The addressing plan of a dial-up ISP, shared by its hosts and its subscribers.

The ISP's mail host is 10.0.0.1; the subscriber on NAS line *i* gets 10.0.0.(2+i)
(by IPCP from the NAS's pool, or configured by hand for SLIP); the DNS servers
are announced by RFC 1877 IPCP options.  POP3 on port 110 (RFC 1939), SMTP on
port 25 (RFC 5321).
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "DNS_SERVERS",
    "ISP_ADDR",
    "POP3_PORT",
    "SMTP_PORT",
    "SUBSCRIBER_ADDR",
    "TCP_1990S",
    "line_address",
]

ISP_ADDR = "10.0.0.1"
SUBSCRIBER_ADDR = "10.0.0.2"
DNS_SERVERS = ("10.0.0.53", "10.0.0.54")
POP3_PORT = 110
SMTP_PORT = 25

# The stacks of the era: RFC 1122 4.2.3.1 / RFC 2988 start the retransmission
# timer at 3 s (RFC 6298 lowered it to 1 s in 2011), and BSD's retransmit timer
# ticked every 500 ms, the G of RFC 6298's RTO = SRTT + max(G, 4*RTTVAR).  On a
# 2400 bps line one 1006-octet SLIP frame alone takes 4 s: a modern 1 s RTO
# with millisecond clocks would retransmit spuriously far more than they did.
TCP_1990S = {"initial_rto": 3.0, "clock_granularity": 0.5}


def line_address(line: int) -> str:
    """The address a subscriber on NAS line ``line`` (0-based) gets."""
    return str(ipaddress.IPv4Address(SUBSCRIBER_ADDR) + line)
