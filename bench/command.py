"""`kgen bench`: the benchmark suites as one command, every figure appended to the results store.

- ``kernels``: the peer suite (bench.suite), kgen's kernels from the records against ONNX Runtime Web and TF.js,
  live, interleaved, on the fair protocol (bench.kernel_suite).
- ``peak``: this machine's arithmetic ceilings in the browser (bench.peak), the roofline point of reference.
- ``models``: whole models end to end, kgen's runtime against ONNX Runtime Web (bench.models); ``resnet50`` is
  that suite on the seeded ResNet-50 alone; ``transformers`` on a MiniLM-L6-like encoder, a DeiT-small-like ViT
  and a MobileNet-v3-large-like net.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import history, store
from kgen.errors import KgenError

BACKENDS = ("wasm", "webgl", "webgpu")
PEERS = ("ort", "tfjs")
#: the shipped records: the tuner's default file, and the benches' tuned kernels of the suite per backend
DEFAULT_RECORDS = (
    "results/records.jsonl",
    "results/bench/wasm_records.jsonl",
    "results/bench/webgl_records.jsonl",
    "results/bench/webgpu_records.jsonl",
)


class Progress:
    """A progress bar on stderr (tqdm) over a known number of steps, with the current step's label."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, file=sys.stderr, disable=quiet, dynamic_ncols=True, leave=True)

    def __call__(self, label: str) -> None:
        self.bar.set_description_str(label)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _parse_list(value: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        raise SystemExit(f"kgen bench: unknown {what} '{','.join(unknown) or value}' ({what}s: {', '.join(allowed)})")
    return items


def run_kernels(args, run: dict[str, Any]) -> list[dict]:
    from bench import kernel_suite, protocol
    from bench.suite import SUITE
    from kgen.browser.session import BrowserSession

    names = [n for n in SUITE if not args.only or args.only in n]
    if not names:
        raise SystemExit(f"kgen bench: no workload of the suite matches --only '{args.only}'")
    variants = kernel_suite.variants(args.backends, protocol.thread_counts(args.threads, "kgen bench"))
    for v in variants:
        kernel_suite.check_installed(v, args.peer_list)
    with BrowserSession(job_timeout_s=60) as session:
        fingerprint, limits = session.fingerprint(), session.limits()
    rounds = max(args.rounds, protocol.ROUNDS)
    progress = Progress(len(variants) * rounds, args.quiet)
    records = [Path(r) for r in args.records]
    chosen = {v: kernel_suite.choose_configs(names, v, fingerprint, limits, records) for v in variants}
    try:
        got, versions = kernel_suite.compare(
            chosen, names, args.peer_list, rounds, args.samples, progress=progress, warmup_ms=args.warmup_ms
        )
    finally:
        progress.close()
    rows = []
    for r in got:
        compared = kernel_suite.Variant(r["backend"], r["threads"]).peers(args.peer_list)  # TF.js: not on 2 threads
        context = {**run, **store.device_fields(fingerprint, r["backend"])}
        rows.append({**context, "versions": {p: v for p, v in versions.items() if p in compared}, **r})
    return rows


def run_peak(args, run: dict[str, Any]) -> list[dict]:
    from bench import peak

    fingerprint, measured = peak.measure()
    rows = []
    for r in measured:
        fields = store.device_fields(fingerprint, r["backend"])
        rows.append(
            {
                **run,
                **fields,
                "workload": f"peak {r['peak']}",
                "kind": "peak",
                "backend": r["backend"],
                "threads": r["threads"],
                "side": "peak",
                "gflops": r["gflops"],
                "busy": r["busy_before"],
                "versions": {},
            }
        )
    return rows


#: a model's GFLOP/s and its share of the relaxed-SIMD peak timed beside it (kgen on wasm), as the kernels suite's
SHARE_FIELDS = ("gflops", "peak_gflops", "peak_share", "peak_share_low", "peak_share_high")


def run_models(args, run: dict[str, Any]) -> list[dict]:
    from bench import models, protocol

    names = {"resnet50": ["resnet50"], "transformers": list(models.TRANSFORMERS)}.get(args.suite, list(models.MODELS))
    if args.only:
        names = [n for n in names if any(part in n for part in args.only.split(","))]
        if not names:
            raise KgenError(f"--only {args.only}: no model of the {args.suite} suite has it in its name")
    records = args.records[0] if args.records else "none"  # kgen converts with one records file
    report = models.run(
        names,
        args.rounds,
        args.samples,
        args.backends,
        records,
        args.peer_list,
        args.warmup_ms,
        protocol.thread_counts(args.threads, "kgen bench"),
    )
    rows = []

    def side_row(name: str, side: str, **fields: Any) -> dict:
        runtime, backend, *threads = side.split()
        return {
            **run,
            **store.device_fields(report["fingerprint"], backend),
            "workload": name,
            "kind": "model",
            "backend": backend,
            "threads": int(threads[0].rstrip("t")) if threads else 1,
            "side": runtime,
            **fields,
        }

    for name, entry in report["models"].items():
        for side, v in entry["sides"].items():
            rows.append(
                side_row(
                    name,
                    side,
                    median_ms=v["median_ms"],
                    low_ms=v["spread_ms"][0] if v["spread_ms"] else None,
                    high_ms=v["spread_ms"][1] if v["spread_ms"] else None,
                    cold_ms=v["cold_ms"],
                    n=report["rounds"] * report["samples"],
                    rounds=report["rounds"],
                    ok=v["all_ok"],
                    peak_memory=v["peak_memory"],
                    versions={side.split()[0]: v["version"]} if v.get("version") else {},
                    **{k: v[k] for k in SHARE_FIELDS if k in v},
                )
            )
        for side, reason in entry.get("refused", {}).items():  # a peer that cannot run the network, and why
            rows.append(side_row(name, side, median_ms=None, ok=False, refused=reason))
    return rows


def print_summary(rows: Sequence[dict]) -> None:
    from bench.kernel_suite import ratio_table
    from bench.suite import geomean

    table = ratio_table(rows)
    for t in table:
        label = "software" if t["software"] else "hardware"
        variant = store.variant_name(t["backend"], t["threads"])
        ratio = f"{t['ratio']:.2f}x {t['best_peer']}" if t["ratio"] else "no peer"
        print(f"  {variant:<8} {t['workload']:<26} kgen {t['kgen_ms']:9.3f} ms  {ratio:<12} ({label})")
    variants = sorted({(t["backend"], t["threads"]) for t in table if t["ratio"]})
    for backend, threads in variants:
        sel = [t["ratio"] for t in table if (t["backend"], t["threads"]) == (backend, threads) and t["ratio"]]
        variant = store.variant_name(backend, threads)
        print(f"geomean {variant:<8} kgen / best peer {geomean(sel):.2f}x over {len(sel)} workloads")
    for backend, threads in sorted({(r["backend"], r["threads"]) for r in rows if r.get("peak_share")}):
        mine = [r for r in rows if (r["backend"], r["threads"]) == (backend, threads) and r.get("peak_share")]
        share = geomean([r["peak_share"] for r in mine])
        ceiling = geomean([r["peak_gflops"] for r in mine])
        print(
            f"geomean {store.variant_name(backend, threads):<8} kgen / peak measured beside each workload {share:.0%} "
            f"(kgen {geomean([r['gflops'] for r in mine]):.1f} GFLOP/s, peak {ceiling:.1f})"
        )
    for r in rows:
        if r.get("side") == "peak":
            label = " (software)" if r["software"] else ""
            threads = f" {r['threads']}t" if r["threads"] else ""
            print(f"  {r['workload']:<24}{threads:<4} {r['gflops']:8.1f} GFLOP/s{label}")


def main(args) -> int:
    if args.samples < 5:
        raise KgenError(f"--samples {args.samples}: at least 5 samples per side (the measurement protocol)")
    if args.warmup_ms < 100:
        raise KgenError(f"--warmup-ms {args.warmup_ms}: at least 100 ms of warm-up per side")
    for given in args.records or ():
        if not Path(given).is_file():
            raise KgenError(f"--records {given}: no such records file")
    args.records = args.records or [r for r in DEFAULT_RECORDS if Path(r).is_file()]
    args.backends = _parse_list(args.backend, BACKENDS, "backend")
    args.peer_list = _parse_list(args.peers, PEERS, "peer") if args.peers != "none" else []
    store.check_writable(args.out)  # before a run of many minutes, not after it
    run = {**store.new_run(args.suite), "warmup_ms": args.warmup_ms}  # every row says the warm-up it had
    runners = {
        "kernels": run_kernels,
        "peak": run_peak,
        **dict.fromkeys(("models", "resnet50", "transformers"), run_models),
    }
    rows = runners[args.suite](args, run)
    written = store.append(rows, args.out)  # first: a run of many minutes is kept even if what follows fails
    print_summary(rows)
    print(f"kgen bench: {written} rows of run {run['run']} (commit {run['commit'][:10]}) appended to {args.out}")
    found = [r for r in history.regressions(store.rows(args.out)) if r.after_run == run["run"]]
    for r in found:
        print(f"kgen bench: regression: {r.describe()}")
    return 1 if found and args.fail_on_regression else 0
