"""A circuit breaker per webhook receiver: after ``failures`` consecutive failures the receiver is left alone for
a cooldown (doubling on every failed probe, up to ``max_s``); then one probe is let through (half-open); a success
closes it. Times are monotonic seconds, passed in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CircuitBreaker:
    """The state of one receiver's breaker."""

    failures: int = 5
    cooldown_s: float = 30.0
    max_s: float = 600.0
    consecutive: int = 0
    open_until: float | None = None
    """While set and in the future, nothing is sent; once past, one probe may go (half-open)."""
    pause_s: float = 0.0
    probing: bool = False

    def allows(self, now: float) -> bool:
        """Whether an attempt may start now (takes the half-open probe slot when it is free)."""
        if self.open_until is None:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until the breaker lets an attempt through again (0 when closed)."""
        if self.open_until is None:
            return 0.0
        return max(self.open_until - now, 1.0 if self.probing else 0.0)

    def record(self, ok: bool, now: float) -> None:
        """The outcome of an attempt."""
        self.probing = False
        if ok:
            self.consecutive, self.open_until, self.pause_s = 0, None, 0.0
            return
        self.consecutive += 1
        if self.open_until is not None or self.consecutive >= self.failures:
            self.pause_s = min(self.max_s, self.pause_s * 2 if self.pause_s else self.cooldown_s)
            self.open_until = now + self.pause_s

    @property
    def is_open(self) -> bool:
        return self.open_until is not None
