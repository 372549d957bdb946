"""What the operator's admin token is told when it asks for the parties' operations (issue 18): a 403 with a
reason, never an unexplained empty list; a party bound by an agreement still sees what its agreements allow."""

from __future__ import annotations

from pathlib import Path

from forewarn.core.credentials import new_credential
from forewarn.core.model import Agreement, SeparationMinima
from forewarn.http.operator_view import OPERATOR_VIEW_REASON
from tests.api_support import make_world, volume


def _file(world, party: str, op_id: str) -> None:  # type: ignore[no-untyped-def]
    body = {"id": op_id, "activity_class": "transport", "volumes": [volume(36.0, 35.0)]}
    r = world.client.post("/v1/operations", json=body, headers=world.auth(party))
    assert r.status_code == 201, r.text


def test_operator_admin_gets_a_reasoned_403_on_every_operation_read(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    _file(world, "usa", "op-1")
    headers = world.auth("admin")
    for path in ("/v1/operations", "/v1/operations/op-1", "/v1/operations/no-such-op", "/v1/situation"):
        r = world.client.get(path, headers=headers)
        assert r.status_code == 403, (path, r.text)
        error = r.json()["error"]
        assert error["details"]["reason"] == OPERATOR_VIEW_REASON
        assert "op-1" not in r.text and "36.0" not in r.text  # nothing of the operation leaks into the refusal
    # the admin still administers: it lists parties
    assert world.client.get("/v1/parties", headers=headers).status_code == 200


def test_an_admin_of_a_bound_party_sees_what_its_agreements_allow(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    _file(world, "usa", "op-1")
    # give rus an admin credential: rus is bound by the MoU, so it sees usa's envelope as before
    cred, secret = new_credential("rus", ["admin"], world.clock.now)
    with world.service.repo.transaction():
        world.service.repo.put_credential(cred)
    r = world.client.post("/v1/token", data={"grant_type": "client_credentials", "client_id": cred.client_id,
                                             "client_secret": secret})
    token = r.json()["access_token"]
    listed = world.client.get("/v1/operations", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert [op["id"] for op in listed.json()] == ["op-1"]


def test_a_reader_bound_by_no_agreement_gets_the_empty_view_not_a_403(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    _file(world, "usa", "op-1")
    r = world.client.get("/v1/operations", headers=world.auth("loner"))
    assert r.status_code == 200 and r.json() == []


def test_an_agreement_binding_the_operator_lifts_the_refusal(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    _file(world, "usa", "op-1")
    minima = SeparationMinima(horizontal_m=9260, vertical_m=304.8, time_s=600)
    world.service.put_agreement(Agreement(id="ops-desk", name="desk", parties=["usa", "admin"],
                                          default_minima=minima))
    r = world.client.get("/v1/operations", headers=world.auth("admin"))
    assert r.status_code == 200 and [op["id"] for op in r.json()] == ["op-1"]
