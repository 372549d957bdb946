"""Subscription use cases: a party's areas x altitude bands x windows of interest (notices meeting one are
delivered to it). Subscription ids are per party: a party changes or deletes only its own (creating one is
:meth:`~forewarn.service.reference.ReferenceData.put_subscription`, with the limits)."""

from __future__ import annotations

from forewarn.core.model import Subscription
from forewarn.errors import NotFound
from forewarn.service.group_commit import GroupCommit
from forewarn.store.repository import Repository


class Subscriptions:
    """Subscriptions (a part of :class:`~forewarn.service.notices.Forewarn`)."""

    repo: Repository
    commits: GroupCommit

    def subscriptions_of(self, party_id: str) -> list[Subscription]:
        """The party's subscriptions."""
        return self.repo.list_subscriptions(party_id)

    def delete_own_subscription(self, party_id: str, subscription_id: str) -> None:
        """Delete one of the party's subscriptions; NotFound when it has none with that id."""
        with self.commits.committing():
            if not any(s.id == subscription_id for s in self.repo.list_subscriptions(party_id)):
                raise NotFound(f"no subscription {subscription_id} of yours")
            with self.repo.transaction():
                self.repo.delete_subscription(subscription_id, party_id)
