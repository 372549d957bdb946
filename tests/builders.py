"""Small builders for test records (times UTC, altitudes metres above WGS84)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from forewarn.core.model import Agreement, Operation, SeparationMinima
from forewarn.geo.volume import Volume4D
from tests.conftest import T0


def circle(lon: float, lat: float, radius_m: float = 5000.0, lower: float = 1000.0, upper: float = 5000.0,
           start_h: float = 1.0, end_h: float = 3.0, t0: datetime = T0) -> Volume4D:
    return Volume4D.model_validate({
        "footprint": {"kind": "circle", "center": [lon, lat], "radius_m": radius_m},
        "lower_m": lower, "upper_m": upper,
        "start": t0 + timedelta(hours=start_h), "end": t0 + timedelta(hours=end_h),
    })


def square(lon: float, lat: float, size_deg: float, lower: float = 1000.0, upper: float = 5000.0,
           start_h: float = 1.0, end_h: float = 3.0, t0: datetime = T0) -> Volume4D:
    return Volume4D.model_validate({
        "footprint": {"kind": "polygon", "coordinates": [
            [lon, lat], [lon + size_deg, lat], [lon + size_deg, lat + size_deg], [lon, lat + size_deg]]},
        "lower_m": lower, "upper_m": upper,
        "start": t0 + timedelta(hours=start_h), "end": t0 + timedelta(hours=end_h),
    })


def operation(op_id: str, party: str, volumes: list[Volume4D], cls: str = "transport",
              notified_at: datetime | None = None, **extra: Any) -> Operation:
    return Operation(id=op_id, party_id=party, activity_class=cls, volumes=volumes, state="notified",
                     notified_at=notified_at, **extra)


def agreement(agreement_id: str, parties: list[str], h: float = 5000.0, v: float = 300.0, t: float = 600.0,
              **extra: Any) -> Agreement:
    return Agreement(id=agreement_id, name=agreement_id, parties=parties,
                     default_minima=SeparationMinima(horizontal_m=h, vertical_m=v, time_s=t), **extra)
