"""The two error types every protocol machine uses (after h11).

``LocalProtocolError``: our own code misused a machine (sent in the wrong state).
``RemoteProtocolError``: kept for machines that must report a peer's violation
to their caller; machines never raise it out of ``receive`` -- they answer as
their RFC says and count the fault instead.
"""


class ProtocolError(Exception):
    """Base class of protocol errors."""


class LocalProtocolError(ProtocolError):
    """This side used a protocol machine wrongly."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol."""
