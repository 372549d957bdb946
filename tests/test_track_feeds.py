"""Feed parsers: real traffic recordings, round trips through every format, chunked reading, malformed input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forewarn.tracks.feeds import (
    CSV_HEADER,
    FORMATS,
    FeedResult,
    detect_format,
    iter_feed,
    parse_bytes,
    parse_own_json,
    read_feed,
)
from forewarn.tracks.model import NUMERIC_FIELDS, Position, PositionBatch
from forewarn.tracks.quality import FeedQuality
from tests.conftest import TRAFFIC_SAMPLES

SAMPLES = TRAFFIC_SAMPLES
needs_samples = pytest.mark.usefixtures("traffic_samples")  # skipped without them on a laptop, failed in CI

FT, KT, FPM = 0.3048, 1852.0 / 3600.0, 0.3048 / 60.0  # written out here, independently of forewarn.units


# --- writers (the inverse of each format, written plainly) --------------------------------------------------------


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def num(x: float) -> float | None:
    return None if math.isnan(x) else x


def write_own_json(rows: list[Position], lines: bool, iso_time: bool) -> str:
    objs = []
    for p in rows:
        obj: dict[str, object] = {"track_id": p.track_id, "lat_deg": p.lat_deg, "lon_deg": p.lon_deg,
                                  **{f: num(getattr(p, f)) for f in ("alt_m", "gs_mps", "track_deg", "vs_mps")},
                                  "callsign": p.callsign}
        obj["time" if iso_time else "t_s"] = iso(p.t_s) if iso_time else p.t_s
        objs.append(obj)
    return "\n".join(json.dumps(o) for o in objs) + "\n" if lines else json.dumps(objs)


def write_csv(rows: list[Position], iso_time: bool) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_HEADER.split(","))
    for p in rows:
        w.writerow([p.track_id, iso(p.t_s) if iso_time else repr(p.t_s), repr(p.lat_deg), repr(p.lon_deg),
                    *("" if math.isnan(v) else repr(v) for v in (p.alt_m, p.gs_mps, p.track_deg, p.vs_mps)),
                    p.callsign])
    return out.getvalue()


def write_traffic_csv(rows: list[Position]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["timestamp", "icao24", "latitude", "longitude", "altitude", "groundspeed", "track",
                "vertical_rate", "callsign"])
    for p in rows:
        w.writerow([round(p.t_s * 1000), p.track_id, repr(p.lat_deg), repr(p.lon_deg),
                    *("" if math.isnan(v) else repr(v) for v in (p.alt_m / FT, p.gs_mps / KT, p.track_deg,
                                                                 p.vs_mps / FPM)), p.callsign])
    return out.getvalue()


def sbs_line(kind: int, ident: str, t: float, callsign: str = "", alt: str = "", gs: str = "", trk: str = "",
             lat: str = "", lon: str = "", vs: str = "") -> str:
    moment = datetime.fromtimestamp(t, tz=UTC)
    date, clock = moment.strftime("%Y/%m/%d"), moment.strftime("%H:%M:%S.%f")[:-3]
    return ",".join(["MSG", str(kind), "1", "1", ident.upper(), "1", date, clock, date, clock, callsign, alt, gs,
                     trk, lat, lon, vs, "", "0", "0", "0", "0"])


def write_sbs(rows: list[Position]) -> str:
    """Each position as MSG,1 (callsign), MSG,4 (velocity) and MSG,3 (altitude and position), like dump1090."""
    out = []
    for p in rows:
        out.append(sbs_line(1, p.track_id, p.t_s, callsign=p.callsign))
        out.append(sbs_line(4, p.track_id, p.t_s, gs=repr(p.gs_mps / KT), trk=repr(p.track_deg),
                            vs=repr(p.vs_mps / FPM)))
        out.append(sbs_line(3, p.track_id, p.t_s, alt=repr(p.alt_m / FT), lat=repr(p.lat_deg), lon=repr(p.lon_deg)))
    return "\n".join(out) + "\n"


def assert_batches_close(got: PositionBatch, want: list[Position], t_tol: float = 1e-6) -> None:
    assert len(got) == len(want)
    exp = PositionBatch.from_positions(want)
    assert got.track_id.tolist() == exp.track_id.tolist()
    assert got.callsign.tolist() == exp.callsign.tolist()
    assert np.allclose(got.t_s, exp.t_s, rtol=0, atol=t_tol)
    for name in NUMERIC_FIELDS[1:]:
        assert np.allclose(getattr(got, name), getattr(exp, name), rtol=1e-9, atol=1e-9, equal_nan=True), name


# --- round trips --------------------------------------------------------------------------------------------------

maybe = st.one_of(st.just(math.nan), st.floats(0, 300, allow_nan=False))
positions = st.lists(st.builds(
    Position,
    st.sampled_from(["4ca2d6", "3c6444", "a0b1c2"]),
    st.integers(1_400_000_000_000, 1_800_000_000_000).map(lambda ms: ms / 1000),
    st.floats(-90, 90), st.floats(-180, 180),
    st.floats(-400, 20_000), maybe, st.floats(0, 359.99), st.floats(-100, 100),
    st.sampled_from(["", "AFR123", "BAW9"]),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=positions)
def test_the_same_positions_parse_alike_in_every_format(rows: list[Position], tmp_path: Path) -> None:
    # SBS-1 carries the last known callsign and velocity forward: give it complete rows
    sbs_rows = [replace(p, gs_mps=1.0 if math.isnan(p.gs_mps) else p.gs_mps, callsign=p.callsign or "X")
                for p in rows]
    cases = {
        "own.json": (write_own_json(rows, lines=False, iso_time=False), "json", rows, 1e-9),
        "own.jsonl": (write_own_json(rows, lines=True, iso_time=True), "json", rows, 1e-5),
        "own.csv": (write_csv(rows, iso_time=False), "csv", rows, 1e-9),
        "own-iso.csv": (write_csv(rows, iso_time=True), "csv", rows, 1e-5),
        "traffic.csv": (write_traffic_csv(rows), "csv", rows, 1e-3),
        "feed.sbs": (write_sbs(sbs_rows), "sbs", sbs_rows, 1e-3),
    }
    for name, (text, fmt, want, t_tol) in cases.items():
        path = tmp_path / (name + ".gz" if name.endswith("csv") else name)
        if path.suffix == ".gz":
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
        assert detect_format(path) == fmt, name
        result = read_feed(path)
        assert result.rejects == [], name
        assert_batches_close(result.batch, want, t_tol)


def test_sbs_messages_are_merged_per_aircraft() -> None:
    t = 1447761600.0  # 2015-11-17T12:00:00Z
    text = "\n".join([
        "MSG,3,1,1,4CA2D6,1,2015/11/17,12:00:00.000,2015/11/17,12:00:00.000,,37000,,,51.47,-0.45,,,0,0,0,0",
        sbs_line(1, "4ca2d6", t + 1, callsign="EIN123  "),
        sbs_line(4, "4ca2d6", t + 1.5, gs="450", trk="90.5", vs="-640"),
        sbs_line(1, "3c6444", t + 1.6, callsign="DLH1"),
        sbs_line(5, "4ca2d6", t + 1.7, alt="36900"),  # altitude only: no position
        "SEL,,496,2286,4CA2D6,27215,2015/11/17,12:00:01.800,2015/11/17,12:00:01.800,RYR1427",
        sbs_line(3, "4ca2d6", t + 2, lat="51.48", lon="-0.44"),
        sbs_line(2, "3c6444", t + 2.5, alt="0", gs="12", trk="180", lat="50.03", lon="8.57"),
    ])
    result = parse_bytes(text.encode(), "sbs")
    assert result.rejects == []
    assert result.row_index.tolist() == [0, 6, 7]
    assert_batches_close(result.batch, [
        Position("4ca2d6", t, 51.47, -0.45, 37000 * FT),
        Position("4ca2d6", t + 2, 51.48, -0.44, 36900 * FT, 450 * KT, 90.5, -640 * FPM, "EIN123"),
        Position("3c6444", t + 2.5, 50.03, 8.57, 0.0, 12 * KT, 180.0, math.nan, "DLH1")])


def test_own_json_from_bytes_in_each_container() -> None:
    rows = [Position("a", 1e9, 1, 2, 3, 4, 5, 6, "X"), Position("b", 1e9 + 1, -1, -2)]
    columns = {f: {str(i): getattr(p, f) if not (isinstance(getattr(p, f), float) and math.isnan(getattr(p, f)))
                   else None for i, p in enumerate(rows)} for f in ("track_id", "t_s", *NUMERIC_FIELDS[1:],
                                                                    "callsign")}
    for body in (write_own_json(rows, lines=False, iso_time=True).encode(),
                 write_own_json(rows, lines=True, iso_time=False).encode(),
                 gzip.compress(write_own_json(rows, lines=True, iso_time=False).encode()),
                 json.dumps(columns).encode()):
        result = parse_own_json(body)
        assert result.rejects == [] and result.row_index.tolist() == [0, 1]
        assert_batches_close(result.batch, rows)


def test_iter_feed_chunks_add_up_to_read_feed(tmp_path: Path) -> None:
    rows = [Position(f"t{i % 7}", 1e9 + i, i / 1000, 0.5) for i in range(2_500)]
    for name, text in (("f.jsonl", write_own_json(rows, lines=True, iso_time=False)),
                       ("f.json", write_own_json(rows, lines=False, iso_time=False)),
                       ("f.csv", write_csv(rows, iso_time=False)), ("f.sbs", write_sbs(
                           [Position(f"{i % 7:06x}", 1e9 + i, i / 1000, 0.5, 0, 0, 0, 0, "") for i in range(2_500)]))):
        path = tmp_path / name
        path.write_text(text)
        chunks = list(iter_feed(path, chunk=1_000))
        assert len(chunks) >= 3
        assert all(c.records <= 1_000 for c in chunks)
        whole = read_feed(path)
        joined = FeedResult.concat(chunks, whole.format)
        assert joined.row_index.tolist() == whole.row_index.tolist()
        assert_batches_close(joined.batch, whole.batch.positions())
        assert len(whole.batch) == 2_500


# --- the real recordings ------------------------------------------------------------------------------------------


@needs_samples
def test_quickstart_records_become_positions_in_si_units() -> None:
    with gzip.open(SAMPLES / "quickstart.json.gz", "rt") as f:
        records = json.load(f)
    result = read_feed(SAMPLES / "quickstart.json.gz")
    assert result.format == "traffic" and result.rejects == []
    assert len(result.batch) == len(records) == result.records
    b = result.batch
    for k in np.random.default_rng(1).integers(0, len(records), 300):
        r = records[k]
        assert b.track_id[k] == r["icao24"] and b.callsign[k] == r["callsign"]
        assert b.t_s[k] == r["timestamp"] / 1000
        assert (b.lat_deg[k], b.lon_deg[k]) == (r["latitude"], r["longitude"])
        for got, key, factor in ((b.alt_m[k], "altitude", FT), (b.gs_mps[k], "groundspeed", KT),
                                 (b.track_deg[k], "track", 1.0), (b.vs_mps[k], "vertical_rate", FPM)):
            if r[key] is None:
                assert math.isnan(got)
            else:
                assert got == pytest.approx(r[key] * factor, rel=1e-12)
    assert len(np.unique(b.track_id)) == 213


@needs_samples
def test_a_pandas_column_dict_reads_like_records() -> None:
    with gzip.open(SAMPLES / "noisy_spoofing.json.gz", "rt") as f:
        columns = json.load(f)
    result = read_feed(SAMPLES / "noisy_spoofing.json.gz")
    keys = list(columns["timestamp"])
    assert result.rejects == [] and len(result.batch) == len(keys)
    lat = np.array([np.nan if columns["latitude"][k] is None else columns["latitude"][k] for k in keys])
    assert np.array_equal(result.batch.lat_deg, lat, equal_nan=True)
    assert np.array_equal(result.batch.t_s, np.array([columns["timestamp"][k] for k in keys]) / 1000)
    assert np.isnan(result.batch.lat_deg).sum() > 0  # left to the quality checks, not a parse error


@needs_samples
def test_detect_format_of_the_samples_and_of_first_bytes() -> None:
    for name in ("quickstart.json.gz", "noisy_spoofing.json.gz", "noisy_time_issue.json.gz"):
        assert detect_format(SAMPLES / name) == "traffic"
        assert detect_format((SAMPLES / name).read_bytes()[:4096]) == "traffic"
    assert detect_format(b'{"track_id": "a", "t_s": 1}\n') == "json"
    assert detect_format(CSV_HEADER.encode() + b"\n") == "csv"
    assert detect_format(b"MSG,3,1,1,4CA2D6,1,2015/11/17,12:00:00.000") == "sbs"
    assert detect_format(b"") == "json"
    with pytest.raises(ValueError, match="unrecognised"):
        detect_format(b"hello world")
    assert set(FORMATS) == {"json", "traffic", "csv", "sbs"}


# --- malformed input ----------------------------------------------------------------------------------------------

GOOD_JSON = '{"track_id": "a", "t_s": 1000, "lat_deg": 1, "lon_deg": 2}'
GOOD_SBS = "MSG,3,1,1,4CA2D6,1,2015/11/17,12:00:00.000,2015/11/17,12:00:00.000,,37000,,,51.47,-0.45,,,0,0,0,0"
MALFORMED = {
    "bad.jsonl": ("json", "\n".join([
        GOOD_JSON,
        '{"track_id": "a", "t_s": 1001, "lat_deg": 1, "lon',  # truncated
        '{"track_id": "a", "t_s": 1002, "lat_deg": "north", "lon_deg": 2}',  # string in a number field
        '{"track_id": "a", "t_s": 1003, "lat_deg": 1, "lon_deg": 2, "alt_m": 1' + "0" * 400 + "}",  # huge
        '{"track_id": "a", "time": "yesterday", "lat_deg": 1, "lon_deg": 2}',
        '[1, 2, 3]',
        '{"track_id": ["a"], "t_s": 1004, "lat_deg": 1, "lon_deg": 2}',
        '{"track_id": "a", "t_s": NaN, "lat_deg": 1, "lon_deg": 2}',  # parses: NaN is the quality's business
        '{"track_id": "a", "t_s": 1005, "lat_deg": 1e999, "lon_deg": 2, "gs_mps": true}',
        GOOD_JSON.replace("1000", "1006"),
    ]), {1, 2, 3, 4, 5, 6, 8}, 3),
    "bad.csv": ("csv", "\n".join([
        CSV_HEADER,
        "a,1000,1,2,,,,,",
        "a,1001,1,2",  # truncated
        "a,1002,north,2,,,,,",
        "a,1003,1,2,1" + "0" * 400 + ",,,,",  # huge: infinity, rejected by the quality checks
        "a,not-a-time,1,2,,,,,",
        "a,nan,1,2,,,,,",
        "a,2021-10-07T12:00:00Z,1,2,100,200,90,0,AFR1",
    ]), {2, 3, 5}, 4),
    "bad.sbs": ("sbs", "\n".join([
        GOOD_SBS,
        GOOD_SBS[:40],  # truncated
        GOOD_SBS.replace("51.47", "north"),
        GOOD_SBS.replace("2015/11/17,12:00:00.000,2015", "2015/13/17,12:00:00.000,2015"),
        GOOD_SBS.replace("MSG,3", "MSG,9"),
        GOOD_SBS.replace("37000", "1" + "0" * 400),
        "garbage",
        GOOD_SBS.replace("12:00:00.000,2015/11/17,12:00:00.000", "12:00:01.000,2015/11/17,12:00:01.000"),
    ]), {1, 2, 3, 4, 6}, 3),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_records_are_rejected_one_by_one(name: str, tmp_path: Path) -> None:
    fmt, text, bad_records, parsed = MALFORMED[name]
    path = tmp_path / name
    path.write_text(text)
    result = read_feed(path, fmt)
    assert {r.record for r in result.rejects} == bad_records
    assert all(r.reason for r in result.rejects)
    assert len(result.batch) == parsed and result.records == parsed + len(bad_records)
    checked = FeedQuality().check(result.batch, "s")  # NaN and infinities go to the quality checks, no crash
    assert checked.counts["received"] == parsed


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_and_blank_files_give_nothing(fmt: str, tmp_path: Path) -> None:
    for content in ("", "\n\n  \n"):
        path = tmp_path / f"empty.{fmt}"
        path.write_text(content)
        result = read_feed(path, fmt)
        assert len(result.batch) == 0 and result.rejects == []
    assert len(read_feed(path).batch) == 0  # detected


def test_truncated_array_keeps_its_complete_records_and_bad_csv_header_is_one_clear_reject() -> None:
    result = parse_bytes(b'[{"track_id": "a", "t_s": 1, "lat_deg": 1, "lon_deg": 2}, {"track_', "json")
    assert len(result.batch) == 1 and [r.record for r in result.rejects] == [1] and result.records == 2
    result = parse_bytes(b"id,when,x,y\n1,2,3,4\n", "csv")
    assert len(result.batch) == 0 and "header" in result.rejects[0].reason
    result = parse_bytes(b"\x1f\x8b\x08\x00garbage", None)
    assert len(result.batch) == 0 and result.rejects
    result = parse_bytes(b'{"track_id": "a", "t_s": 1, "lat_deg": 1, "lon_deg": 2}\x00\xff\n', "json")
    assert result.records == 1
