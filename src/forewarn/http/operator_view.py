"""What the service's operator (an admin token of a party bound by no agreement) is told when it asks for the
parties' operations: under minimal disclosure nothing, and it is told so plainly instead of being handed an empty list
that reads as "nothing is planned" (docs/security.md, "What an administrator sees")."""

from __future__ import annotations

from forewarn.core.airspace import AgreementBook
from forewarn.core.credentials import Principal
from forewarn.errors import Forbidden

OPERATOR_VIEW_REASON = "admin_sees_no_operations"
"""The ``details.reason`` of the 403 an operator's admin token gets from the operation read endpoints."""


def refuse_operator_view(who: Principal, book: AgreementBook) -> None:
    """Raise :class:`Forbidden` when ``who`` holds the admin scope and its party is bound by no agreement.

    Such a caller administers parties, agreements and credentials; no agreement releases any party's operations
    to it, so the operation read endpoints answer 403 with the reason instead of an unexplained empty view. A party
    that is bound by an agreement sees what its agreements allow, admin scope or not."""
    if "admin" not in who.scopes:
        return
    if any(who.party_id in agreement.parties for agreement in book):
        return
    raise Forbidden(
        "an admin token of a party bound by no agreement is shown no party's operations (minimal disclosure: "
        "operations are released only through agreements); sign in with a party's credentials to see what that "
        "party may see",
        {"reason": OPERATOR_VIEW_REASON, "party_id": who.party_id},
    )
