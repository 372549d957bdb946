"""What a party's signature covers, as the service names it: a use case on a subject. The faces say where such a
submission is addressed (the HTTP face: a method and a path, :mod:`forewarn.http.submissions`); the service
checks a signature against that address without knowing how it is spelled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

SubmissionKind = Literal["notify", "amend", "cancel", "activate", "complete", "register_site", "acknowledge"]


@dataclass(frozen=True)
class Submission:
    """A signed submission's use case (``kind``) and the record it is about (``subject``: an operation, a site
    or a delivery id; for ``notify``, the new operation's id)."""

    kind: SubmissionKind
    subject: str


SubmissionAddress = Callable[[Submission], tuple[str, str]]
"""Where a submission is sent, as a party signs it: (method, path)."""
