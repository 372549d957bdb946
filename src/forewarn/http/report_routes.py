"""Routes of the daily report (``/v1/reports``): the JSON tables and the self-contained HTML page of one UTC day.

``read`` scope. A party gets its own view (only what it may see, see :mod:`forewarn.service.day_view`); a token with
the ``admin`` scope gets the operator's full report, or a party's view with ``?party=``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from forewarn.core.credentials import Principal
from forewarn.core.ids import ID_PATTERN
from forewarn.errors import Forbidden, InvalidInput, NotFound
from forewarn.http.deps import RT, Caller
from forewarn.report import Report, build_report, render_html

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Day = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$", description="the UTC calendar day, YYYY-MM-DD")]
PartyQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="admin only: the report of this party")]


def _report(rt: RT, who: Principal, day: str, party: str | None) -> Report:
    who.require("read")
    try:
        when = date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInput(f"{day!r} is not a date YYYY-MM-DD") from exc
    if "admin" in who.scopes:
        viewer = party
    elif party is not None and party != who.party_id:
        raise Forbidden("only an admin may read another party's report", {"party": party})
    else:
        viewer = who.party_id
    try:
        return build_report(rt.service.day_seen_by(when, viewer))
    except LookupError as exc:
        raise NotFound(str(exc), {"party": viewer}) from exc


@router.get("/{day}.html", response_class=HTMLResponse,
            responses={200: {"content": {"text/html": {}}, "description": "the report page (self-contained)"}})
async def report_html(rt: RT, who: Caller, day: Day, party: PartyQuery = None) -> HTMLResponse:
    """The report of ``day`` as one self-contained HTML page with plots (nothing loaded from elsewhere)."""
    report = await run_in_threadpool(_report, rt, who, day, party)
    page = await run_in_threadpool(render_html, report)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/{day}")
async def report_json(rt: RT, who: Caller, day: Day, party: PartyQuery = None) -> dict[str, Any]:
    """The report of ``day`` as JSON: headline figures and every table (columns and rows)."""
    report = await run_in_threadpool(_report, rt, who, day, party)
    return report.to_json()
