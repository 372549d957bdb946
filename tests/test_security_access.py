"""Revocation and disabling (issue 20): an admin disables a party or revokes a credential, over the API or the
CLI, and tokens already issued stop working with the next request (the token check reads the store on every
request, on SQLite and PostgreSQL alike). The ledger records each change. Also: the dedicated ``keys:manage``
scope, and the unauthenticated health check saying nothing about the parties' operations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from forewarn.cli.main import app as cli
from forewarn.core.credentials import new_credential
from forewarn.core.model import Party
from forewarn.core.scopes import SCOPES
from forewarn.errors import InvalidInput, NotFound
from forewarn.http.app import create_app
from forewarn.ledger.keys import raw_public
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import Repository, SQLiteRepository
from tests.api_support import Clock, World, make_world
from tests.test_api import assert_error
from tests.test_security_tokens import Partner, _jwk


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w


def _kinds(service: Forewarn, *kinds: str) -> list[Any]:
    return service.repo.find_ledger(kinds=list(kinds))


def test_revoking_credentials_refuses_the_tokens_already_issued_for_them(world: World) -> None:
    c = world.client
    usa = world.auth("usa")
    assert c.get("/v1/operations", headers=usa).status_code == 200
    client_id = world.secrets["usa"][0]
    listed = c.get("/v1/parties/usa/credentials", headers=world.auth("admin"))
    assert listed.status_code == 200 and [x["client_id"] for x in listed.json()] == [client_id]
    assert "secret" not in listed.text and "scrypt" not in listed.text
    assert_error(c.post(f"/v1/parties/usa/credentials/{client_id}/revoke", headers=usa), 403, "forbidden")
    r = c.post(f"/v1/parties/usa/credentials/{client_id}/revoke", headers=world.auth("admin"),
               json={"reason": "leaked"})
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert_error(c.get("/v1/operations", headers=usa), 401, "unauthenticated")  # the token that worked
    refused = c.post("/v1/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                        "client_secret": world.secrets["usa"][1]})
    assert_error(refused, 401, "unauthenticated")
    assert c.get("/v1/operations", headers=world.auth("rus")).status_code == 200  # others unaffected
    [entry] = _kinds(world.service, "credential_revoked")
    assert (entry.subject, entry.party_id, entry.body["reason"]) == (client_id, "usa", "leaked")
    # twice, or for another party's id: an error, nothing more recorded
    again = c.post(f"/v1/parties/usa/credentials/{client_id}/revoke", headers=world.auth("admin"))
    assert_error(again, 422, "invalid_input")
    assert_error(c.post(f"/v1/parties/rus/credentials/{client_id}/revoke", headers=world.auth("admin")), 404,
                 "not_found")
    assert len(_kinds(world.service, "credential_revoked")) == 1


def test_disabling_a_party_refuses_its_tokens_at_once_and_enabling_restores_them(world: World) -> None:
    c = world.client
    usa, admin = world.auth("usa"), world.auth("admin")
    assert c.get("/v1/inbox", headers=usa).status_code == 200
    assert_error(c.post("/v1/parties/usa/disable", headers=usa), 403, "forbidden")
    r = c.post("/v1/parties/usa/disable", headers=admin, json={"reason": "compromised"})
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    assert_error(c.get("/v1/inbox", headers=usa), 401, "unauthenticated")
    token = c.post("/v1/token", data={"grant_type": "client_credentials", "client_id": world.secrets["usa"][0],
                                      "client_secret": world.secrets["usa"][1]})
    assert_error(token, 401, "unauthenticated")
    assert_error(c.post("/v1/parties/usa/disable", headers=admin), 422, "invalid_input")
    assert_error(c.post("/v1/parties/nobody/disable", headers=admin), 404, "not_found")
    # updating the party's record does not enable it
    assert c.post("/v1/parties", headers=admin, json={"id": "usa", "name": "USA"}).status_code == 201
    assert_error(c.get("/v1/inbox", headers=usa), 401, "unauthenticated")
    assert c.post("/v1/parties/usa/enable", headers=admin).json()["disabled_at"] is None
    assert c.get("/v1/inbox", headers=usa).status_code == 200
    assert [(e.kind, e.body["reason"]) for e in _kinds(world.service, "party_disabled", "party_enabled")] == [
        ("party_disabled", "compromised"), ("party_enabled", "")]


def test_a_disabled_partys_trusted_issuer_tokens_are_refused(tmp_path: Path) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["coalition"])])
    assert p.client.get("/v1/inbox", headers=p.headers("coalition", "read")).status_code == 200
    p.service.disable_party("coalition", p.clock.now)
    assert_error(p.client.get("/v1/inbox", headers=p.headers("coalition", "read")), 401, "unauthenticated")
    p.service.enable_party("coalition", p.clock.now)
    headers = p.headers("coalition", "read")
    assert p.client.get("/v1/inbox", headers=headers).status_code == 200
    # revoking the party's only credentials leaves its external tokens no scope (cap at unrevoked credentials)
    [cred] = p.service.repo.list_credentials("coalition")
    p.service.revoke_credential(cred.client_id, p.clock.now)
    assert_error(p.client.get("/v1/inbox", headers=headers), 403, "forbidden")


def test_the_cli_revokes_and_disables_and_a_token_that_worked_gets_401(world: World) -> None:
    db = str(world.service.settings.db)
    runner = CliRunner()
    usa, rus = world.auth("usa"), world.auth("rus")
    assert world.client.get("/v1/operations", headers=usa).status_code == 200
    done = runner.invoke(cli, ["access", "revoke", world.secrets["usa"][0], "--reason", "rotated", "--db", db])
    assert done.exit_code == 0, done.output
    assert_error(world.client.get("/v1/operations", headers=usa), 401, "unauthenticated")
    done = runner.invoke(cli, ["access", "disable", "rus", "--db", db])
    assert done.exit_code == 0, done.output
    assert_error(world.client.get("/v1/operations", headers=rus), 401, "unauthenticated")
    shown = runner.invoke(cli, ["access", "show", "rus", "--db", db, "--json"])
    assert shown.exit_code == 0 and '"disabled_at": null' not in shown.output
    again = runner.invoke(cli, ["access", "disable", "rus", "--db", db])
    assert again.exit_code == 2
    assert runner.invoke(cli, ["access", "revoke", "no-such-id", "--db", db]).exit_code == 2
    assert runner.invoke(cli, ["access", "enable", "rus", "--db", db]).exit_code == 0
    assert world.client.get("/v1/operations", headers=rus).status_code == 200
    kinds = [e.kind for e in _kinds(world.service, "credential_revoked", "party_disabled", "party_enabled")]
    assert kinds == ["credential_revoked", "party_disabled", "party_enabled"]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    if request.param == "sqlite":
        repo = SQLiteRepository(tmp_path / "access.sqlite")
        yield repo
        repo.close()
    else:
        yield request.getfixturevalue("postgres_repo")


def test_revocation_is_read_from_either_store_on_every_request(backend: Repository, tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "unused.sqlite")
    service = Forewarn(backend, settings)
    clock = Clock()
    for pid in ("usa", "admin"):
        service.put_party(Party(id=pid, name=pid.upper()))
    creds = {}
    for pid, scopes in (("usa", ["read"]), ("admin", ["admin"])):
        cred, secret = new_credential(pid, scopes, clock.now)
        with service.repo.transaction():
            service.repo.put_credential(cred)
        creds[pid] = (cred.client_id, secret)
    client = TestClient(create_app(settings, service=service, clock=clock, run_worker=False))

    def bearer(pid: str) -> dict[str, str]:
        data = {"grant_type": "client_credentials", "client_id": creds[pid][0], "client_secret": creds[pid][1]}
        return {"Authorization": f"Bearer {client.post('/v1/token', data=data).json()['access_token']}"}

    usa, admin = bearer("usa"), bearer("admin")
    assert client.get("/v1/inbox", headers=usa).status_code == 200
    assert client.post("/v1/parties/usa/disable", headers=admin).status_code == 200
    access = backend.party_access("usa")
    assert access is not None and access.disabled_at is not None
    assert_error(client.get("/v1/inbox", headers=usa), 401, "unauthenticated")
    assert client.post("/v1/parties/usa/enable", headers=admin).status_code == 200
    assert client.get("/v1/inbox", headers=usa).status_code == 200
    assert client.post(f"/v1/parties/usa/credentials/{creds['usa'][0]}/revoke", headers=admin).status_code == 200
    assert_error(client.get("/v1/inbox", headers=usa), 401, "unauthenticated")
    assert backend.party_access("nobody") is None
    with pytest.raises(NotFound):
        service.disable_party("nobody", clock.now)
    with pytest.raises(InvalidInput):
        service.enable_party("usa", clock.now)
    assert [e.kind for e in backend.find_ledger(kinds=["party_disabled", "party_enabled", "credential_revoked"])] == [
        "party_disabled", "party_enabled", "credential_revoked"]


# ---------------------------------------------------------------------------------------------- keys:manage
def test_a_read_only_token_cannot_manage_signing_keys(world: World) -> None:
    c = world.client
    key = raw_public(Ed25519PrivateKey.generate().public_key())
    read_only = world.auth("usa", "read")
    assert_error(c.post("/v1/parties/usa/keys", headers=read_only, json={"public_key": key}), 403, "forbidden")
    assert world.service.repo.list_party_keys("usa") == []
    made = c.post("/v1/parties/usa/keys", headers=world.auth("usa", "keys:manage"), json={"public_key": key})
    assert made.status_code == 201, made.text
    kid = made.json()["key_id"]
    new = raw_public(Ed25519PrivateKey.generate().public_key())
    for path, body in ((f"/v1/parties/usa/keys/{kid}/rotate", {"public_key": new}),
                       (f"/v1/parties/usa/keys/{kid}/revoke", None)):
        assert_error(c.post(path, headers=read_only, json=body), 403, "forbidden")
    assert [k.revoked_at for k in world.service.repo.list_party_keys("usa")] == [None]
    assert c.get("/v1/parties/usa/keys", headers=read_only).status_code == 200  # reading them stays open


def test_scopes_are_defined_once() -> None:
    from forewarn.core import credentials
    from forewarn.http import schemas

    assert credentials.SCOPES is SCOPES and "keys:manage" in SCOPES
    body = schemas.CredentialsIn.model_json_schema()
    enum = body["$defs"]["Scope"]["enum"] if "$defs" in body else body["properties"]["scopes"]["items"]["enum"]
    assert tuple(enum) == SCOPES
    help_text = CliRunner().invoke(cli, ["party", "add", "--help"], env={"COLUMNS": "300"}).output
    assert all(s in help_text for s in SCOPES)


# ---------------------------------------------------------------------------------------------- health
def test_health_says_only_whether_the_service_is_up(world: World) -> None:
    c = world.client
    op = {"id": "usa-1", "activity_class": "transport",
          "volumes": [{"footprint": {"kind": "circle", "center": [38.0, 35.0], "radius_m": 5000}, "lower_m": 0,
                       "upper_m": 3000, "start": (world.clock.now + timedelta(hours=1)).isoformat(),
                       "end": (world.clock.now + timedelta(hours=2)).isoformat()}]}
    assert c.post("/v1/operations", headers=world.auth("usa"), json=op).status_code == 201
    health = c.get("/v1/health").json()  # status and the answering process's id (serve --workers): no counts
    assert health["status"] == "ok" and set(health) == {"status", "process"}
    assert_error(c.get("/v1/admin/status"), 401, "unauthenticated")
    assert_error(c.get("/v1/admin/status", headers=world.auth("usa")), 403, "forbidden")
    status = c.get("/v1/admin/status", headers=world.auth("admin")).json()
    assert status["live_operations"] == 1 and status["parties"] == 5 and status["disabled_parties"] == 0


def test_an_open_event_stream_ends_once_its_party_is_disabled(world: World) -> None:
    import asyncio
    import contextlib

    from forewarn.http.stream_routes import _events

    rt = world.client.app.state.runtime  # type: ignore[attr-defined]
    who = rt.authenticate(world.token("usa"))
    released: list[bool] = []

    async def run() -> list[bytes]:
        got: list[bytes] = []
        stream = _events(rt, who, "primary", 0, lambda: released.append(True))
        got.append(await stream.__anext__())  # connected; then it waits for deliveries
        waiting = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)
        world.service.disable_party("usa", world.clock.now)
        rt.hub.notify(frozenset({"usa"}))  # the next pass checks the party again and ends the stream
        with contextlib.suppress(StopAsyncIteration):  # the stream ended
            got.append(await asyncio.wait_for(waiting, 30))
        return got

    got = asyncio.run(run())
    assert len(got) == 1 and b"connected" in got[0] and released == [True]
