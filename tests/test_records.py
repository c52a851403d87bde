"""Tuning records: best per key, lookup with fallback (exact, nearest shape, default), export/import."""

import json
import subprocess
import sys

from kgen.ops import Workload
from kgen.records.store import Record, RecordStore, device_class


def record(shapes, median_ms, config, attrs=None, device="google-swiftshader"):
    w = Workload.create("conv2d", shapes, attrs or {"pads": (1, 1, 1, 1)})
    return Record(
        workload=json.loads(w.to_json()),
        key=w.key,
        backend="webgpu",
        device_class=device,
        config=config,
        median_ms=median_ms,
        iqr_ms=0.1,
        samples=7,
        gflops=1.0,
        digest="d",
        source="test",
    )


SMALL = [(1, 16, 28, 28), (16, 16, 3, 3)]
LARGE = [(1, 64, 56, 56), (64, 64, 3, 3)]


def test_best_record_per_key_wins(tmp_path):
    store = RecordStore(tmp_path / "r.jsonl")
    store.add([record(SMALL, 5.0, {"tile_b": 1}), record(SMALL, 3.0, {"tile_b": 4}), record(LARGE, 9.0, {})])
    best = {r.key: r for r in store.best()}
    assert len(best) == 2
    assert best[Workload.create("conv2d", SMALL, {"pads": (1, 1, 1, 1)}).key].config == {"tile_b": 4}


def test_lookup_falls_back_from_exact_to_nearest_to_default(tmp_path):
    store = RecordStore(tmp_path / "r.jsonl")
    store.add([record(SMALL, 3.0, {"tile_b": 4}), record(LARGE, 9.0, {"tile_b": 8})])
    attrs = {"pads": (1, 1, 1, 1)}
    exact = store.lookup(Workload.create("conv2d", SMALL, attrs), "webgpu", "google-swiftshader")
    assert (exact.how, exact.config) == ("exact", {"tile_b": 4})
    near = store.lookup(
        Workload.create("conv2d", [(1, 48, 56, 56), (48, 48, 3, 3)], attrs), "webgpu", "google-swiftshader"
    )
    assert (near.how, near.config) == ("nearest", {"tile_b": 8})
    assert "nearest tuned shape" in near.describe()
    other_device = store.lookup(Workload.create("conv2d", SMALL, attrs), "webgpu", "nvidia-ampere")
    assert (other_device.how, other_device.config) == ("default", None)
    other_attrs = store.lookup(Workload.create("conv2d", SMALL, {"strides": (2, 2)}), "webgpu", "google-swiftshader")
    assert (other_attrs.how, other_attrs.config) == ("nearest", {"tile_b": 4})
    # a record whose config cannot run on this workload is skipped
    skipped = store.lookup(
        Workload.create("conv2d", SMALL, attrs), "webgpu", "google-swiftshader", valid=lambda c: c["tile_b"] != 4
    )
    assert (skipped.how, skipped.config) == ("nearest", {"tile_b": 8})


def test_records_of_the_same_attributes_come_first_and_a_depthwise_convs_group_is_its_width(tmp_path):
    store = RecordStore(tmp_path / "r.jsonl")
    dense = record([(1, 32, 28, 28), (32, 32, 5, 5)], 1.0, {"tile_b": 1}, {"pads": (2, 2, 2, 2)})
    same_pads = record([(1, 8, 112, 112), (8, 8, 3, 3)], 1.0, {"tile_b": 2})
    depthwise = record([(1, 16, 56, 56), (16, 1, 3, 3)], 1.0, {"tile_b": 3}, {"pads": (1, 1, 1, 1), "group": 16})
    store.add([dense, same_pads, depthwise])
    # fewer differing attributes beat a closer shape: the 3x3 conv of the same pads, not the 5x5 of other pads
    near = store.lookup(Workload.create("conv2d", SMALL, {"pads": (1, 1, 1, 1)}), "webgpu", "google-swiftshader")
    assert near.config == {"tile_b": 2}
    # a 5x5 depthwise conv of 120 channels: the 3x3 depthwise conv's record (only its pads differ), not the
    # dense 5x5 one (whose group differs)
    wide = Workload.create("conv2d", [(1, 120, 28, 28), (120, 1, 5, 5)], {"pads": (2, 2, 2, 2), "group": 120})
    assert wide.relative_attrs["group"] == "channels"
    assert store.lookup(wide, "webgpu", "google-swiftshader").config == {"tile_b": 3}


def test_device_class_names_the_adapter_or_the_threads_a_page_may_run():
    fp = {"webgpu": {"vendor": "Google", "architecture": "SwiftShader"}, "hardwareConcurrency": 8}
    assert device_class(fp, "webgpu") == "google-swiftshader"
    isolated, plain = ({**fp, "wasm": {"maxThreads": n}} for n in (8, 1))  # without cross-origin isolation: 1
    assert [device_class(f, "wasm") for f in (isolated, plain)] == ["wasm-8threads", "wasm-1threads"]
    assert device_class(plain, "js") == "js-8threads"


def test_a_line_that_is_not_a_record_is_skipped_with_a_warning_naming_it(tmp_path, capsys):
    """Issue 17: one bad line (a writer killed mid-line) made every record unreadable; it is skipped, named."""
    path = tmp_path / "r.jsonl"
    path.write_text('{"not": "a record"}\n')
    assert RecordStore(path).all() == []
    assert f"kgen: warning: skipped {path}:1: not a kgen record" in capsys.readouterr().err
    bad = json.loads(record(SMALL, 3.0, {"tile_b": 4}).to_line())
    bad["workload"]["shapes"][1][1] += 1  # a weight with more input channels than the input: no such conv
    path.write_text(record(SMALL, 3.0, {"tile_b": 4}).to_line() + "\n" + json.dumps(bad) + "\n")
    assert len(RecordStore(path).all()) == 1
    err = capsys.readouterr().err
    assert f"kgen: warning: skipped {path}:2: not a kgen record" in err and "input channels" in err, err


def test_export_then_import_round_trips(tmp_path):
    src = RecordStore(tmp_path / "a.jsonl")
    src.add([record(SMALL, 3.0, {"tile_b": 4}), record(SMALL, 5.0, {"tile_b": 1})])
    cli = [sys.executable, "-m", "kgen.cli", "records"]
    out = subprocess.run(
        [*cli, "export", str(tmp_path / "best.jsonl"), "--records", str(src.path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "best.jsonl").read_text().splitlines()) == 1  # only the best per key
    out = subprocess.run(
        [*cli, "import", str(tmp_path / "best.jsonl"), "--records", str(tmp_path / "b.jsonl")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert RecordStore(tmp_path / "b.jsonl").best()[0].config == {"tile_b": 4}
    csv = subprocess.run([*cli, "--csv", "--records", str(src.path)], capture_output=True, text=True)
    assert csv.stdout.splitlines()[0].startswith("key,backend,device_class,median_ms")
    missing = subprocess.run([*cli, "import", str(tmp_path / "nope.jsonl")], capture_output=True, text=True)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_rewriting_the_records_file_keeps_its_mode(tmp_path):
    """Issue 17: the file was renamed over from a 0600 temporary file."""
    import os
    import stat

    from kgen.atomic import write_text_atomic

    path = tmp_path / "records.jsonl"
    path.write_text("")
    os.chmod(path, 0o644)
    write_text_atomic(path, "x\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    write_text_atomic(path, "y\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    fresh = write_text_atomic(tmp_path / "new.jsonl", "z\n")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_on_wasm_a_record_of_this_hosts_cpu_wins_over_a_faster_one_of_another(tmp_path, monkeypatch):
    """The device class (the cores a page may use) does not tell CPUs apart: a record measured on this machine's
    CPU wins over another machine's faster one, and both are kept; a workload tuned elsewhere only still gets the
    fastest."""
    import dataclasses

    from kgen.records import store as store_module

    monkeypatch.setattr(store_module, "host_cpu", lambda: "AuthenticAMD 25 1 1 AMD EPYC")
    here = {"cpu": "AuthenticAMD 25 1 1 AMD EPYC"}
    elsewhere = {"cpu": "AuthenticAMD 25 17 1 AMD EPYC"}

    def wasm(shapes, ms, config, fingerprint):
        return dataclasses.replace(
            record(shapes, ms, config, device="wasm-2threads"), backend="wasm", fingerprint=fingerprint
        )

    store = RecordStore(tmp_path / "r.jsonl")
    same_config = {"tile_b": 8}
    store.add(
        [
            wasm(SMALL, 2.0, same_config, elsewhere),
            wasm(SMALL, 3.0, same_config, here),
            wasm(SMALL, 2.5, {"tile_b": 4}, elsewhere),
            wasm(LARGE, 9.0, {"tile_b": 4}, elsewhere),
            wasm(LARGE, 8.0, {"tile_b": 16}, {}),
        ]
    )
    assert len(store.all()) == 5  # one config measured on two CPUs: both kept
    best = {r.key: r for r in store.best()}
    small, large = (Workload.create("conv2d", s, {"pads": (1, 1, 1, 1)}).key for s in (SMALL, LARGE))
    assert (best[small].median_ms, best[small].fingerprint) == (3.0, here)
    assert best[large].config == {"tile_b": 16}
    measured = Record.measured(Workload.create("conv2d", SMALL, {}), "wasm", {}, {}, 1.0, 0.0, 5, "d", "test")
    assert measured.fingerprint == here
