"""The fair benchmark protocol's rules (bench/protocol.py): spreads over rounds, when rounds disagree, the idle
wait."""

import json
import time

from bench import protocol


def test_spread_is_the_median_and_the_extreme_rounds():
    s = protocol.Spread.of([3.0, 1.0, 2.0, 10.0])
    assert (s.median, s.low, s.high) == (2.5, 1.0, 10.0)
    assert s.relative == 9.0 / 2.5


def test_rounds_that_agree_within_their_spread_are_kept_and_others_remeasured():
    steady = [protocol.Spread.of([10.0, 10.2, 10.1]), protocol.Spread.of([20.0, 20.3, 20.1])]
    assert not protocol.disagrees([2.0, 1.99, 2.01], steady)
    assert protocol.disagrees([2.0, 1.6, 2.0], steady)  # one round 20% off, far beyond the sides' 2% and 1.5%
    noisy = [protocol.Spread.of([10.0, 13.0, 11.0]), protocol.Spread.of([20.0, 20.3, 20.1])]
    assert not protocol.disagrees([2.0, 1.6, 2.0], noisy)  # the sides moved as much: no evidence to re-measure


def test_wait_idle_returns_the_busy_share_it_saw():
    started = time.monotonic()
    busy = protocol.wait_idle(threshold=1.01, settle_s=0.1)  # any load counts as idle: one window
    assert 0.0 <= busy <= 1.0
    assert time.monotonic() - started < 1.0
    assert protocol.wait_idle(threshold=-1, settle_s=0.1, max_s=0.3) >= 0.0  # never idle: gives up after max_s


def test_the_peak_loop_computes_what_it_counts():
    """bench.peak's register-only loop: n rounds of 12 independent f32x4 updates a * 0.999 + 0.001, in wasmtime."""
    import numpy as np
    import wasmtime

    from bench.peak import ACCUMULATORS, wasm_loop

    store = wasmtime.Store()
    run = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm_loop("mul_add")), []).exports(store)["run"]
    a = np.float32(0)
    for _ in range(5):
        a = np.float32(np.float32(a * np.float32(0.999)) + np.float32(0.001))
    total = a
    for _ in range(ACCUMULATORS - 1):  # the lanes summed one accumulator after the other, in float32
        total = np.float32(total + a)
    assert np.float32(run(store, 5)) == total


def test_a_settling_harness_waits_for_an_idle_machine_once_per_fresh_page(monkeypatch):
    """The tuner's harness (``settle``) lets a just-launched browser finish starting up before it times the first
    candidate, and again after a restart; not before every candidate, and a harness without it never waits."""
    import numpy as np

    from kgen.browser import measure

    waits = []
    monkeypatch.setattr(measure, "wait_idle", lambda: waits.append(1) or 0.0)

    class Session:
        page, restarts = object(), 0

        def set_inputs(self, key, data):
            pass

    session = Session()
    harness = measure.Harness(session, [np.zeros(4)], np.zeros(4), "wasm", settle=True)
    harness._ensure_page()
    harness._ensure_page()
    assert len(waits) == 1
    session.restarts = 1  # a new browser
    harness._ensure_page()
    assert len(waits) == 2
    measure.Harness(session, [np.zeros(4)], np.zeros(4), "wasm")._ensure_page()
    assert len(waits) == 2


def test_measured_rows_replace_their_own_in_place_and_keep_the_rest_with_their_stamp(tmp_path):
    from bench.store import replace_rows

    path = tmp_path / "attention.json"
    old = {"date": "2026-12-01", "cpu": "Xeon", "commit": "a", "rounds": 2, "rows": []}
    old["rows"] = [{"model": "minilm", "backend": b, "attention_gain": 1.0} for b in ("webgl", "wasm")]
    path.write_text(json.dumps(old))
    new = [
        {"model": "deit", "backend": "js", "date": "2026-12-06", "cpu": "EPYC", "attention_gain": 1.2},
        {"model": "minilm", "backend": "webgl", "date": "2026-12-06", "cpu": "EPYC", "attention_gain": 4.7},
    ]
    rows = replace_rows(path, new, key=lambda r: (r["model"], r["backend"]))
    assert [(r["model"], r["backend"], r["cpu"], r["attention_gain"]) for r in rows] == [
        ("minilm", "webgl", "EPYC", 4.7),
        ("minilm", "wasm", "Xeon", 1.0),
        ("deit", "js", "EPYC", 1.2),
    ]
    assert rows[1]["date"] == "2026-12-01" and replace_rows(tmp_path / "none.json", new, key=str) == new
