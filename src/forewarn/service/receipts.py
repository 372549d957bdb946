"""Building a delivery receipt from the stored ledger (the format and its offline check are in
:mod:`forewarn.ledger.receipts`)."""

from __future__ import annotations

from typing import Any

from forewarn.errors import NotFound
from forewarn.ledger.keys import raw_public
from forewarn.ledger.receipts import FORMAT
from forewarn.service.ledger import Ledger


def build_receipt(ledger: Ledger, delivery_id: str) -> dict[str, Any]:
    """The receipt of one delivery (see module docstring); :class:`NotFound` if the ledger has no such delivery."""
    trail = ledger.delivery_trail(delivery_id)
    created = [e for e in trail if e.kind == "delivery_created" and e.subject == delivery_id]
    if not created:
        raise NotFound(f"the ledger records no delivery {delivery_id}", {"delivery_id": delivery_id})
    origin_seq = int(created[0].body.get("origin_seq") or 0)
    full = {e.seq: e for e in trail}
    full |= {e.seq: e for e in ledger.repo.ledger_entries([origin_seq])} if origin_seq else {}
    first, last = min(full), max(full)
    checkpoint = ledger.repo.ledger_checkpoint(last)
    if checkpoint is None:
        raise NotFound(f"no signed entry covers the entries of delivery {delivery_id} (verify the ledger)",
                       {"delivery_id": delivery_id})
    links = [link for link in ledger.repo.ledger_links(first, max(last, checkpoint.seq)) if link.seq not in full]
    keys = ledger.service_keys()
    used = {e.service_key_id for e in full.values() if e.service_key_id}
    used |= {link.service_key_id for link in links if link.service_key_id}
    return {
        "format": FORMAT,
        "delivery_id": delivery_id,
        "service_keys": {kid: raw_public(k) for kid, k in sorted(keys.items()) if kid in used},
        "entries": [full[s].model_dump(mode="json") for s in sorted(full)],
        "links": [link.model_dump(mode="json") for link in links],
    }
