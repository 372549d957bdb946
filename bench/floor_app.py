"""The floor of the HTTP path: Forewarn's own application with three extra filing routes that stop early.

Run by ``bench/api.py`` (its floor phase) as ``python bench/floor_app.py --db DB --port PORT``, on the database
of the benchmark's server, so the same parties and tokens work. Each route takes the same request as
``POST /v1/operations`` and answers 201; the load generator files the same non-overlapping bodies at each:

* ``POST /floor/empty``: no dependency, the body not read, a fixed two-key answer. What uvicorn, Starlette,
  FastAPI routing and Forewarn's request-id middleware cost per request on their own.
* ``POST /floor/parsed``: the dependencies of the real route (the caller's bearer token checked, the optional
  party signature, the Idempotency-Key header), the body parsed into ``OperationIn``, the ``Operation`` built,
  and an empty ``NoticeOutcome`` serialised through the same response model. Everything the real route does on
  the event loop before it queues the filing, and after, but none of the filing.
* ``POST /floor/validated``: ``parsed`` plus ``Forewarn.validate`` (the party read, each volume's footprint
  shape, geodesic area and horizon checked), the first step of a filing.

The rate of each is the most this one process could answer on one core if the filing itself cost nothing:
an upper bound for ``POST /v1/operations`` measured in the same run. With ``--workers N`` uvicorn runs N such
processes on one listening socket (the benchmark's whole-machine floor: what every core of this machine could
answer if the filing itself cost nothing and the processes shared nothing). Not part of the product: it lives in
``bench/`` and adds its routes to an application built only here.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from forewarn.core.credentials import Principal
from forewarn.core.model import Operation
from forewarn.core.records import NoticeOutcome
from forewarn.http.app import create_app
from forewarn.http.deps import RT, Caller, SignedRequest
from forewarn.http.routes import IdemKey
from forewarn.http.schemas import OperationIn
from forewarn.service.settings import Settings

floor = APIRouter(prefix="/floor", tags=["floor"])


@floor.post("/empty", status_code=201)
async def empty() -> dict[str, Any]:
    """Nothing but the HTTP stack."""
    return {"conflicts": [], "resolutions": []}


def _operation(who: Principal, body: OperationIn) -> Operation:
    """What the real route builds from the request (after the same scope check)."""
    who.require("notices:file")
    return Operation(id=body.id, party_id=who.party_id, activity_class=body.activity_class, volumes=body.volumes,
                     detail=body.detail)


def _outcome(rt: Any, op: Operation) -> NoticeOutcome:
    return NoticeOutcome(notice_id=None, kind="notify", operation_id=op.id, version=1, party_id=op.party_id,
                         activity_class=op.activity_class, at=rt.clock(), lead_times=[], conflicts=[],
                         site_warnings=[], resolutions=[], impacts=[])


@floor.post("/parsed", response_model=NoticeOutcome, status_code=201)
async def parsed(rt: RT, who: Caller, body: OperationIn, sig: SignedRequest,
                 idempotency_key: IdemKey = None) -> NoticeOutcome:
    """The real route's dependencies, request model and response model; no filing."""
    return _outcome(rt, _operation(who, body))


@floor.post("/validated", response_model=NoticeOutcome, status_code=201)
async def validated(rt: RT, who: Caller, body: OperationIn, sig: SignedRequest,
                    idempotency_key: IdemKey = None) -> NoticeOutcome:
    """``parsed`` plus the filing's validation step."""
    op = _operation(who, body)
    rt.service.validate(op, rt.clock())
    return _outcome(rt, op)


def build(db: Path) -> FastAPI:
    """Forewarn's application on ``db`` (no delivery worker: nothing is filed) with the floor routes added."""
    app = create_app(Settings(db=db), run_worker=False)
    app.include_router(floor)
    return app


DB_VARIABLE = "FOREWARN_FLOOR_DB"


def app_from_environment() -> FastAPI:
    """The application uvicorn builds in each server process (with ``--workers`` > 1 it needs a factory it can
    import; the database path comes through the environment, which the worker processes inherit)."""
    return build(Path(os.environ[DB_VARIABLE]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="server processes on the one socket (default 1)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    os.environ[DB_VARIABLE] = str(args.db)
    uvicorn.run("floor_app:app_from_environment", factory=True, workers=args.workers, host="127.0.0.1",
                port=args.port, log_level="info", app_dir=str(Path(__file__).resolve().parent))


if __name__ == "__main__":
    main()
