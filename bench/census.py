"""The census of wrong kernels: `kgen check OP --backend B --configs N` for every op of the registry on every
backend, in headless Chromium, each on the op's representative workload with the template default plus N sampled
configs, every output against numpy. A config that does not pass is listed with its reason.

    .venv/bin/python -m bench.census [--configs 12] [--seed 0] [--op OP ...] [--out results/census.json]

It is the long form of the property tests in `make test` (tests/test_configs_browser.py and the native ones draw
shapes, attributes and every knob too, with fewer examples). Exits 1 if any config is wrong, hangs or fails."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from kgen.atomic import write_text_atomic
from kgen.ops.registry import all_ops

BACKENDS = ("webgpu", "webgl", "wasm", "js")
KGEN = str(Path(sys.executable).with_name("kgen"))


def check(op: str, backend: str, configs: int, seed: int) -> dict:
    """One `kgen check --json` run; a run that fails before it reports (a crash, a refused workload) is one row."""
    cmd = [KGEN, "check", op, "--backend", backend, "--configs", str(configs), "--seed", str(seed), "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"workload": op, "backend": backend, "results": [{"config": None, "status": "error", "reason": reason}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.census", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=12, help="sampled configs per op and backend (plus the default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="only these backends (repeatable)")
    parser.add_argument(
        "--op", action="append", help="only these ops (repeatable); the other runs of --out are kept, not re-checked"
    )
    parser.add_argument("--out", type=Path, default=Path("results/census.json"))
    args = parser.parse_args(argv)
    ops = sorted(o.name for o in all_ops())
    unknown = [o for o in args.op or () if o not in ops]
    if unknown:
        parser.error(f"unknown op {unknown[0]} (see `kgen ops`)")
    runs = []
    started = time.monotonic()
    for backend in args.backend or BACKENDS:
        for op in args.op or ops:
            run = {**check(op, backend, args.configs, args.seed), "op": op}
            runs.append(run)
            wrong = [r for r in run["results"] if r["status"] != "ok"]
            print(
                f"{backend:<7} {op:<18} {len(run['results']) - len(wrong):>3}/{len(run['results'])} ok"
                + (f"   {wrong[0]['status']}: {wrong[0]['reason'][:80]}" if wrong else ""),
                flush=True,
            )
    if args.op and args.out.exists():  # the runs of the other ops, and of these ops on other backends, stay
        measured = {(r["op"], r["backend"]) for r in runs}
        old = json.loads(args.out.read_text())["runs"]
        runs = [r for r in old if (r.get("op", r["workload"].split("/")[0]), r["backend"]) not in measured] + runs
    bad = [
        {"op": r.get("op", r["workload"].split("/")[0]), "backend": r["backend"], **x}
        for r in runs
        for x in r["results"]
        if x["status"] != "ok"
    ]
    checked = sum(len(r["results"]) for r in runs)
    summary = {
        "configs": args.configs,
        "seed": args.seed,
        "checked": checked,
        "not_ok": bad,
        "seconds": round(time.monotonic() - started),
        "runs": runs,
    }
    write_text_atomic(args.out, json.dumps(summary, indent=1) + "\n")
    print(f"{checked - len(bad)} of {checked} kernels match numpy; {len(bad)} do not  -> {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
