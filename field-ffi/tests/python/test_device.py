"""The handheld SDK end to end, from Python, against a real sync-server.

Run by `cargo test -p field-ffi` (tests/python.rs), which builds the
library, generates the bindings and points FIELD_FFI_BINDINGS and
SYNC_SERVER_BIN here.
"""

import asyncio
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

import pytest

sys.path.insert(0, os.environ["FIELD_FFI_BINDINGS"])
import field_ffi  # noqa: E402  (the generated module)

CELLS = ["330109001001001", "330109001001002"]


def png(seed):
    """A real 16x16 PNG with distinct bytes per seed."""
    raw = b"".join(
        b"\x00" + b"".join(bytes(((x * 16) % 256, (y * 16) % 256, seed % 256)) for x in range(16))
        for y in range(16)
    )

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def grid():
    features = []
    for c, code in enumerate(CELLS):
        x0 = 120.26 + c * 0.001
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "zone": "red"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[x0, 30.19], [x0 + 0.001, 30.19], [x0 + 0.001, 30.189], [x0, 30.189], [x0, 30.19]]
                    ],
                },
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


class Center:
    """A real sync-server process on loopback, driven as the admin."""

    def __init__(self, data):
        env = dict(os.environ, RUST_LOG="warn", SYNC_SERVER_JOBS_ENABLED="false")
        self.proc = subprocess.Popen(
            [os.environ["SYNC_SERVER_BIN"], "--data", data, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        line = self.proc.stdout.readline().decode().strip()
        assert line.startswith("listening on "), line
        self.url = line[len("listening on ") :]
        with open(os.path.join(data, "admin.token")) as f:
            self.token = f.read().strip()

    def call(self, method, path, body=None, content_type="application/json"):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", content_type)
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
        return json.loads(text) if text else None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def center():
    with tempfile.TemporaryDirectory() as d:
        c = Center(os.path.join(d, "data"))
        c.call("PUT", "/v1/center/grid", grid(), "application/geo+json")
        yield c
        c.stop()


class Listener(field_ffi.SyncListener):
    def __init__(self):
        self.events = []

    def on_progress(self, progress):
        self.events.append(progress)


def test_a_collectors_morning_through_the_sdk(center, tmp_path):
    code = center.call(
        "POST",
        "/v1/center/users",
        {"name": "王芳", "role": "collector", "cells": CELLS, "from": "2025-01-01"},
    )["enrolment_code"]

    # A fresh handset: the store is created, the name comes from the server.
    device = field_ffi.Device.open(str(tmp_path / "handset" / "device.db"))
    who = device.enroll(center.url, code, "Pixel 8")
    assert who.user == "王芳" and who.role == "collector" and who.cells == CELLS
    assert device.status().user == "王芳"

    # A morning's fixes, every 5 s, as the location service delivers them;
    # one mocked fix is kept out of the track.
    start = (int(time.time()) - 3600) * 1000  # whole seconds, as GPX writes them
    fixes = [
        field_ffi.Fix(
            at_ms=start + i * 5000,
            lon=120.2603 + i * 0.00001,
            lat=30.1895,
            accuracy_m=4.0,
            speed_mps=1.2,
            bearing_deg=90.0,
            provider="gps",
            mock=False,
        )
        for i in range(120)
    ]
    fixes.append(
        field_ffi.Fix(
            at_ms=start + 121 * 5000, lon=120.2603, lat=30.1895, accuracy_m=1.0,
            speed_mps=None, bearing_deg=None, provider="gps", mock=True,
        )
    )
    recorded = device.record_fixes(fixes)
    assert recorded.recorded == 121 and recorded.skipped_mock == 1
    # A GPX file holding two of those instants and one new: only the new
    # point is added; the untimed one is reported.
    iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + "Z"
    gpx = tmp_path / "logger.gpx"
    gpx.write_text(
        '<gpx creator="x"><trk><trkseg>'
        f'<trkpt lat="30.1895" lon="120.2603"><time>{iso(start)}</time></trkpt>'
        f'<trkpt lat="30.1895" lon="120.2604"><time>{iso(start + 5000)}</time></trkpt>'
        f'<trkpt lat="30.1895" lon="120.2605"><time>{iso(start + 600_000 + 2500)}</time></trkpt>'
        '<trkpt lat="30.1895" lon="120.2606"></trkpt>'
        "</trkseg></trk></gpx>"
    )
    imported = device.import_gpx(str(gpx))
    assert (imported.added, imported.already_held) == (1, 2), imported
    assert len(imported.skipped) == 1 and "has no <time>" in imported.skipped[0]
    device.start_shift(start, 120.2603, 30.1895)

    # The catalog: by code prefix and by Chinese name.
    hits = device.catalog_search("SJ01", 5)
    assert hits and all(h.code.startswith("SJ01") for h in hits)
    name = hits[0].name_zh[:2]
    assert any(h.code == hits[0].code for h in device.catalog_search(name, 50))

    # A case with photos given as bytes and as a path.
    photo_file = tmp_path / "p2.png"
    photo_file.write_bytes(png(2))
    case = device.report_case(
        field_ffi.CaseReport(
            category="SJ0102",
            lon=120.2605,
            lat=30.1895,
            description="井盖破损 broken manhole cover",
            photos=[field_ffi.Photo.BYTES(png(1)), field_ffi.Photo.FILE(str(photo_file))],
            at_ms=None,
            fixed_photos=[],
        )
    )
    assert any(c.id == case for c in device.cases())

    # Typed errors name the field.
    with pytest.raises(field_ffi.FieldError.Invalid) as bad:
        device.report_case(
            field_ffi.CaseReport(
                category="SJ0102", lon=120.26, lat=95.0, description="x",
                photos=[field_ffi.Photo.BYTES(png(3))], at_ms=None, fixed_photos=[],
            )
        )
    assert bad.value.field == "lat"

    # Sync, awaited from asyncio, with progress.
    listener = Listener()
    report = asyncio.run(device.sync(listener, None))
    assert report.pushed >= 3 and report.refused == 0  # fixes, shift, case
    assert report.photos_sent == 2
    assert any(isinstance(e, field_ffi.SyncProgress.PUSHED) for e in listener.events)
    assert any(isinstance(e, field_ffi.SyncProgress.PHOTO_BYTES) for e in listener.events)

    # With the city's grid on the handset, a position in none of its cells
    # is refused unless the collector insists.
    far = field_ffi.CaseReport(
        category="SJ0102", lon=121.0, lat=31.0, description="far away",
        photos=[field_ffi.Photo.BYTES(png(5))], at_ms=None, fixed_photos=[],
    )
    with pytest.raises(field_ffi.FieldError.Invalid) as outside:
        device.report_case(far)
    assert outside.value.field == "lon"

    # The center asks for a verification; the handset answers it.
    center.call("POST", "/v1/center/tasks", {"kind": "verify", "case": case, "to": "王芳"})
    asyncio.run(device.sync(None, None))
    tasks = device.tasks()
    assert len(tasks) == 1 and tasks[0].case_id == case and tasks[0].answer is None
    device.answer_task(tasks[0].id, "yes", [field_ffi.Photo.BYTES(png(4))], "still there")
    assert device.tasks()[0].answer == "yes"
    done = asyncio.run(device.sync(None, None))
    assert done.refused == 0 and done.photos_sent == 1

    # The handset and the center hold the same cases.
    server = center.call("GET", "/v1/center/digest")
    assert device.digest() == server["cases"]
    status = device.status()
    assert status.pending_changes == 0 and status.pending_photos == 0


def test_a_cancelled_sync_stops_and_resumes(center, tmp_path):
    code = center.call(
        "POST",
        "/v1/center/users",
        {"name": "李伟", "role": "collector", "cells": CELLS, "from": "2025-01-01"},
    )["enrolment_code"]
    device = field_ffi.Device.open(str(tmp_path / "device.db"))
    device.enroll(center.url, code, None)
    device.report_case(
        field_ffi.CaseReport(
            category="SJ0102", lon=120.2615, lat=30.1895, description="poster",
            photos=[field_ffi.Photo.BYTES(png(7))], at_ms=None, fixed_photos=[],
        )
    )
    cancel = field_ffi.CancelToken()
    cancel.cancel()
    with pytest.raises(field_ffi.FieldError.Cancelled):
        asyncio.run(device.sync(None, cancel))
    assert device.status().pending_changes == 1, "nothing was sent"
    report = asyncio.run(device.sync(None, field_ffi.CancelToken()))
    assert report.pushed == 1 and report.photos_sent == 1
    with pytest.raises(field_ffi.FieldError.Invalid) as bad:
        device.enroll("http://192.0.2.10:8080", "X", None)
    assert bad.value.field == "server"


def test_an_unenrolled_handset_is_told_so(tmp_path):
    device = field_ffi.Device.open(str(tmp_path / "device.db"))
    with pytest.raises(field_ffi.FieldError.NotEnrolled):
        asyncio.run(device.sync(None, None))


def fix(at_ms, i, mock=False):
    return field_ffi.Fix(
        at_ms=at_ms, lon=120.2603 + i * 0.00001, lat=30.1895, accuracy_m=4.0,
        speed_mps=1.2, bearing_deg=90.0, provider="gps", mock=mock,
    )


# A child that records one fix a call and says so after each returns.
RECORDER = """
import os, sys
sys.path.insert(0, os.environ["FIELD_FFI_BINDINGS"])
import field_ffi
d = field_ffi.Device.open(sys.argv[1])
t0, first = int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + 100000):
    d.record_fix(field_ffi.Fix(at_ms=t0 + i * 5000, lon=120.2603 + i * 0.00001, lat=30.1895,
        accuracy_m=4.0, speed_mps=1.2, bearing_deg=90.0, provider="gps", mock=False))
    print(i, flush=True)
"""


def test_a_recorder_killed_mid_batch_resumes_the_day(center, tmp_path):
    code = center.call(
        "POST",
        "/v1/center/users",
        {"name": "赵敏", "role": "collector", "cells": CELLS, "from": "2025-01-01"},
    )["enrolment_code"]
    path = str(tmp_path / "device.db")
    device = field_ffi.Device.open(path)
    device.enroll(center.url, code, None)
    # Three days ago, 10:00 in the city (UTC+8): inside patrol hours.
    day_start = (int(time.time()) + 8 * 3600) // 86400 * 86400 - 8 * 3600 - 3 * 86400
    t0 = (day_start + 10 * 3600) * 1000
    day = time.strftime("%Y-%m-%d", time.gmtime(day_start + 8 * 3600))
    assert device.start_recorder().gaps == []
    # 20 good fixes, 6 the platform flags as mocked, 4 good again.
    r = device.record_fixes(
        [fix(t0 + i * 5000, i, mock=20 <= i < 26) for i in range(30)]
    )
    assert (r.recorded, r.skipped_mock) == (30, 6)
    assert [(g.cause, (g.from_ms - t0) // 5000, (g.to_ms - t0) // 5000) for g in r.gaps] == [
        ("mock", 20, 26)
    ]

    # The app records on in another process, one fix a call, and the
    # phone kills it (SIGKILL) while it writes.
    child = subprocess.Popen(
        [sys.executable, "-c", RECORDER, path, str(t0), "30"],
        stdout=subprocess.PIPE,
        env=dict(os.environ),
    )
    acked = []
    for line in child.stdout:
        acked.append(int(line))
        if len(acked) >= 60:
            break
    child.kill()
    child.wait()
    assert acked == list(range(30, 90))

    # The app starts again: the silence since its last fix is a gap
    # "app killed", and the same day's track goes on.
    restarted = device.start_recorder()
    assert [g.cause for g in restarted.gaps] == ["app_killed"]
    last = (restarted.gaps[0].from_ms - t0) // 5000
    # The child may have recorded a few more before the kill landed.
    assert last >= 89, "no fix acknowledged before the kill was lost"
    report = asyncio.run(device.sync(None, None))
    assert report.refused == 0
    assert [g.cause for g in device.gaps()] == ["mock", "app_killed"]

    # The center sees the gaps in the day's explanation and on its map.
    figures = center.call(
        "GET", f"/v1/center/report?period={day}&collector=%E8%B5%B5%E6%95%8F&explain=true"
    )
    gaps = figures[0]["explain"]["track_gaps"]
    assert [g["cause"] for g in gaps] == ["mock", "app_killed"], gaps
    assert gaps[0]["day"] == day and gaps[0]["minutes"] == 0
    city = center.call("GET", f"/v1/center/city-map?day={day}&collector=%E8%B5%B5%E6%95%8F")
    layers = [f["properties"] for f in city["features"] if f["properties"]["layer"] in ("gap", "track")]
    assert sorted(p["cause"] for p in layers if p["layer"] == "gap") == ["app_killed", "mock"]
    track = [p for p in layers if p["layer"] == "track"][0]
    assert track["points"] == 24 + last - 29, "every good fix journalled is on the server, once"
