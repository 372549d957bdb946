"""Reference data use cases: parties, agreements and protected sites, and the record of disclosures. Each is
one transaction under the writer lock, recorded in the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from forewarn.core.airspace import Airspace
from forewarn.core.credentials import Credential, new_credential
from forewarn.core.model import Agreement, Party, ProtectedSite, Subscription
from forewarn.core.policy import can_see
from forewarn.core.records import Delivery
from forewarn.core.sites import check_site, site_zone
from forewarn.errors import InvalidInput, LimitReached, NotFound
from forewarn.geo.volume import check_volume
from forewarn.ledger.keys import PartySignature
from forewarn.service.evaluation import require_aware
from forewarn.service.group_commit import GroupCommit
from forewarn.service.ledger import BodyCheck, Ledger
from forewarn.service.settings import Settings
from forewarn.service.submissions import Submission
from forewarn.service.webhook_urls import check_party_webhooks
from forewarn.store.repository import Repository


def field_is(name: str, value: object) -> BodyCheck:
    """A check that a signed request body has ``value`` at ``name``."""
    def check(body: dict[str, Any]) -> str | None:
        return None if body.get(name) == value else f"its {name} is {body.get(name)!r}, not {value!r}"

    return check


def _cap(held: int, replacing: bool, limit: int, what: str, setting: str) -> None:
    """Refuse a new record beyond a per-party count ``limit`` (a replacement of a held one always passes)."""
    if not replacing and held >= limit:
        raise LimitReached(f"you already hold {held} {what}, the limit ({setting}); delete or replace one",
                           {"held": held, "limit": limit})


class ReferenceData:
    """Parties, agreements, protected sites and disclosures (a part of :class:`~forewarn.service.notices.Forewarn`,
    which holds the repository, the ledger, the live airspace and the writer)."""

    repo: Repository
    ledger: Ledger
    airspace: Airspace
    settings: Settings
    commits: GroupCommit

    def put_party(self, party: Party) -> None:
        """Create or update a party; its webhook URLs must pass the webhook policy (service.webhook_urls)."""
        check_party_webhooks(party, self.settings)
        with self.commits.committing(), self.repo.transaction():
            self.repo.put_party(party)

    def put_agreement(self, agreement: Agreement, now: datetime | None = None) -> None:
        """Create or update an agreement; every party it names must exist. Recorded in the ledger at ``now``
        (default: the system clock, for callers that manage reference data without a clock)."""
        at = now or datetime.now(UTC)
        with self.commits.committing():
            missing = [p for p in agreement.parties if self.repo.get_party(p) is None]
            if missing:
                raise InvalidInput(f"agreement {agreement.id} names unknown parties: {', '.join(missing)}",
                                   {"unknown_parties": missing})
            with self.repo.transaction():
                self.repo.put_agreement(agreement)
                self.ledger.append("agreement", agreement.id, agreement.model_dump(mode="json"), at)
            self.airspace.book.put(agreement)

    def register_site(self, site: ProtectedSite, now: datetime | None = None,
                      party_signature: PartySignature | None = None) -> None:
        """Register (or update) a protected site; its registering party must exist. Every party an agreement
        binds to the registrant gets a delivery of the site (to acknowledge, escalated like notices); all of it
        is recorded in the ledger at ``now`` (default: the system clock)."""
        at = now or datetime.now(UTC)
        require_aware(at)
        check_site(site, self.settings.volume_limits())
        site_zone(site)  # the buffer, computed (and cached) here, outside the writer lock: no filing waits for it
        with self.commits.committing():
            if self.repo.get_party(site.registered_by) is None:
                raise InvalidInput(f"protected site {site.id}: unknown party {site.registered_by}",
                                   {"registered_by": site.registered_by})
            held = [s.id for s in self.repo.list_sites() if s.registered_by == site.registered_by]
            _cap(len(held), site.id in held, self.settings.max_sites_per_party, "protected sites",
                 "FOREWARN_MAX_SITES_PER_PARTY")
            signed = self.ledger.accept(party_signature, site.registered_by, Submission("register_site", site.id),
                                        at, field_is("id", site.id))
            with self.repo.transaction():
                self.repo.put_site(site)
                origin = self.ledger.append("site_registration", site.id, {
                    "site_id": site.id, "site": site.model_dump(mode="json")}, at, party_id=site.registered_by,
                    party_signature=signed)
                deliveries = self._site_deliveries(site, at)
                self.repo.add_deliveries(deliveries)
                self.ledger.record_deliveries(deliveries, origin.seq, at, site_id=site.id)
                self.commits.announce(d.party_id for d in deliveries)

    def _site_deliveries(self, site: ProtectedSite, now: datetime) -> list[Delivery]:
        """One delivery of a site registration to each party bound to the registrant (what ``GET /v1/sites``
        shows them), with the strictest acknowledgement deadline of the agreements binding the two."""
        book = self.airspace.book
        parties = {p.id: p for p in self.repo.list_parties()}
        out: list[Delivery] = []
        for party_id in sorted(book.bound_parties(site.registered_by)):
            if party_id not in parties or not can_see(party_id, site.registered_by, book):
                continue
            ack_s = min((a.ack_deadline_s for a in book.binding(party_id, site.registered_by)), default=None)
            out.append(Delivery(
                id=str(uuid.uuid4()), notice_id=None, party_id=party_id, reason="site",
                payload={"type": "site_registration", "at": now.isoformat(), "from_party": site.registered_by,
                         "site": site.model_dump(mode="json")},
                created_at=now, ack_deadline=now + timedelta(seconds=ack_s) if ack_s is not None else None,
                next_attempt_at=now if parties[party_id].webhook_url else None,
            ))
        return out

    def put_subscription(self, sub: Subscription, now: datetime) -> None:
        """Create or replace ``sub`` (its party must exist): its volume within the volume limits (vertices, area,
        the planning horizon from ``now``), at most ``max_subscriptions_per_party`` per party. Nothing is stored
        on refusal."""
        require_aware(now)
        check_volume(sub.volume, self.settings.volume_limits(), now, where="volume")
        with self.commits.committing():
            if self.repo.get_party(sub.party_id) is None:
                raise InvalidInput(f"subscription {sub.id}: unknown party {sub.party_id}", {"party_id": sub.party_id})
            held = [s.id for s in self.repo.list_subscriptions(sub.party_id)]
            _cap(len(held), sub.id in held, self.settings.max_subscriptions_per_party, "subscriptions",
                 "FOREWARN_MAX_SUBSCRIPTIONS_PER_PARTY")
            with self.repo.transaction():
                self.repo.put_subscription(sub)

    def issue_credential(self, party_id: str, scopes: Iterable[str], now: datetime) -> tuple[Credential, str]:
        """New client credentials for an existing party with ``scopes`` (checked), stored with the secret hashed;
        returns them with the secret, which is shown once and kept nowhere."""
        with self.commits.committing():
            if self.repo.get_party(party_id) is None:
                raise NotFound(f"no party {party_id}")
            cred, secret = new_credential(party_id, scopes, now)
            with self.repo.transaction():
                self.repo.put_credential(cred)
        return cred, secret

    def record_disclosure(self, viewer: str, operation_id: str, view: dict[str, Any], now: datetime, via: str,
                          ) -> None:
        """:meth:`record_disclosures` of one operation's view."""
        self.record_disclosures(viewer, [(operation_id, view)], now, via)

    def record_disclosures(self, viewer: str, views: list[tuple[str, dict[str, Any]]], now: datetime, via: str,
                           ) -> None:
        """Record that ``viewer`` was shown ``views`` ((operation id, view)) through a read path ``via`` (e.g.
        "GET /v1/operations/ID", "export") at ``now`` (UTC): one ``disclosure`` entry listing the views not
        already recorded for this reader in the current period (its own transaction), or none when every view
        was (only counted: :class:`~forewarn.service.ledger_tally.DisclosureTally`). Read paths that release
        planning detail call it."""
        require_aware(now)
        if not views:
            return
        tally = self.ledger.disclosures
        with tally.lock:
            fresh, extra = tally.fresh(viewer, views, now)
            if not fresh:
                return
            with self.repo.transaction():
                self.ledger.append("disclosure", fresh[0][0] if len(fresh) == 1 else viewer, {
                    "via": via, "operations": [{"operation_id": op_id, "view": view} for op_id, view in fresh],
                } | extra, now, party_id=viewer)
