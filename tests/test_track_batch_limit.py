"""The position feed bounds the rows of a batch: a batch over ``track_batch_max_rows`` (issue 20: 16 million empty
objects in 48 MB) is refused with 422 naming the limit, before its rows become objects, and stores nothing; a
gzip body is decompressed as a stream, so its size after decompression does not matter."""

from __future__ import annotations

import gzip
from pathlib import Path

from forewarn.service.settings import Settings
from forewarn.store.sqlite.tracks import TrackStore
from tests.api_support import make_world
from tests.test_track_api import feeder, position

LIMIT = Settings().track_batch_max_rows


def test_a_batch_over_the_row_limit_is_refused_and_stores_nothing(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    headers = feeder(world, "usa", ["tracks:feed", "read"])
    over = b"[" + b",".join([b"{}"] * (LIMIT + 1)) + b"]"
    bodies = {"plain": (over, {}), "gzip": (gzip.compress(b"[" + b",".join([b"{}"] * (4 * LIMIT)) + b"]"), {}),
              "lines": (b"\n".join([b"{}"] * (LIMIT + 1)), {"Content-Type": "application/x-ndjson"})}
    for name, (body, extra) in bodies.items():
        r = world.client.post("/v1/tracks/positions", content=body,
                              headers=headers | {"Content-Type": "application/json"} | extra)
        assert r.status_code == 422, (name, r.text)
        assert r.json()["error"]["details"]["max_rows"] == LIMIT, name
        assert str(LIMIT) in r.json()["error"]["message"], name
    assert TrackStore(world.service.repo).count_positions() == 0
    assert world.client.get("/v1/tracks/quality", headers=headers).json() == {}
    # a batch within the limit still goes in
    r = world.client.post("/v1/tracks/positions", json=[position("u1", 0), position("u1", 1)], headers=headers)
    assert r.status_code == 200 and r.json()["accepted"] == 2
