"""The fleet's overhead: candidates a minute of one fleet worker against a local ``kgen tune`` of the same
workload, on the same machine, one after the other, in rounds.

    .venv/bin/python -m bench.fleet_overhead [--op matmul --shape 256x256,256x256] [--backend wasm] \\
        [--trials 24] [--rounds 2] [--out results/fleet_overhead.json]

Both write their trials into Optuna storage of their own (a fresh SQLite file each), and both rates come from it
the same way: candidates measured (trials complete or failed, not proposals pruned before a build) over the time
from the first trial's start to the last one's end, so neither side's browser start counts. The fleet's worker is
one headless Chromium on the worker page (``kgen fleet serve`` on 127.0.0.1): its candidates are built by the
server, sent over HTTP, checked in the page and posted back. Run it on a quiet machine; the issue's target is at
least 0.8x the local rate.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna

from bench.store import code_version
from kgen.atomic import write_text_atomic
from kgen.records.store import host_cpu


def rate(storage: str) -> tuple[int, float]:
    """(candidates measured, per minute) over every study in ``storage``: trials that ran (complete or failed; not
    the proposals pruned before a build), from the first trial's start to the last one's end."""
    trials = [
        t
        for summary in optuna.get_all_study_summaries(storage)
        for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials
        if t.datetime_start is not None and t.datetime_complete is not None
    ]
    ran = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)]
    if len(ran) < 2:
        raise SystemExit(f"{storage}: {len(ran)} candidates measured, too few for a rate")
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return len(ran), len(ran) / (span.total_seconds() / 60.0)


def local(args: argparse.Namespace, folder: Path) -> tuple[int, float]:
    storage = f"sqlite:///{folder}/local.db"
    command = [sys.executable, "-m", "kgen.cli", "tune", args.op, "--shape", args.shape, "--backend", args.backend]
    command += ["--trials", str(args.trials), "--storage", storage, "--records", str(folder / "local.jsonl")]
    subprocess.run([*command, "--json"], check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return rate(storage)


def fleet(args: argparse.Namespace, folder: Path) -> tuple[int, float]:
    from playwright.sync_api import sync_playwright

    from kgen.browser.session import _Chromium

    storage = f"sqlite:///{folder}/fleet.db"
    command = [sys.executable, "-m", "kgen.cli", "fleet", "serve", args.op, "--shape", args.shape, "--port", "0"]
    command += ["--backend", args.backend, "--trials", str(args.trials), "--classes", "1", "--json", "--no-qr"]
    command += ["--storage", storage, "--records", str(folder / "fleet.jsonl")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chromium = _Chromium()
    try:
        assert server.stderr is not None
        url = re.search(r"open (http://\S+/fleet/)", server.stderr.readline())
        if url is None:
            raise SystemExit("kgen fleet serve printed no URL")
        with sync_playwright() as pw:
            page = pw.chromium.connect_over_cdp(chromium.ws_url).contexts[0].new_page()
            page.goto(url[1])
            page.wait_for_function("() => window.kgenFleetDone || window.kgenFleetError", timeout=1_800_000)
            error = page.evaluate("() => window.kgenFleetError || ''")
            if error:
                raise SystemExit(f"the worker page failed: {error}")
        server.communicate(timeout=120)
    finally:
        chromium.kill()
        server.kill()
    return rate(storage)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--op", default="matmul")
    parser.add_argument("--shape", default="256x256,256x256")
    parser.add_argument("--backend", default="wasm")
    parser.add_argument("--trials", type=int, default=24, help="trials each side measures a round (default 24)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, sides one after the other (default 2)")
    parser.add_argument("--out", type=Path, default=Path("results/fleet_overhead.json"))
    args = parser.parse_args(argv)
    rounds: list[dict[str, Any]] = []
    for k in range(args.rounds):
        row = {}
        for side, measure in (("local", local), ("fleet", fleet)):
            with tempfile.TemporaryDirectory(prefix="kgen-fleet-overhead-") as tmp:
                t0 = time.perf_counter()
                trials, per_minute = measure(args, Path(tmp))
                row[side] = {"trials": trials, "per_minute": per_minute, "wall_s": time.perf_counter() - t0}
            print(f"round {k + 1} {side}: {trials} trials, {per_minute:.1f} a minute", flush=True)
        row["ratio"] = row["fleet"]["per_minute"] / row["local"]["per_minute"]
        rounds.append(row)
    ratio = statistics.median(r["ratio"] for r in rounds)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": host_cpu(),
        **code_version(),
        "workload": f"{args.op} {args.shape}",
        "backend": args.backend,
        "trials": args.trials,
        "rounds": rounds,
        "ratio_median": ratio,
    }
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"fleet / local candidates a minute: {ratio:.2f}x (median of {args.rounds} rounds); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
