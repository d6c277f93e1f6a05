"""EPCIS eventIDs of lot events that were sent before the journal kept one (migration 13).

Kept apart from `daemon/lots/epcis.py` because the lot store back-fills them when it opens a journal, and the
EPCIS builder imports the store.
"""

from __future__ import annotations

import uuid

CC = "https://coldchain-monitor.org/epcis/"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CC)


def legacy_uid(site: str, local_id: int) -> str:
    """The id events had before the journal kept one: uuid5(NAMESPACE, "<site>/lot-event/<journal id>")."""
    return str(uuid.uuid5(NAMESPACE, f"{site}/lot-event/{local_id}"))
