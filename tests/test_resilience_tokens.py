"""Issue 19, the token endpoint: failed secrets are limited per client id and per source address (429 with
Retry-After), written to the ledger as aggregated rejections (a flood adds a bounded number of entries), and every
answer costs one scrypt whether or not the client id exists (counted, not timed)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from forewarn.http.limits import FailureLimiter
from forewarn.service.client_access import dummy_secret_hash
from tests.api_support import World, make_world


def _world(tmp_path: Path, **settings: Any) -> World:
    world = make_world(tmp_path)
    world.service.settings = world.service.settings.model_copy(update=settings)
    rt = world.client.app.state.runtime  # type: ignore[attr-defined]
    rt.settings = world.service.settings
    return world


def _try(client: TestClient, client_id: str, secret: str) -> Any:
    return client.post("/v1/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                          "client_secret": secret})


def test_wrong_secrets_for_one_client_id_lock_it_with_a_429_and_retry_after(tmp_path: Path) -> None:
    world = _world(tmp_path, token_max_failures=3, token_failure_window_s=120)
    usa_id, usa_secret = world.secrets["usa"]
    for _ in range(3):
        assert _try(world.client, usa_id, "wrong").status_code == 401
    locked = _try(world.client, usa_id, usa_secret)  # even the right secret waits for the window to end
    assert locked.status_code == 429, locked.text
    assert 1 <= int(locked.headers["Retry-After"]) <= 120
    assert locked.json()["error"]["code"] == "rate_limited"
    # another address is not limited by this one's failures, but the client id still is
    elsewhere = TestClient(world.client.app, client=("192.0.2.7", 4000))
    fra_id, fra_secret = world.secrets["fra"]
    assert _try(elsewhere, fra_id, fra_secret).status_code == 200
    assert _try(elsewhere, usa_id, usa_secret).status_code == 429


def test_failures_over_many_client_ids_lock_the_source_address(tmp_path: Path) -> None:
    world = _world(tmp_path, token_max_failures=3)
    for i in range(3):
        assert _try(world.client, f"guess-{i}", "x").status_code == 401
    fra_id, fra_secret = world.secrets["fra"]
    assert _try(world.client, fra_id, fra_secret).status_code == 429
    assert _try(TestClient(world.client.app, client=("192.0.2.8", 4000)), fra_id, fra_secret).status_code == 200


def test_a_flood_is_recorded_as_a_bounded_number_of_rejections(tmp_path: Path) -> None:
    world = _world(tmp_path, token_max_failures=5)
    usa_id, _ = world.secrets["usa"]
    for _ in range(200):
        assert _try(world.client, usa_id, "wrong").status_code in (401, 429)
    entries = world.service.repo.find_ledger(kinds=["rejection"])
    # per key (client id, address): the window's first failure and the one that locked it
    assert 2 <= len(entries) <= 4
    locked = [e for e in entries if e.body["locked"]]
    assert {e.body["limited"] for e in locked} == {"client", "address"}
    assert all(e.body["client_id"] == usa_id and e.body["failures_in_window"] == 5 for e in locked)


def test_every_answer_costs_one_scrypt_whether_or_not_the_client_exists(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(tmp_path, token_max_failures=100)
    usa_id, usa_secret = world.secrets["usa"]
    dummy_secret_hash()  # computed once, before counting
    calls = [0]
    real = hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    work = {}
    for label, client_id, secret in [("unknown id", "no-such-client", "x"), ("wrong secret", usa_id, "x"),
                                     ("right secret", usa_id, usa_secret)]:
        calls[0] = 0
        _try(world.client, client_id, secret)
        work[label] = calls[0]
    assert work == {"unknown id": 1, "wrong secret": 1, "right secret": 1}


def test_the_limiter_windows_expire_and_its_memory_is_bounded() -> None:
    limiter = FailureLimiter(max_failures=2, window_s=10, max_keys=3)
    limiter.fail("a", 0)
    assert limiter.blocked_for("a", 1) == 0
    limiter.fail("a", 1)
    assert limiter.blocked_for("a", 4) == 6
    assert limiter.blocked_for("a", 10) == 0  # the window ended
    assert limiter.fail("a", 10).failures == 1  # a new one
    for key in ("b", "c", "d", "e"):
        limiter.fail(key, 11)
    assert len(limiter.windows) <= 3
