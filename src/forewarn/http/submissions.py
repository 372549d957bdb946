"""Where each signed submission is addressed over HTTP: the method and path a party signs (the signing form of
:mod:`forewarn.ledger.keys`). The service names submissions by use case; this is the HTTP spelling of each."""

from __future__ import annotations

from forewarn.service.submissions import Submission


def address(submission: Submission) -> tuple[str, str]:
    """The (method, path) of ``submission`` in this API."""
    kind, subject = submission.kind, submission.subject
    if kind == "notify":
        return "POST", "/v1/operations"
    if kind == "register_site":
        return "POST", "/v1/sites"
    if kind == "acknowledge":
        return "POST", f"/v1/deliveries/{subject}/ack"
    return "POST", f"/v1/operations/{subject}/{kind}"
