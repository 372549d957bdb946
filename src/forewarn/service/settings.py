"""Settings: data, injected, never read at import. Environment (``FOREWARN_*``) beats defaults.

Every setting is documented here; docs/settings.md is generated from these fields (a test keeps the two in step).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from forewarn.core.resolutions import ResolutionBounds
from forewarn.errors import InvalidInput
from forewarn.geo.volume import VolumeLimits

if TYPE_CHECKING:
    from forewarn.service.tracking import TrackSettings


class Settings(BaseSettings):
    """Forewarn configuration. Units: metres, km^2, days, hours, km as named."""

    model_config = SettingsConfigDict(env_prefix="FOREWARN_", extra="forbid")

    db: Path = Field(default=Path("forewarn.sqlite"), description="SQLite database file")
    database_url: str = Field(
        default="", pattern=r"^$|^postgres(ql)?://", description="PostgreSQL database (postgresql://user@host:port/"
        "name, PostGIS installable): the store instead of the SQLite file FOREWARN_DB; empty: SQLite")
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full", description="full: a 2xx filing survives a machine crash (an fsync per commit); normal: only "
        "a process crash (a power loss may lose the last commits), for lower latency")
    max_vertices: int = Field(default=10_000, ge=3, description="most vertices in one footprint")
    max_area_km2: float = Field(default=250_000.0, gt=0, description="largest footprint area, km^2 (geodesic)")
    planning_horizon_days: float = Field(
        default=30.0, gt=0, description="furthest a volume's window may end after now, days"
    )
    polar_limit_deg: float = Field(
        default=85.0, gt=0, le=89.9, description="highest |latitude| a footprint may reach, degrees"
    )
    max_sites_per_party: int = Field(
        default=1000, ge=0, le=1_000_000, description="protected sites one party may hold; more get 409 limit_reached")
    max_subscriptions_per_party: int = Field(
        default=100, ge=0, le=100_000, description="subscriptions one party may hold; more get 409 limit_reached")
    max_time_shift_h: float = Field(default=12.0, gt=0, description="largest time shift a resolution proposes, h")
    max_lateral_km: float = Field(default=50.0, gt=0, description="largest lateral offset a resolution proposes, km")
    ceiling_m: float = Field(
        default=15_240.0, gt=0, description="highest altitude a resolution may propose, m above WGS84 (FL500)"
    )

    host: str = Field(default="127.0.0.1", description="address forewarn serve listens on")
    port: int = Field(default=8000, ge=1, le=65535, description="port forewarn serve listens on")
    issuer: str = Field(default="forewarn", min_length=1, description="iss claim of the tokens the service issues")
    audience: str = Field(default="forewarn-api", min_length=1, description="aud claim every token must carry")
    token_ttl_s: int = Field(default=3600, ge=60, le=86_400, description="lifetime of issued tokens, seconds")
    trusted_keys: Path | None = Field(
        default=None,
        description="JSON file of external issuers' public keys, each bound to the parties it may assert, optional",
    )
    # --- security (issue 20; docs/security.md states every setting below) ---
    key_file: Path | None = Field(
        default=None, description="file of the service's private signing key, created mode 0600; default: the "
        "SQLite file's name + .key, or forewarn.key in the working directory with PostgreSQL")
    key_passphrase: SecretStr | None = Field(
        default=None, description="passphrase that encrypts the key file (PEM, PKCS#8); unset: not encrypted")
    # --- end security ---
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="timeout of one webhook attempt, seconds")
    worker_poll_s: float = Field(
        default=0.25, gt=0, description="how often the worker looks for due webhooks and overdue acks, seconds"
    )
    change_log_prune_s: float = Field(
        default=60.0, gt=0, description="PostgreSQL: how often each process reports its replica's position and "
        "prunes the change log (live_changes), seconds")
    change_log_retention_s: float = Field(
        default=900.0, gt=0, description="PostgreSQL: a process not heard from for this long no longer holds back "
        "pruning (it reloads its live picture in full when it comes back), seconds")

    # --- resilience (issue 19; docs/resilience.md states every limit below) ---
    webhook_concurrency: int = Field(
        default=2, ge=1, le=64, description="webhook attempts in flight at once per receiver (scheme, host, port)"
    )
    webhook_queue: int = Field(
        default=32, ge=0, le=10_000, description="webhooks waiting per receiver beyond those in flight; more wait "
        "in the outbox"
    )
    webhook_breaker_failures: int = Field(
        default=5, ge=1, le=1000, description="consecutive failures that open a receiver's circuit breaker"
    )
    webhook_breaker_cooldown_s: float = Field(
        default=30.0, gt=0, le=86_400, description="first pause of a receiver whose breaker opened, s (doubles)"
    )
    webhook_breaker_max_s: float = Field(
        default=600.0, gt=0, le=86_400, description="longest pause of a receiver whose breaker opened, s"
    )
    webhook_allow_http: bool = Field(default=False, description="accept http:// webhook URLs (development only)")
    webhook_allow_private: bool = Field(
        default=False, description="accept webhook targets on loopback, link-local and private addresses"
    )
    webhook_max_redirects: int = Field(default=0, ge=0, le=10, description="redirects a webhook attempt follows")
    stream_max_per_party: int = Field(
        default=8, ge=1, le=10_000, description="concurrent event streams per party; more get 429"
    )
    stream_page: int = Field(default=200, ge=1, le=5000, description="deliveries read per page of a stream replay")
    token_max_failures: int = Field(
        default=10, ge=1, le=10_000, description="failed secrets per client id, and per source address, per window"
    )
    token_failure_window_s: float = Field(
        default=300.0, gt=0, le=86_400, description="window of the failed-secret limit, s"
    )
    ledger_summary_period_s: float = Field(
        default=60.0, gt=0, le=86_400, description="period over which the ledger aggregates a reader's disclosures "
        "and a party's refused signatures (at most one disclosure entry per reader per period for what it keeps "
        "reading; the 1st, 10th, 100th... refused signature of a period), s"
    )
    body_limit_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body, bytes (every route but the track feed)"
    )
    body_limit_tracks_bytes: int = Field(
        default=67_108_864, ge=1024, description="largest request body of the track feed routes, bytes"
    )
    # --- end resilience ---

    track_tolerance_m: float = Field(
        default=185.0, ge=0, le=50_000, description="how far outside its operation's volumes a track still conforms, m"
    )
    track_tolerance_vertical_m: float = Field(
        default=30.0, ge=0, le=5_000, description="vertical conformance tolerance, m"
    )
    track_lookahead_s: float = Field(
        default=300.0, gt=0, le=3_600, description="look-ahead of predicted conflicts and volume entries, s"
    )
    track_stale_s: float = Field(
        default=60.0, gt=0, le=3_600, description="tracks not heard from for this long are left out of prediction, s"
    )
    track_clear_after_s: float = Field(
        default=90.0, ge=0, le=3_600, description="minimum hysteresis: a predicted encounter is cleared once not "
        "predicted for max(2 feed periods, this), s (the feed period estimated per party and source)"
    )
    track_max_speed_mps: float = Field(
        default=1200.0, gt=0, le=20_000, description="feed-quality ceiling on implied and reported speeds, m/s"
    )
    track_batch_max_rows: int = Field(
        default=200_000, ge=1, le=10_000_000, description="most positions (records) in one batch fed to "
        "/v1/tracks/positions; a larger batch is refused (422) as soon as the record over the limit is read"
    )

    def track_settings(self) -> TrackSettings:
        """The tunables of live tracking."""
        from forewarn.service.tracking import TrackSettings
        from forewarn.tracks.conformance import Tolerance

        return TrackSettings(
            tolerance=Tolerance(horizontal_m=self.track_tolerance_m, vertical_m=self.track_tolerance_vertical_m),
            lookahead_s=self.track_lookahead_s, stale_s=self.track_stale_s, clear_after_s=self.track_clear_after_s,
            max_speed_mps=self.track_max_speed_mps,
        )

    def signing_key_file(self) -> Path:
        """Where the service's private key lives (see ``key_file``)."""
        if self.key_file is not None:
            return self.key_file
        return Path("forewarn.key") if self.database_url else self.db.with_name(self.db.name + ".key")

    def signing_key_passphrase(self) -> bytes | None:
        """The key file's passphrase as bytes, or None."""
        secret = self.key_passphrase.get_secret_value() if self.key_passphrase is not None else ""
        return secret.encode() if secret else None

    def volume_limits(self) -> VolumeLimits:
        return VolumeLimits(
            max_vertices=self.max_vertices,
            max_area_km2=self.max_area_km2,
            planning_horizon=timedelta(days=self.planning_horizon_days),
            polar_limit_deg=self.polar_limit_deg,
        )

    def resolution_bounds(self) -> ResolutionBounds:
        return ResolutionBounds(
            max_time_shift_s=self.max_time_shift_h * 3600,
            max_lateral_m=self.max_lateral_km * 1000,
            ceiling_m=self.ceiling_m,
        )


def load_settings(db: Path | None = None, env_file: Path | None = None, **overrides: Any) -> Settings:
    """The settings from the environment (and ``env_file``, a .env-style file), with ``db`` and ``overrides``
    (command-line options) on top. A bad value raises :class:`InvalidInput` naming each variable and what is
    wrong with it, instead of pydantic's report."""
    if db is not None:
        overrides["db"] = db
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        problems = [{"field": f"FOREWARN_{str(e['loc'][0]).upper()}" if e["loc"] else "settings",
                     "message": f"{e['msg']} (got {e['input']!r})"} for e in exc.errors()]
        raise InvalidInput("invalid settings", {"errors": problems}) from exc
