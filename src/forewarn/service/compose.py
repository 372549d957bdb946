"""The composition root: the one place that builds the store, the service and its parts from settings.

Faces (the CLI, the HTTP application, the benchmarks) ask here for what they need instead of constructing a
backend themselves, so the choice of backend is made once: PostgreSQL when ``database_url`` is set
(``FOREWARN_DATABASE_URL``), else the SQLite file ``db``. :func:`build_graph` gives a face everything it uses
(the service, the delivery desk, live tracks, the token-signing key and verifier); the HTTP layer adds only what
is HTTP's own (event-stream wake-ups, the webhook worker, the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forewarn.service.desk import DeliveryDesk
from forewarn.service.ledger import Ledger
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.service.tokens import IssuerKey, TokenVerifier, TrustedKey, load_trusted_keys
from forewarn.service.tracking import Tracker
from forewarn.store.keyfile import KeyFile
from forewarn.store.postgres.repository import PostgresRepository
from forewarn.store.postgres.track_changes import SharedPostgresTrackStore
from forewarn.store.repository import Repository, TrackStorage
from forewarn.store.sqlite.repository import SQLiteRepository
from forewarn.store.sqlite.tracks import TrackStore


def open_repository(settings: Settings) -> SQLiteRepository | PostgresRepository:
    """The store the settings name: the PostgreSQL database ``database_url`` if set, else the SQLite file ``db``
    at its durability (``sqlite_synchronous``)."""
    key_file = KeyFile(settings.signing_key_file(), settings.signing_key_passphrase())
    if settings.database_url:
        repo = PostgresRepository(settings.database_url)
        repo.use_key_file(key_file)
        return repo
    return SQLiteRepository(settings.db, synchronous=settings.sqlite_synchronous, key_file=key_file)


def open_track_store(repo: Repository) -> TrackStorage:
    """The live-track tables of the same store as ``repo`` (writes join its transactions); on PostgreSQL, with the
    change numbering that lets several processes share one tracker state (docs/tracks.md, "Several processes")."""
    if isinstance(repo, PostgresRepository):
        return SharedPostgresTrackStore(repo)
    if isinstance(repo, SQLiteRepository):
        return TrackStore(repo)
    raise TypeError(f"no track store for {type(repo).__name__}")


def build_service(settings: Settings) -> Forewarn:
    """The service over the store the settings name."""
    return Forewarn(open_repository(settings), settings)


def build_tracker(service: Forewarn) -> Tracker:
    """Live tracks of ``service`` (its store's track tables, its settings' track settings)."""
    return Tracker(service, open_track_store(service.repo), service.settings.track_settings())


def open_ledger(settings: Settings) -> Ledger:
    """The ledger of the store the settings name, for reading and key management without the whole service
    (no live picture is loaded)."""
    return Ledger(open_repository(settings))


def token_verifier(settings: Settings, key: IssuerKey) -> TokenVerifier:
    """Verifies the service's own tokens (``key``) and those of the trusted issuers of ``trusted_keys``."""
    verifier = TokenVerifier(issuer=settings.issuer, audience=settings.audience)
    verifier.add(TrustedKey(kid=key.kid, issuer=settings.issuer, key=key.private.public_key()))
    if settings.trusted_keys is not None:
        for trusted in load_trusted_keys(settings.trusted_keys):
            verifier.add(trusted)
    return verifier


@dataclass(frozen=True)
class ServiceGraph:
    """Everything a face uses, built once from settings."""

    settings: Settings
    service: Forewarn
    desk: DeliveryDesk
    tracker: Tracker
    key: IssuerKey
    verifier: TokenVerifier


def build_graph(settings: Settings, now: datetime, service: Forewarn | None = None) -> ServiceGraph:
    """The service graph of ``settings``: the service (``service`` if given: tests build their own), its
    delivery desk and live tracks, the token-signing key (created at ``now`` on the first start) and verifier."""
    service = service if service is not None else build_service(settings)
    key = service.issuer_key(now)
    return ServiceGraph(settings=settings, service=service, desk=DeliveryDesk(service),
                        tracker=build_tracker(service), key=key, verifier=token_verifier(settings, key))
