"""The live notified volumes as the tracker tests positions against them: one vectorised 4D layer per tolerance
(and per party they are shown to), rebuilt when the airspace or the agreements change; and who is bound to whom.
Distances in metres (:class:`forewarn.tracks.conformance.Tolerance`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forewarn.core.airspace import Airspace
from forewarn.service.track_model import TRACK_CLASS, TrackState
from forewarn.tracks.conformance import Tolerance, VolumeLayer

if TYPE_CHECKING:
    from forewarn.service.notices import Forewarn


class LiveLayers:
    """Layers of the service's live airspace (see module docstring)."""

    def __init__(self, service: Forewarn) -> None:
        self.service = service
        self._layers: dict[tuple[str, str | None], tuple[tuple[int, int], VolumeLayer]] = {}

    @property
    def airspace(self) -> Airspace:
        return self.service.airspace

    def layer(self, name: str, tolerance: Tolerance, shown_to: str | None = None) -> VolumeLayer:
        """The live volumes with ``tolerance`` (as ``shown_to`` is shown them, if given), rebuilt when the
        airspace or the agreements changed."""
        revision = (self.airspace.revision, self.airspace.book.revision)
        key = (name, shown_to)
        hit = self._layers.get(key)
        if hit is None or hit[0] != revision:
            hit = (revision, VolumeLayer(self.airspace, tolerance, shown_to))
            self._layers[key] = hit
        return hit[1]

    def bound(self, a: str, b: str) -> bool:
        """Whether an agreement binds two different parties."""
        return a != b and bool(self.airspace.book.binding(a, b))

    def class_of(self, state: TrackState) -> str:
        """The activity class of a track: its operation's, or ``track`` when it has none."""
        op = self.airspace.operations.get(state.operation_id or "")
        return op.activity_class if op is not None else TRACK_CLASS
