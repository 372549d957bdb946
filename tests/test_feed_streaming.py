"""Streaming feed parsers: a JSON array is read element by element (memory bounded by the chunk, not the file),
blocks may cut records anywhere, a record limit stops reading early, and several files merge in time order
through sorted runs on disk exactly as a stable sort of everything would order them."""

from __future__ import annotations

import gzip
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.tracks.feeds import TooManyRecords, iter_text, json_records, parse_bytes, read_feed
from forewarn.tracks.feeds.time_order import TimeOrderedFeeds
from forewarn.tracks.model import NUMERIC_FIELDS, PositionBatch


class CountingStream(io.StringIO):
    """A text stream that counts the characters handed out."""

    def __init__(self, text: str) -> None:
        super().__init__(text, newline="")
        self.handed = 0

    def read(self, size: int | None = -1) -> str:
        out = super().read(size)
        self.handed += len(out)
        return out


def record(i: int, t: float | None = None) -> dict[str, object]:
    return {"track_id": f"a{i % 7}", "t_s": 1_447_761_600.0 + i if t is None else t, "lat_deg": 35.0 + i * 1e-4,
            "lon_deg": 38.0, "alt_m": 3000.0 + i, "callsign": f"CS{i % 3}"}


def test_a_json_array_is_read_element_by_element(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_records, "BLOCK_CHARS", 4096)
    text = json.dumps([record(i) for i in range(20_000)])
    stream = CountingStream(text)
    chunks = iter_text(stream, "json", chunk=100)
    first = next(chunks)
    assert len(first.batch) == 100
    assert stream.handed <= 4 * 4096 < len(text) // 100  # the first chunk came before the rest was read
    rest = list(chunks)
    assert sum(len(c.batch) for c in rest) + 100 == 20_000 and stream.handed == len(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 40), block=st.integers(1, 200), indent=st.sampled_from([None, 0, 2]),
       cut=st.floats(0.0, 1.0), data=st.data())
def test_blocks_cutting_records_anywhere_change_nothing(monkeypatch: pytest.MonkeyPatch, n: int, block: int,
                                                        indent: int | None, cut: float, data: st.DataObject) -> None:
    monkeypatch.setattr(json_records, "BLOCK_CHARS", block)
    records = [record(i) for i in range(n)]
    text = json.dumps(records, indent=indent)
    whole = parse_bytes(text.encode(), "json")
    assert len(whole.batch) == n and whole.rejects == [] and whole.records == n
    assert whole.batch.t_s.tolist() == [r["t_s"] for r in records]
    assert whole.batch.track_id.tolist() == [r["track_id"] for r in records]
    chunk = data.draw(st.integers(1, 50))
    parts = list(iter_text(io.StringIO(text, newline=""), "json", chunk))
    assert np.concatenate([p.row_index for p in parts]).tolist() == list(range(n))
    # a cut anywhere keeps exactly the elements that end before the cut
    at = 1 + int(cut * (len(text) - 2))
    if n and at < len(text) - 1:
        ends = [len(json.dumps(records[:k + 1], indent=indent)) - (1 if indent is None else 2) for k in range(n)]
        result = parse_bytes(text[:at].encode(), "json")
        assert len(result.rejects) == 1 and result.rejects[0].record == len(result.batch)
        assert len(result.batch) == sum(1 for end in ends if end <= at)
        assert result.batch.t_s.tolist() == [r["t_s"] for r in records[:len(result.batch)]]


def test_trailing_text_after_the_array_is_one_reject() -> None:
    result = parse_bytes(b'[{"track_id": "a", "t_s": 1, "lat_deg": 1, "lon_deg": 2}] junk', "json")
    assert len(result.batch) == 1 and [r.record for r in result.rejects] == [1]
    assert "after the closing ]" in result.rejects[0].reason


def test_a_record_limit_stops_reading_early_plain_or_gzip() -> None:
    body = b"[" + b",".join([b"{}"] * 200_000) + b"]"
    for data in (body, gzip.compress(body)):
        with pytest.raises(TooManyRecords, match="more than 1000 records"):
            parse_bytes(data, "json", max_records=1000)
    assert len(parse_bytes(b"[" + b",".join([b"{}"] * 1000) + b"]", "json", max_records=1000).batch) == 1000
    lines = b"\n".join(json.dumps(record(i)).encode() for i in range(50))
    with pytest.raises(TooManyRecords):
        parse_bytes(lines, "json", max_records=49)
    assert len(parse_bytes(lines, "json", max_records=50).batch) == 50


def _write(path: Path, rows: list[dict[str, object]], fmt: str) -> None:
    if fmt == "lines":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "gz":
        path.write_bytes(gzip.compress(json.dumps(rows).encode()))
    else:
        path.write_text(json.dumps(rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 60), min_size=1, max_size=3), run_rows=st.integers(1, 40),
       merge_rows=st.integers(1, 300), step=st.sampled_from([0.5, 1.0, 7.0]), seed=st.integers(0, 2**16))
def test_files_merge_in_time_order_like_a_stable_sort(tmp_path_factory: pytest.TempPathFactory, sizes: list[int],
                                                      run_rows: int, merge_rows: int, step: float,
                                                      seed: int) -> None:
    rng = np.random.default_rng(seed)
    tmp = tmp_path_factory.mktemp("merge")
    paths = []
    for k, size in enumerate(sizes):
        times = rng.integers(0, 20, size).astype(float) + rng.choice([0.0, 0.25], size) + 1_447_761_600.0
        rows = [record(i, float(t)) for i, t in enumerate(times)]
        if size > 2:
            rows[1]["t_s"] = None  # no time: replayed last
        paths.append(tmp / f"f{k}.json")
        _write(paths[-1], rows, ["array", "lines", "gz"][k % 3])
    expected_parts = [read_feed(p) for p in paths]
    everything = PositionBatch.concat([p.batch for p in expected_parts])
    files = np.concatenate([np.zeros(0, dtype=int), *(np.full(len(p.batch), k)
                                                      for k, p in enumerate(expected_parts))])
    order = np.argsort(everything.t_s, kind="stable")
    with TimeOrderedFeeds(run_rows=run_rows, merge_rows=merge_rows, directory=tmp) as ordered:
        summaries = [ordered.read(p) for p in paths]
        slices = list(ordered.slices(step))
    assert [s.positions for s in summaries] == [len(p.batch) for p in expected_parts]
    got = PositionBatch.concat([b for _, b, _ in slices])
    for name in NUMERIC_FIELDS:
        assert np.array_equal(getattr(got, name), getattr(everything, name)[order], equal_nan=True), name
    assert got.track_id.tolist() == everything.track_id[order].tolist()
    assert got.callsign.tolist() == everything.callsign[order].tolist()
    assert np.concatenate([np.zeros(0, dtype=int), *(f for _, _, f in slices)]).tolist() == files[order].tolist()
    # every slice spans less than one step of feed time, slices follow each other, untimed rows come last alone
    timed = [b.t_s for _, b, _ in slices if np.isfinite(b.t_s).all()]
    assert all(t.max() - t.min() < step for t in timed)
    assert all(a.max() < b.min() for a, b in itertools.pairwise(timed))
    assert all(np.isfinite(b.t_s).all() or np.isnan(b.t_s).all() for _, b, _ in slices)
