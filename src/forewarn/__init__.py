"""Forewarn: multi-party airspace deconfliction and advance notification.

Parties tell each other ahead of time *where and when* they will be active, never *why*.
The library core (``forewarn.geo``, ``forewarn.core.conflicts``, ``forewarn.core.model``) has no I/O;
the store, the CLI and the service are thin shells around it.
"""

__version__ = "0.1.0"
