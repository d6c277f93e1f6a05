"""Lots (traceability codes): check-in/out, their cold-chain record, shelf life, QR codes."""

# The precooling runs put their figures in the lot's EPCIS record through `epcis.CONTRIBUTORS`; importing the
# package registers them, so every path that builds an event (API, CLI, uplink) includes them.
from daemon.lots import precool_epcis as _precool_epcis  # noqa: F401
