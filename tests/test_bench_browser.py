"""`kgen bench` and `kgen report` end to end in headless Chromium: runs of one config are not flagged as a
regression, the same workload made slower on purpose (a slow config in the records) is, and the report renders
its plots.

The report test checks the report of these runs; with KGEN_REPORT=DIR (`make report`) it checks the report
already built in DIR instead and saves its screenshot there (results/report/report.png)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import history, store
from bench.suite import SUITE
from kgen.records.store import Record, RecordStore

pytestmark = pytest.mark.browser

WORKLOAD = "matmul 256³"
FAST = {"tile_b": 8, "tile_axis": "i0", "tile_a": 6, "tile_order": "b", "unroll": 0, "k_unroll": 4, "pack": 0}
FAST |= {"vector": "f32x4", "threads": 1, "split_fast": 0}
SLOW = {**FAST, "tile_a": 1, "tile_b": 4, "k_unroll": 1, "vector": "scalar"}  # scalar, 1x4 tiles: many times slower


def bench(records: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kgen.cli", "bench", "--backend", "wasm", "--threads", "1", "--peers", "none"]
    cmd += ["--only", WORKLOAD, "--samples", "5", "--warmup-ms", "200", "--records", str(records), "--out", str(out)]
    cmd += ["--quiet", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1), done.stderr
    return done


def record(fingerprint, config) -> Record:
    workload = SUITE[WORKLOAD][0]
    return Record.measured(workload, "wasm", fingerprint, config, 1.0, 0.0, 5, "", "test")


@pytest.fixture(scope="module")
def history_file(browser, tmp_path_factory):
    """Two runs on the fast config, then two on the slow one (the fewest a regression needs on each side):
    ({'fast': [...], 'slow': [...]} runs, the store)."""
    folder = tmp_path_factory.mktemp("bench")
    fast, slow, out = folder / "fast.jsonl", folder / "slow.jsonl", folder / "history.jsonl"
    RecordStore(fast).add([record(browser.fingerprint(), FAST)])
    RecordStore(slow).add([record(browser.fingerprint(), SLOW)])
    done = {"fast": [bench(fast, out) for _ in range(2)]}
    done["slow"] = [bench(slow, out), bench(slow, out, "--fail-on-regression")]
    return done, out


def test_runs_of_one_config_are_not_a_regression_and_a_slowed_one_is(history_file):
    done, out = history_file
    rows = store.rows(out)
    kgen = [r for r in rows if r["side"] == "kgen"]
    assert len(kgen) == 4 and len({r["run"] for r in kgen}) == 4
    assert all(r["config"] == FAST for r in kgen[:2]) and all(r["config"] == SLOW for r in kgen[2:])
    assert all(r["config_source"] == "record" and r["n"] >= 15 and r["busy"] < 1 for r in kgen)
    assert all(r["warmup_ms"] == 200 for r in kgen)
    assert all(len(r["commit"]) == 40 and r["device"].startswith("wasm-") and not r["software"] for r in kgen)
    # the relaxed-madd loop timed beside each kernel: the vectorized tile a fair share of it, the scalar one far less
    assert all(r["peak_gflops"] > 1 and r["peak_share_low"] <= r["peak_share"] <= r["peak_share_high"] for r in kgen)
    assert all(0.2 < r["peak_share"] < 1.2 for r in kgen[:2]) and all(r["peak_share"] < 0.15 for r in kgen[2:])
    fast_runs = [r["run"] for r in kgen[:2]]
    assert history.regressions([r for r in rows if r["run"] in fast_runs]) == []
    assert all("regression" not in d.stdout and d.returncode == 0 for d in done["fast"])
    assert done["slow"][0].returncode == 0 and "regression" not in done["slow"][0].stdout  # one slow run: not yet
    (found,) = history.regressions(rows)
    assert found.series["workload"] == WORKLOAD and found.after_ms > 2 * found.before_ms
    assert done["slow"][1].returncode == 1 and f"regression: {WORKLOAD} (kgen, wasm 1t)" in done["slow"][1].stdout


RENDERED = """() => Array.from(document.querySelectorAll('figure svg')).map((svg) => {
  const marks = svg.querySelectorAll('path, use, line, polyline');
  const box = svg.getBoundingClientRect();
  return {marks: marks.length, width: box.width, height: box.height};
})"""


def test_report_renders_its_plots_in_chromium(request, browser, tmp_path):
    built = os.environ.get("KGEN_REPORT")
    if built:
        report = Path(built)
    else:
        _, out = request.getfixturevalue("history_file")
        report = tmp_path / "report"
        cmd = [sys.executable, "-m", "kgen.cli", "report", "--results", str(out), "--out", str(report), "--latex"]
        cmd += ["--markdown", str(report / "BENCHMARKS.md")]  # not the checkout's results/BENCHMARKS.md
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert (report / "kernels.csv").read_text().startswith("workload,backend,kgen_ms")
        assert "\\begin{tabular}" in (report / "kernels.tex").read_text()
        assert (report / "asv" / "asv.conf.json").exists() and not (report / "asv" / "html").exists()
    page_html = (report / "index.html").read_text()
    remote = r"""\s*=\s*["']?(https?:)?//"""
    fetched = re.search(rf"""\bsrc{remote}|<link[^>]*\bhref{remote}|url\(\s*["']?(https?:)?//|@import""", page_html)
    assert fetched is None and "<script" not in page_html  # offline: nothing fetched from outside
    browser.server.mount("/report/", report)
    tab = browser.page.context.new_page()
    try:
        tab.set_viewport_size({"width": 1280, "height": 900})
        tab.goto(browser.server.url("/report/index.html"))
        figures = tab.evaluate(RENDERED)
        assert len(figures) >= 1
        assert all(f["marks"] > 10 and f["width"] > 200 and f["height"] > 100 for f in figures), figures
        assert tab.locator("h2", has_text="Regressions").count() == 1
        if not built:
            assert WORKLOAD in tab.locator("h2:has-text('Regressions') + p + ul").inner_text()
        tab.screenshot(path=report / "report.png", full_page=True)
    finally:
        tab.close()
    assert (report / "report.png").stat().st_size > 10_000
    json.dumps(figures)
