"""The results store, regression detection on asv's step detection, asv's format and the report, on rows made
here (the browser-made ones are in test_bench_browser.py)."""

import json
import subprocess
import sys

import pytest

from bench import history, store


def row(run, median, spread=0.02, commit="c0ffee", workload="matmul 256³", side="kgen", time=None, **extra):
    return {
        "run": run,
        "time": time or f"2026-12-02T00:{run:0>2}:00+00:00",
        "commit": commit,
        "dirty": False,
        "suite": "kernels",
        "workload": workload,
        "kind": "matmul",
        "backend": "wasm",
        "threads": 1,
        "side": side,
        "device": "wasm-2threads",
        "browser": "156",
        "cores": 2,
        "software": False,
        "median_ms": median,
        "low_ms": median * (1 - spread / 2),
        "high_ms": median * (1 + spread / 2),
        "iqr_ms": median * 0.01,
        "n": 45,
        "gflops": 33.5 / median,
        "versions": {},
        **extra,
    }


def runs(medians, **kw):
    return [row(str(n), m, **kw) for n, m in enumerate(medians)]


def test_runs_of_one_commit_within_their_noise_are_not_a_regression():
    assert history.regressions(runs([1.00, 1.03, 0.98, 1.02, 0.99, 1.04])) == []


def test_a_slower_level_held_by_two_runs_is_a_regression():
    found = history.regressions(runs([1.00, 1.02, 0.99, 2.0, 2.05]))
    assert len(found) == 1
    (r,) = found
    assert r.before_ms == pytest.approx(1.0, rel=0.05) and r.after_ms == pytest.approx(2.0, rel=0.05)
    assert r.after_run == "4" and r.series["workload"] == "matmul 256³" and r.series["side"] == "kgen"
    assert "2.0" in r.describe() and "slower" in r.describe()


def test_one_slow_run_is_not_yet_evidence():
    assert history.regressions(runs([1.00, 1.02, 0.99, 2.0])) == []


def test_a_step_inside_the_rounds_spread_is_not_flagged():
    # the rounds of each run spread by 40%: a 15% step is not above the run-to-run noise
    assert history.regressions(runs([1.00, 1.01, 0.99, 1.15, 1.16, 1.15], spread=0.4)) == []
    assert history.regressions(runs([1.00, 1.01, 0.99, 1.15, 1.16, 1.15], spread=0.02)) != []


def test_series_are_kept_apart():
    rows = runs([1.0, 1.0, 1.0, 1.0]) + runs([1.0, 1.0, 3.0, 3.0], side="ort")
    (r,) = history.regressions(rows)
    assert r.series["side"] == "ort"


def test_a_slower_run_on_another_cpu_is_another_series_not_a_regression(tmp_path):
    slow_cpu = "AuthenticAMD 25 1 1 AMD EPYC"
    rows = runs([1.0, 1.0, 1.0]) + [row(str(n), 2.0, cpu=slow_cpu) for n in range(3, 6)]
    assert history.regressions(rows) == []
    assert len(history.series(rows)) == 2
    history.write_asv(rows, tmp_path / "asv", tmp_path)
    machines = sorted(p.name for p in (tmp_path / "asv" / "results").iterdir() if p.is_dir())
    assert machines == ["wasm-2threads", "wasm-2threads-AuthenticAMD-25-1-1-AMD-EPYC"]
    with_cpu = tmp_path / "asv/results/wasm-2threads-AuthenticAMD-25-1-1-AMD-EPYC/machine.json"
    assert json.loads(with_cpu.read_text())["cpu"] == slow_cpu
    assert history.regressions(rows + [row(str(n), 4.0, cpu=slow_cpu) for n in range(6, 8)]) != []


def test_a_run_names_this_hosts_cpu():
    from kgen.records.store import host_cpu

    assert store.new_run("kernels")["cpu"] == host_cpu() != ""


def test_store_appends_whole_lines_and_pandas_loads_them(tmp_path):
    path = tmp_path / "h.jsonl"
    assert store.rows(path) == [] and store.load(path).empty
    assert store.append(runs([1.0, 2.0]), path) == 2
    store.append([row("9", 3.0)], path)
    assert [r["median_ms"] for r in store.rows(path)] == [1.0, 2.0, 3.0]
    frame = store.load(path)
    assert list(frame.median_ms) == [1.0, 2.0, 3.0] and {"workload", "backend", "threads", "commit"} <= set(frame)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(Exception, match=r"h.jsonl:4: not a results row"):
        store.rows(path)


def test_code_version_names_this_checkout():
    v = store.code_version()
    assert len(v["commit"]) == 40 and isinstance(v["dirty"], bool)


def test_asv_format_round_trips_through_asv(tmp_path):
    from asv.results import iter_results

    rows = runs([1.0, 1.1], commit="a" * 40) + runs([2.0], commit="b" * 40, time="2026-12-02T01:00:00+00:00")
    conf = history.write_asv(rows, tmp_path / "asv", tmp_path)
    assert json.loads(conf.read_text())["results_dir"] == "results"
    results = list(iter_results(str(tmp_path / "asv" / "results" / "wasm-2threads")))
    by_commit = {r.commit_hash: r for r in results}
    assert set(by_commit) == {"a" * 40, "b" * 40}
    (name,) = by_commit["b" * 40].get_result_keys(json.loads((tmp_path / "asv/results/benchmarks.json").read_text()))
    assert name == "kernels.wasm_1t.kgen.matmul_256"
    assert by_commit["b" * 40].get_result_value(name, []) == [pytest.approx(0.002)]
    assert by_commit["a" * 40].get_result_value(name, []) == [pytest.approx(0.0011)]  # the commit's last run


def kgen(*args):
    return subprocess.run([sys.executable, "-m", "kgen.cli", *args], capture_output=True, text=True, timeout=300)


def test_report_of_an_empty_store_is_a_one_line_error(tmp_path):
    done = kgen("report", "--results", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "results store is empty" in done.stderr and not (tmp_path / "r").exists()


def test_bench_refuses_too_few_samples_a_short_warm_up_and_unknown_backends():
    done = kgen("bench", "--samples", "3")
    assert done.returncode == 2 and "at least 5 samples" in done.stderr
    done = kgen("bench", "--warmup-ms", "10")
    assert done.returncode == 2 and "--warmup-ms 10: at least 100 ms" in done.stderr
    done = kgen("bench", "--backend", "wasm,cuda", "--peers", "none")
    assert done.returncode != 0 and "unknown backend 'cuda'" in done.stderr
    done = kgen("bench", "--threads", "two", "--peers", "none")
    assert done.returncode != 0 and "--threads 'two'" in done.stderr


def test_unwritable_outputs_and_missing_records_are_one_line_errors_before_any_run(tmp_path):
    done = kgen("report", "--results", str(tmp_path / "none.jsonl"), "--out", "/proc/kgen/report")
    assert done.returncode == 2 and "cannot write the report there" in done.stderr and "Traceback" not in done.stderr
    done = kgen("bench", "--peers", "none", "--out", "/proc/kgen/history.jsonl")
    assert done.returncode == 2 and "cannot write the results store there" in done.stderr
    done = kgen("bench", "--peers", "none", "--records", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2 and "no such records file" in done.stderr


def test_peak_share_csv_quotes_workload_names_with_commas(tmp_path):
    import pandas as pd

    from bench.report import peak_share

    kernel = row(1, 1.0, workload="conv 3→64, 224², k7 s2", gflops=30.0)
    peak = row(2, 1.0, workload="peak f32x4 madd", side="peak", gflops=60.0)
    assert "Share of the measured peak" in peak_share([kernel], [peak], tmp_path)
    table = pd.read_csv(tmp_path / "peak_share.csv")
    assert table.to_dict("records") == [
        {"backend": "wasm 1t", "workload": "conv 3→64, 224², k7 s2", "share_of_peak": 0.5}
    ]


def test_a_share_of_the_peak_measured_beside_the_kernel_is_preferred_to_a_separate_peak_run(tmp_path):
    import pandas as pd

    from bench.report import peak_share

    beside = row(1, 1.0, workload="matmul 256³", gflops=30.0, peak_share=0.8)
    alone = row(1, 1.0, workload="matmul 512³", gflops=30.0)
    peak = row(2, 1.0, workload="peak f32x4 madd", side="peak", gflops=60.0)
    assert "geomean share" in peak_share([beside, alone], [peak], tmp_path)
    shares = pd.read_csv(tmp_path / "peak_share.csv").set_index("workload").share_of_peak.to_dict()
    assert shares == {"matmul 256³": 0.8, "matmul 512³": 0.5}


def test_the_share_of_the_peak_is_taken_round_by_round():
    """A round where the VM runs slow slows the kernel and the peak loop beside it alike: the share per round is
    the same, where the kernel's median over the peak's median would mix a slow kernel round with a fast peak."""
    from bench.kernel_suite import Timing, peak_fields

    def measured(ms, peak):
        return {"times": {"kgen": Timing(ms, 0.0, 5)}, "peak": peak}

    rounds = [measured(1.0, 60.0), measured(1.5, 40.0), measured(1.25, 48.0)]  # 0.03 GFLOP: 30, 20, 24 GFLOP/s
    got = peak_fields(rounds, 0.03)
    assert got["peak_gflops"] == 48.0
    assert got["peak_share"] == pytest.approx(0.5) and got["peak_share_low"] == pytest.approx(0.5)
    assert got["peak_share_high"] == pytest.approx(0.5)
    assert peak_fields([*rounds, measured(1.0, None)], 0.03) == {}  # a round without the probe: no share


def test_a_record_made_before_a_knob_existed_is_chosen_with_that_knob_at_its_default(tmp_path):
    from bench.kernel_suite import Variant, choose_configs
    from bench.suite import SUITE
    from kgen.build import space
    from kgen.records.store import Record

    name = "conv 3→64, 224², k7 s2"
    workload = SUITE[name][0]
    old = {"k_unroll": 1, "merge_hw": 0, "pack": 0, "pad": 1, "threads": 1, "tile_a": 4, "tile_axis": "m"}
    old |= {"tile_b": 8, "tile_order": "b", "unroll": 1, "vector": "f32x4_fma"}  # no subsample: it came later
    assert "subsample" in space(workload, "wasm").names
    path = tmp_path / "records.jsonl"
    fields = {"workload": json.loads(workload.to_json()), "key": workload.key, "backend": "wasm"}
    fields |= {"device_class": "wasm-2threads", "config": old, "median_ms": 5.0, "iqr_ms": 0.1, "samples": 7}
    path.write_text(Record(**fields, gflops=40.0, digest="d", source="test").to_line() + "\n")
    fingerprint = {"hardwareConcurrency": 2}
    chosen = choose_configs([name], Variant("wasm", 1), fingerprint, {"relaxed_simd": 1, "max_threads": 2}, [path])
    assert chosen[name].source == "record"
    assert chosen[name].config == {**old, "subsample": 0, "align": 1, "split_fast": 0}  # align: on by default


def test_benchmarks_markdown_lists_every_run_newest_first_with_its_ratios():
    from bench.report import benchmarks_markdown

    rows = [
        row("old", 1.0, commit="a" * 40),
        row("old", 2.0, commit="a" * 40, side="ort"),
        row("new", 1.0, commit="b" * 40, time="2026-12-05T00:00:00+00:00"),
        row("new", 1.5, commit="b" * 40, time="2026-12-05T00:00:00+00:00", side="tfjs"),
    ]
    text = benchmarks_markdown(rows)
    assert text.index("run `new`") < text.index("run `old`")
    assert "| matmul 256³ | wasm 1t | 1.00 | 1.50 | 1.50x |" in text
    assert "| matmul 256³ | wasm 1t | 1.00 | 2.00 | 2.00x |" in text


def test_benchmarks_markdown_sums_a_run_up_in_the_figures_a_reader_cites():
    from bench.report import benchmarks_markdown

    rows = [
        row("k", 1.0, peak_share=0.8),
        row("k", 2.0, side="ort"),
        row("k", 4.0, workload="matmul 512³", peak_share=0.5),
        row("k", 2.0, workload="matmul 512³", side="ort"),
    ]
    memory = {"wasmBytes": 2**20, "gpuBufferPeakBytes": 0, "texturePeakBytes": 0}
    rows += [
        row("m", 10.0, workload="minilm", kind="model", cold_ms=300.0, peak_memory=memory),
        row(
            "m",
            15.0,
            workload="minilm",
            kind="model",
            side="ort",
            cold_ms=600.0,
            peak_memory=memory | {"wasmBytes": 4 * 2**20},
        ),
    ]
    text = benchmarks_markdown(rows)
    assert "- wasm 1t: 1.00x the faster peer's speed, geomean over 2 workloads (0.50x to 2.00x); 63% of the" in text
    refused = row("m", 1.0, workload="minilm", kind="model", side="ort", backend="webgl", refused="no Erf")
    text = benchmarks_markdown([*rows, refused | {"median_ms": None, "low_ms": None, "high_ms": None, "gflops": None}])
    assert (
        "- minilm on wasm 1t: cold start 300 ms against ort's 600 (0.50x); peak memory 1 MiB against 4 (0.25x)" in text
    )
    assert "- minilm on webgl: ort cannot run it (no Erf)" in text  # a peer that cannot run it, and why
