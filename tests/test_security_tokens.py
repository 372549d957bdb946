"""Tokens of trusted external issuers: what such a key may assert (issue 20's critical probe).

A key listed in ``FOREWARN_TRUSTED_KEYS`` speaks only for the parties its entry names, never as admin unless the
entry allows it, and only with the scopes the party's own credentials hold; a non-numeric ``exp`` is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from forewarn.core.credentials import new_credential
from forewarn.core.model import Party
from forewarn.errors import InvalidInput
from forewarn.http.app import create_app
from forewarn.service.notices import Forewarn
from forewarn.service.settings import Settings
from forewarn.store import SQLiteRepository
from tests.api_support import Clock, volume
from tests.test_api import assert_error

ED = Ed25519PrivateKey.generate()
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(**entry: Any) -> dict[str, Any]:
    return json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(ED.public_key())) | entry  # type: ignore[no-any-return]


def _pem(**entry: Any) -> dict[str, Any]:
    pem = RSA.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {"pem": pem} | entry


class Partner:
    """A service trusting the keys of a partner's identity provider ``partner-idp``, with parties usa (read),
    coalition (every scope but admin) and operator (admin)."""

    def __init__(self, tmp: Path, keys: list[dict[str, Any]], pems: list[dict[str, Any]] | None = None) -> None:
        trusted = tmp / "trusted.json"
        trusted.write_text(json.dumps({"keys": keys, "pem": pems or []}))
        db = tmp / "ext.sqlite"
        self.settings = Settings(db=db, trusted_keys=trusted)
        self.service = Forewarn(SQLiteRepository(db), self.settings)
        self.clock = Clock()
        for pid, scopes in (("usa", ["read"]), ("coalition", ["notices:file", "read", "ack", "sites:register"]),
                            ("operator", ["admin"])):
            self.service.put_party(Party(id=pid, name=pid.upper()))
            cred, _ = new_credential(pid, scopes, self.clock.now)
            with self.service.repo.transaction():
                self.service.repo.put_credential(cred)
        self.client = TestClient(create_app(self.settings, service=self.service, clock=self.clock,
                                            run_worker=False))

    def headers(self, sub: str, scope: str, kid: str = "partner-ed", **extra: Any) -> dict[str, str]:
        claims = {"iss": "partner-idp", "aud": "forewarn-api", "sub": sub, "scope": scope,
                  "exp": int((self.clock.now + timedelta(minutes=5)).timestamp())} | extra
        key, alg = (ED, "EdDSA") if kid == "partner-ed" else (RSA, "RS256")
        return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm=alg, headers={'kid': kid})}"}


def test_a_trusted_key_asserts_only_its_parties(tmp_path: Path) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["usa"])],
                [_pem(kid="partner-rsa", iss="partner-idp", parties=["usa"])])
    for kid in ("partner-ed", "partner-rsa"):
        assert p.client.get("/v1/operations", headers=p.headers("usa", "read", kid)).status_code == 200
        # the probe of the issue: another party's inbox, and the admin
        assert_error(p.client.get("/v1/inbox", headers=p.headers("coalition", "read", kid)), 401,
                     "unauthenticated")
        created = p.client.post("/v1/parties", headers=p.headers("operator", "admin", kid),
                                json={"id": "intruder", "name": "Intruder"})
        assert_error(created, 401, "unauthenticated")
    assert p.service.repo.get_party("intruder") is None
    wrong_iss = p.headers("usa", "read", iss="forewarn")
    assert_error(p.client.get("/v1/operations", headers=wrong_iss), 401, "unauthenticated")
    assert_error(p.client.get("/v1/operations", headers=p.headers("usa", "")), 403, "forbidden")


def test_external_scopes_are_capped_at_the_partys_credentials(tmp_path: Path) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["usa", "coalition", "operator"])])
    # usa's credentials hold only 'read': a token asking to file is refused at the route
    usa = p.headers("usa", "read notices:file admin")
    assert p.client.get("/v1/operations", headers=usa).status_code == 200
    op = {"id": "op1", "activity_class": "transport", "volumes": [volume(38, 35)]}
    assert_error(p.client.post("/v1/operations", headers=usa, json=op), 403, "forbidden")
    assert p.service.repo.get_operation("op1") is None
    # coalition holds every scope but admin: filing works, admin does not
    coalition = p.headers("coalition", "notices:file read admin")
    assert p.client.post("/v1/operations", headers=coalition, json=op).status_code == 201
    assert_error(p.client.post("/v1/parties", headers=coalition, json={"id": "x", "name": "X"}), 403, "forbidden")
    # the operator holds admin, but this key is not allowed to assert admin
    admin = p.headers("operator", "admin")
    assert_error(p.client.post("/v1/parties", headers=admin, json={"id": "x", "name": "X"}), 403, "forbidden")
    assert p.service.repo.get_party("x") is None


def test_admin_only_when_the_key_allows_it_and_the_party_holds_it(tmp_path: Path) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["operator", "usa"],
                                allow_admin=True)])
    made = p.client.post("/v1/parties", headers=p.headers("operator", "admin"), json={"id": "x", "name": "X"})
    assert made.status_code == 201, made.text
    # usa's credentials hold no admin: allow_admin on the key does not give it one
    denied = p.client.post("/v1/parties", headers=p.headers("usa", "admin read"), json={"id": "y", "name": "Y"})
    assert_error(denied, 403, "forbidden")


def test_a_key_scope_cap_and_revoked_credentials(tmp_path: Path) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["coalition"], scopes=["read"])])
    op = {"id": "op2", "activity_class": "transport", "volumes": [volume(38, 35)]}
    coalition = p.headers("coalition", "read notices:file")
    assert p.client.get("/v1/operations", headers=coalition).status_code == 200
    assert_error(p.client.post("/v1/operations", headers=coalition, json=op), 403, "forbidden")
    # once every credential of the party is revoked, its external tokens carry nothing
    repo = p.service.repo
    with repo.transaction():
        for cred in repo.list_credentials("coalition"):
            repo.put_credential(cred.model_copy(update={"revoked_at": p.clock.now}))
    fresh = p.headers("coalition", "read", jti="another")
    assert_error(p.client.get("/v1/operations", headers=fresh), 403, "forbidden")


@pytest.mark.parametrize("exp", ["9999999999", None, [1], True, {"t": 1}])
def test_a_non_numeric_exp_is_refused(tmp_path: Path, exp: object) -> None:
    p = Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", parties=["usa"])])
    assert_error(p.client.get("/v1/operations", headers=p.headers("usa", "read", exp=exp)), 401, "unauthenticated")


@pytest.mark.parametrize("entry", [
    {},  # no parties: the key could assert anyone
    {"parties": []},
    {"parties": "usa"},
    {"parties": ["usa"], "scopes": ["fly"]},
    {"parties": ["usa"], "allow_admin": "yes"},
])
def test_a_trusted_keys_file_must_bind_each_key(tmp_path: Path, entry: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        Partner(tmp_path, [_jwk(kid="partner-ed", iss="partner-idp", **entry)])
