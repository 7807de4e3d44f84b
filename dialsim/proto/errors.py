"""The error a protocol machine raises: our own code misused it (after h11's LocalProtocolError).

``LocalProtocolError``: this side called a machine wrongly (sent in the wrong
state, gave a bad option).  A peer's garbage never raises: every machine
answers it as its RFC says (-ERR, a 5xx reply, Configure-Reject, RST,
discarding the frame), counts it and carries on, so there is no error type for
the peer's faults.
"""


class ProtocolError(Exception):
    """Base class of protocol errors."""


class LocalProtocolError(ProtocolError):
    """This side used a protocol machine wrongly."""
