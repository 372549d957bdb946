"""Parties, agreements, protected sites, operations (with PostGIS footprints), notices, credentials, the issuer
key, idempotency keys and subscriptions: the document tables of the PostgreSQL backend (JSONB documents)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import shapely
from shapely.geometry.base import BaseGeometry

from forewarn.core.credentials import Credential, PartyAccess
from forewarn.core.model import Agreement, Operation, OperationState, Party, ProtectedSite, Subscription
from forewarn.core.records import NoticeOutcome
from forewarn.core.text import STORED
from forewarn.store.keyfile import KeyFile, public_pem_of, split_legacy, with_current
from forewarn.store.postgres.connection import PostgresBase
from forewarn.store.repository import StoredNotice

CURRENT_SQL = ("SELECT v.doc::text, o.state, o.notified_at FROM operations o JOIN operation_versions v "
            "ON v.operation_id = o.id AND v.version = o.version")
"""The current version and state of operations (append WHERE ...); rows for :func:`hydrate`."""


def hydrate(doc: str, state: str, notified_at: datetime | None) -> Operation:
    """An operation version's document with its current state and notification time."""
    return Operation.model_validate_json(doc).model_copy(update={"state": OperationState(state),
                                                                 "notified_at": notified_at})


class DocumentTables(PostgresBase):
    """Document tables (see module docstring)."""

    # ------------------------------------------------------------------ parties, agreements, sites
    def put_party(self, party: Party) -> None:
        self.execute("INSERT INTO parties(id, doc) VALUES (%s, %s::jsonb) ON CONFLICT(id) DO UPDATE SET doc = "
                  "excluded.doc", (party.id, party.model_dump_json()))

    def get_party(self, party_id: str) -> Party | None:
        row = self.row("SELECT doc::text FROM parties WHERE id = %s", (party_id,))
        return Party.model_validate_json(row[0], context=STORED) if row else None

    def list_parties(self) -> list[Party]:
        rows = self.rows("SELECT doc::text FROM parties ORDER BY id")
        return [Party.model_validate_json(r[0], context=STORED) for r in rows]

    def put_agreement(self, agreement: Agreement) -> None:
        with self.transaction():
            self.execute("INSERT INTO agreements(id, doc) VALUES (%s, %s::jsonb) ON CONFLICT(id) DO UPDATE SET doc = "
                      "excluded.doc", (agreement.id, agreement.model_dump_json()))
            self.execute("DELETE FROM agreement_parties WHERE agreement_id = %s", (agreement.id,))
            self.execute_many("INSERT INTO agreement_parties VALUES (%s, %s)",
                           [(agreement.id, p) for p in agreement.parties])

    def get_agreement(self, agreement_id: str) -> Agreement | None:
        row = self.row("SELECT doc::text FROM agreements WHERE id = %s", (agreement_id,))
        return Agreement.model_validate_json(row[0], context=STORED) if row else None

    def list_agreements(self) -> list[Agreement]:
        rows = self.rows("SELECT doc::text FROM agreements ORDER BY id")
        return [Agreement.model_validate_json(r[0], context=STORED) for r in rows]

    def put_site(self, site: ProtectedSite) -> None:
        self.execute("INSERT INTO protected_sites(id, registered_by, doc) VALUES (%s, %s, %s::jsonb) ON CONFLICT(id) "
                  "DO UPDATE SET registered_by = excluded.registered_by, doc = excluded.doc",
                  (site.id, site.registered_by, site.model_dump_json()))

    def get_site(self, site_id: str) -> ProtectedSite | None:
        row = self.row("SELECT doc::text FROM protected_sites WHERE id = %s", (site_id,))
        return ProtectedSite.model_validate_json(row[0], context=STORED) if row else None

    def list_sites(self) -> list[ProtectedSite]:
        rows = self.rows("SELECT doc::text FROM protected_sites ORDER BY id")
        return [ProtectedSite.model_validate_json(r[0], context=STORED) for r in rows]

    # ------------------------------------------------------------------ operations
    def add_operation_version(self, operation: Operation, at: datetime) -> None:
        """Store a new version (version 1 creates the operation) with one row per volume whose footprint is a
        PostGIS geometry; LookupError if the operation is not at the previous version."""
        with self.transaction():
            if operation.version == 1:
                self.execute("INSERT INTO operations(id, party_id, state, version, activity_class, notified_at, "
                          "updated_at) VALUES (%s, %s, %s, 1, %s, %s, %s)",
                          (operation.id, operation.party_id, operation.state.value, operation.activity_class,
                           operation.notified_at, at))
            elif self.execute("UPDATE operations SET version = %s, state = %s, activity_class = %s, notified_at = %s, "
                           "updated_at = %s WHERE id = %s AND version = %s",
                           (operation.version, operation.state.value, operation.activity_class,
                            operation.notified_at, at, operation.id, operation.version - 1)) != 1:
                raise LookupError(f"operation {operation.id} is not at version {operation.version - 1}")
            self.execute("INSERT INTO operation_versions(operation_id, version, doc, created_at, start_at, end_at) "
                      "VALUES (%s, %s, %s::jsonb, %s, %s, %s)",
                      (operation.id, operation.version, operation.model_dump_json(), at, operation.start,
                       operation.end))
            self.execute_many(
                "INSERT INTO operation_volumes(operation_id, version, idx, footprint, lower_m, upper_m, start_at, "
                "end_at) VALUES (%s, %s, %s, ST_GeomFromWKB(%s, 4326), %s, %s, %s, %s)",
                [(operation.id, operation.version, i, shapely.to_wkb(v.shape), v.lower_m, v.upper_m, v.start, v.end)
                 for i, v in enumerate(operation.volumes)])

    def set_operation_state(self, operation_id: str, state: OperationState, at: datetime,
                            notified_at: datetime | None = None) -> None:
        if self.execute("UPDATE operations SET state = %s, updated_at = %s, notified_at = coalesce(%s, notified_at) "
                     "WHERE id = %s", (state.value, at, notified_at, operation_id)) != 1:
            raise LookupError(f"no operation {operation_id}")

    def get_operation(self, operation_id: str, version: int | None = None) -> Operation | None:
        row = self.row("SELECT v.doc::text, o.state, o.notified_at FROM operations o JOIN operation_versions v "
                        "ON v.operation_id = o.id AND v.version = coalesce(%s, o.version) WHERE o.id = %s",
                        (version, operation_id))
        return hydrate(*row) if row else None

    def list_operations(self, states: Sequence[OperationState] | None = None,
                        party_id: str | None = None) -> list[Operation]:
        sql, params = CURRENT_SQL + " WHERE true", list[object]()
        if states is not None:
            sql += " AND o.state = ANY(%s)"
            params.append([s.value for s in states])
        if party_id is not None:
            sql += " AND o.party_id = %s"
            params.append(party_id)
        return [hydrate(*r) for r in self.rows(sql + " ORDER BY o.id", params)]

    def operation_versions(self, operation_id: str) -> list[Operation]:
        rows = self.rows("SELECT doc::text FROM operation_versions WHERE operation_id = %s ORDER BY version",
                         (operation_id,))
        return [Operation.model_validate_json(r[0]) for r in rows]

    def iter_live_operations(self) -> Iterator[Operation]:
        yield from self.list_operations([OperationState.NOTIFIED, OperationState.ACTIVE])

    def operations_in(self, area: BaseGeometry, start: datetime, end: datetime,
                      states: Sequence[OperationState] = (OperationState.NOTIFIED, OperationState.ACTIVE),
                      ) -> list[Operation]:
        """Current versions of the operations in ``states`` with a volume whose footprint intersects ``area``
        (lon/lat WGS84) during [``start``, ``end``): answered by the database (GiST index on the footprints).
        A prefilter for an exact 4D test: altitudes and separation minima are not applied."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be timezone-aware (UTC)")
        if not shapely.is_valid(area) or area.is_empty:
            raise ValueError("area must be a valid, non-empty geometry")
        rows = self.rows(
            CURRENT_SQL + " WHERE o.state = ANY(%s) AND EXISTS (SELECT 1 FROM operation_volumes w WHERE "
            "w.operation_id = o.id AND w.version = o.version AND w.start_at < %s AND w.end_at > %s AND "
            "ST_Intersects(w.footprint, ST_GeomFromWKB(%s, 4326))) ORDER BY o.id",
            ([s.value for s in states], end, start, shapely.to_wkb(area)))
        return [hydrate(*r) for r in rows]

    # ------------------------------------------------------------------ notices
    def add_notice(self, outcome: NoticeOutcome) -> int:
        with self.transaction():
            row = self._local.conn.execute(
                "INSERT INTO notices(operation_id, version, party_id, kind, at, outcome) "
                "VALUES (%s, %s, %s, %s, %s, '{}') RETURNING id",
                (outcome.operation_id, outcome.version, outcome.party_id, outcome.kind, outcome.at)).fetchone()
            notice_id = int(row[0])
            stored = outcome.model_copy(update={"notice_id": notice_id})
            self.execute("UPDATE notices SET outcome = %s::jsonb WHERE id = %s", (stored.model_dump_json(), notice_id))
            self.execute_many(
                "INSERT INTO conflicts(notice_id, operation_a, operation_b, adjusting_operation, doc) "
                "VALUES (%s, %s, %s, %s, %s::jsonb)",
                [(notice_id, c.a.operation_id, c.b.operation_id, c.adjusting_operation, c.model_dump_json())
                 for c in outcome.conflicts])
            self.execute_many(
                "INSERT INTO site_warnings(notice_id, site_id, operation_id, doc) VALUES (%s, %s, %s, %s::jsonb)",
                [(notice_id, w.site_id, w.operation_id, w.model_dump_json()) for w in outcome.site_warnings])
        return notice_id

    def list_notices(self, operation_id: str | None = None) -> list[StoredNotice]:
        sql, params = "SELECT id, operation_id, version, party_id, kind, at, outcome::text FROM notices", []
        if operation_id is not None:
            sql, params = sql + " WHERE operation_id = %s", [operation_id]
        return [StoredNotice(id=r[0], operation_id=r[1], version=r[2], party_id=r[3], kind=r[4], at=r[5],
                             outcome=NoticeOutcome.model_validate_json(r[6]))
                for r in self.rows(sql + " ORDER BY id, party_id", params)]

    # ------------------------------------------------------------------ credentials, issuer key
    def put_credential(self, credential: Credential) -> None:
        self.execute("INSERT INTO credentials(client_id, party_id, doc) VALUES (%s, %s, %s::jsonb) "
                  "ON CONFLICT(client_id) DO UPDATE SET doc = excluded.doc",
                  (credential.client_id, credential.party_id, credential.model_dump_json()))

    def get_credential(self, client_id: str) -> Credential | None:
        row = self.row("SELECT doc::text FROM credentials WHERE client_id = %s", (client_id,))
        return Credential.model_validate_json(row[0]) if row else None

    def list_credentials(self, party_id: str) -> list[Credential]:
        rows = self.rows("SELECT doc::text FROM credentials WHERE party_id = %s ORDER BY client_id", (party_id,))
        return [Credential.model_validate_json(r[0]) for r in rows]

    def set_party_disabled(self, party_id: str, at: datetime | None) -> None:
        self.execute("UPDATE parties SET disabled_at = %s WHERE id = %s", (at, party_id))

    def party_access(self, party_id: str) -> PartyAccess | None:
        rows = self.rows("SELECT p.disabled_at, c.doc::text FROM parties p LEFT JOIN credentials c ON "
                         "c.party_id = p.id WHERE p.id = %s", (party_id,))
        if not rows:
            return None
        return PartyAccess(rows[0][0], tuple(Credential.model_validate_json(r[1]) for r in rows if r[1] is not None))

    key_file: KeyFile | None = None
    """Where the service's private signing key lives (:meth:`use_key_file`); None (a bare repository, as in
    tests) keeps it in ``issuer_keys`` as before issue 20."""

    def use_key_file(self, key_file: KeyFile) -> None:
        """Keep the service key in ``key_file`` from now on, moving a private key still stored in
        ``issuer_keys`` there (once; the table keeps only public halves)."""
        self.key_file = key_file
        newest, public = split_legacy(self._issuer_rows())
        if newest is None:
            return
        if key_file.read() is None:
            key_file.create(*newest)
        with self.transaction():
            self.execute_many("UPDATE issuer_keys SET private_pem = %s WHERE kid = %s",
                              [(pem, kid) for kid, pem in public])

    def _issuer_rows(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.rows("SELECT kid, private_pem FROM issuer_keys ORDER BY created_at, kid")]

    def get_issuer_key(self) -> tuple[str, str] | None:
        if self.key_file is not None:
            return self.key_file.read()
        row = self.row("SELECT kid, private_pem FROM issuer_keys ORDER BY created_at DESC, kid DESC LIMIT 1")
        return (row[0], row[1]) if row else None

    def put_issuer_key(self, kid: str, private_pem: str, at: datetime) -> None:
        stored = private_pem
        if self.key_file is not None:
            self.key_file.create(kid, private_pem)
            stored = public_pem_of(private_pem)
        self.execute("INSERT INTO issuer_keys(kid, private_pem, created_at) VALUES (%s, %s, %s)", (kid, stored, at))

    def list_issuer_keys(self) -> list[tuple[str, str]]:
        rows = self._issuer_rows()
        return rows if self.key_file is None else with_current(rows, self.key_file)

    # ------------------------------------------------------------------ idempotency, subscriptions
    def get_idempotent(self, party_id: str, key: str) -> tuple[str, int, str] | None:
        row = self.row("SELECT request_hash, status, response FROM idempotency WHERE party_id = %s AND key = %s",
                        (party_id, key))
        return (row[0], int(row[1]), row[2]) if row else None

    def put_idempotent(self, party_id: str, key: str, request_hash: str, status: int, response: str,
                       at: datetime) -> None:
        self.execute("INSERT INTO idempotency VALUES (%s, %s, %s, %s, %s, %s)",
                  (party_id, key, request_hash, status, response, at))

    def put_subscription(self, subscription: Subscription) -> None:
        self.execute("INSERT INTO subscriptions(party_id, id, doc) VALUES (%s, %s, %s::jsonb) "
                     "ON CONFLICT(party_id, id) DO UPDATE SET doc = excluded.doc",
                     (subscription.party_id, subscription.id, subscription.model_dump_json()))

    def delete_subscription(self, subscription_id: str, party_id: str) -> None:
        self.execute("DELETE FROM subscriptions WHERE party_id = %s AND id = %s", (party_id, subscription_id))

    def list_subscriptions(self, party_id: str | None = None) -> list[Subscription]:
        sql, params = "SELECT doc::text FROM subscriptions", []
        if party_id is not None:
            sql, params = sql + " WHERE party_id = %s", [party_id]
        return [Subscription.model_validate_json(r[0]) for r in self.rows(sql + " ORDER BY id, party_id", params)]
