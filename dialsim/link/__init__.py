"""dialsim.link: modems and the phone line (ITU-T V.22bis/V.32bis/V.34/V.90, V.42, V.42bis, V.250).

- :mod:`dialsim.link.pipeline`: the pure per-chunk timing core (no simpy), one
  :class:`~dialsim.link.pipeline.Direction` per direction of a call.
- :mod:`dialsim.link.v42bis`: ITU-T V.42bis, the encoder each direction runs
  (compiled; the pure-Python reference is :mod:`dialsim.link.v42bis_ref`).
- :mod:`dialsim.link.profiles`: modem generations and dial timing.
- :mod:`dialsim.link.call`: the simpy layer (``dial`` -> ``Call`` with two ``Port``\\ s).

This package imports no protocol machine and nothing from ``dialsim.results``;
it reports call progress through an ``on_event(t, event, detail)`` callback.
See ``docs/link-model.md``.
"""

from dialsim.link.pipeline import Delivery, Direction, DirectionConfig
from dialsim.link.profiles import (
    CONNECT_RATE_LIMITS,
    PROFILES,
    DialTiming,
    ModemProfile,
    get_profile,
)

__all__ = [
    "CONNECT_RATE_LIMITS",
    "PROFILES",
    "Delivery",
    "DialTiming",
    "Direction",
    "DirectionConfig",
    "ModemProfile",
    "get_profile",
]
