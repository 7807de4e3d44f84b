"""Protocol events: the base classes of every machine's events, and the events
that more than one machine emits.

After h11's ``_events.py``: an event is a frozen, slotted dataclass with a
past-tense name for what was received (``FrameReceived``, ``DataReceived``)
and a plain name for what a machine asks its driver to do
(``CloseRequested``).  Consumers dispatch with ``isinstance`` or ``match`` on
the class -- never on the class name as a string -- so each event is defined
exactly once: the events several machines share live here, and each protocol
module defines only its own, deriving from one of the bases below.

The bases say which layer an event belongs to, so a host can route a whole
family without knowing its members:

- :class:`LinkEvent`: the link layer's state (PPP's LCP, authentication and
  IPCP phases; SLIP, which is up at once).
- :class:`FrameEvent`: a frame crossed the serial line (byte accounting and
  captures).
- :class:`NetworkEvent`: a host's IP stack (a connection accepted on a
  listening port, an ICMP echo reply).
- :class:`ConnectionEvent`: a TCP connection's life (RFC 9293).
- :class:`SessionEvent`: an application protocol's session (POP3, SMTP).
- :class:`ModemEvent`: a modem's call progress and result codes (V.250).
- :class:`Effect`: a request the driver must carry out and answer (storage:
  deliver a message, list or commit a maildrop).  A machine that emits one
  waits for the answer before it goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CloseRequested",
    "CommandReceived",
    "ConnectionEvent",
    "Effect",
    "Event",
    "FrameEvent",
    "FrameReceived",
    "FrameSent",
    "IpPacketReceived",
    "LinkEvent",
    "ModemEvent",
    "NetworkEvent",
    "SessionEnded",
    "SessionEvent",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every protocol event."""


@dataclass(frozen=True, slots=True)
class LinkEvent(Event):
    """The link layer changed state (LCP/IPCP up or down, authentication, termination)."""


@dataclass(frozen=True, slots=True)
class FrameEvent(Event):
    """A link frame crossed the serial line.

    ``protocol``: the PPP protocol number of the frame (SLIP and CSLIP use the
    numbers of what they carry: 0x0021 IP, 0x002D compressed TCP, 0x002F
    uncompressed TCP); ``kind``: a short name ("ip", "lcp", "compressed_tcp",
    ...); ``packet``: the IPv4 datagram carried (after VJ decompression on
    receipt; b"" for control frames or a tossed frame); ``frame``: the frame's
    payload as framed (after VJ compression); ``capture``: the frame as a
    capture shows it (PPP: address/control/protocol + information, un-escaped,
    without FCS; SLIP: the datagram); ``wire_octets``: the octets on the serial
    line (flags, escapes, FCS included).  The overhead splits into
    ``header_octets`` (PPP address/control/protocol), ``fcs_octets``,
    ``escape_octets`` and ``flag_octets`` (SLIP: its END octets).
    """

    protocol: int
    kind: str
    packet: bytes
    frame: bytes
    capture: bytes
    wire_octets: int
    header_octets: int = 0
    fcs_octets: int = 0
    escape_octets: int = 0
    flag_octets: int = 0


@dataclass(frozen=True, slots=True)
class FrameSent(FrameEvent):
    """A frame went to the line."""


@dataclass(frozen=True, slots=True)
class FrameReceived(FrameEvent):
    """A good frame arrived from the line."""


@dataclass(frozen=True, slots=True)
class IpPacketReceived(Event):
    """A whole IPv4 datagram arrived over the link (VJ-decompressed when it was compressed)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class NetworkEvent(Event):
    """A host's IP stack: a connection accepted on a listening port, an ICMP echo reply."""


@dataclass(frozen=True, slots=True)
class ConnectionEvent(Event):
    """A TCP connection's life: connected, data, the peer's FIN, closed, reset, timed out."""


@dataclass(frozen=True, slots=True)
class SessionEvent(Event):
    """An application session's event (POP3, SMTP, a login chat)."""


@dataclass(frozen=True, slots=True)
class CommandReceived(SessionEvent):
    """A server parsed one command line (``verb`` upper-case, "" if unparsable).

    A secret argument (PASS, AUTH) is never kept in an event.
    """

    verb: str
    now: float


@dataclass(frozen=True, slots=True)
class CloseRequested(SessionEvent):
    """Flush ``output()`` and close the transport."""

    now: float


@dataclass(frozen=True, slots=True)
class SessionEnded(SessionEvent):
    """A server's session is over ("quit", "autologout", "timeout", "errors", "connection_lost")."""

    reason: str
    now: float


@dataclass(frozen=True, slots=True)
class ModemEvent(Event):
    """A modem's call progress or result (V.250 result codes, carrier, ring)."""


@dataclass(frozen=True, slots=True)
class Effect(Event):
    """A request the driver must carry out and answer before the machine goes on."""
