"""The ``kgen`` command line: the top layer, over every other (``kgen.tune`` included)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgen import backends
from kgen.errors import KgenError
from kgen.graph.passes.recognize import OPTIONAL as OPTIONAL_PATTERNS

BACKENDS = backends.NAMES


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def _cmd_ops(args: argparse.Namespace) -> int:
    from kgen.ops import all_ops

    ops = all_ops()
    if args.json:
        rows = [
            {
                "name": op.name,
                "family": op.family,
                "doc": op.doc,
                "inputs": [{"name": i.name, "optional": i.optional, "variadic": i.variadic} for i in op.inputs],
                "attrs": [
                    {
                        "name": a.name,
                        "type": a.kind,
                        "required": a.required,
                        "default": None if a.required else _jsonable(a.default),
                        "choices": list(a.choices),
                        "doc": a.doc,
                    }
                    for a in op.attrs
                ],
            }
            for op in ops
        ]
        print(json.dumps(rows, indent=2))
        return 0
    family = None
    for op in ops:
        if op.family != family:
            family = op.family
            print(f"\n{family}")
        inputs = ", ".join(i.name + ("..." if i.variadic else "") + ("?" if i.optional else "") for i in op.inputs)
        print(f"  {op.name}({inputs})  {op.doc}")
        for a in op.attrs:
            if a.required:
                default = "required"
            else:
                default = "optional" if a.default is None else f"default {_jsonable(a.default)}"
            print(f"      {a.name}: {a.kind.rstrip('?')}, {default}. {a.doc}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from kgen.build import build, space
    from kgen.cli_args import config_from_args, workload_from_args

    workload = workload_from_args(args)
    program, config = build(workload, args.backend, config_from_args(args.config))
    if args.json:
        print(json.dumps({"workload": workload.key, "config": config, "program": program.to_json()}, indent=2))
        return 0
    print(f"// workload: {workload.key}")
    print(f"// config:   {json.dumps(config, sort_keys=True)}")
    knobs = space(workload, args.backend).knobs
    print("// knobs:    " + "; ".join(f"{k.name} in {list(k.values)}" for k in knobs))
    if program.memory_bytes is not None:
        where = ", ".join(f"{b.name}@{b.offset}" for b in program.buffers)
        print(f"// memory:   {program.memory_bytes} bytes; buffers at byte offsets {where}")
    for kernel in program.kernels:
        if program.memory_bytes is not None:
            print(f"// kernel {kernel.name}: {kernel.grid[0]} tiles")
        else:
            views = ", ".join(f"{b.binding}={b.buffer}:{b.view}" for b in kernel.bindings)
            launch = f"grid {list(kernel.grid)} x workgroup {list(kernel.workgroup)}; bindings {views}"
            print(f"// kernel {kernel.name}: {launch}")
        print(kernel.source)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import numpy as np

    from kgen.build import build, space
    from kgen.checking import compare
    from kgen.cli_args import config_from_args, workload_from_args
    from kgen.scheduling.space import DEFAULT_LIMITS

    workload = workload_from_args(args)
    backend = backends.get(args.backend)
    if args.native and backend.native is None:
        raise KgenError(
            f"--native runs {' and '.join(backends.native_names())} only "
            f"({args.backend} has no runner outside the browser)"
        )
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(args.seed))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    rows = []

    def programs(limits: Mapping[str, int]) -> list:
        """The programs to check, valid under the device's ``limits`` (e.g. WebAssembly threads)."""
        if args.configs:
            configs: list[Any] = [None, *space(workload, args.backend).sample(args.configs, args.seed, limits)]
        else:
            configs = [config_from_args(args.config)]
        return [build(workload, args.backend, c, limits) for c in configs]

    def report(config: dict, status: str, reason: str, errors: tuple[float | None, float | None]) -> None:
        row = {
            "config": config,
            "status": status,
            "reason": reason,
            "max_abs_error": errors[0],
            "max_rel_error": errors[1],
        }
        rows.append(row)
        if not args.json:
            err = "" if errors[0] is None else f"max abs error {errors[0]:.3g}, max rel error {errors[1]:.3g}  "
            print(f"{status:<14} {err}{json.dumps(config, sort_keys=True)}" + (f"\n  {reason}" if reason else ""))

    def announce(count: int) -> None:
        if not args.json:
            where = f"{backend.native[1]} (native)" if args.native and backend.native else "headless Chromium"
            print(f"checking {workload.key} on {args.backend} in {where}: {count} config(s)")

    if args.native:
        runner = backend.native_runner()
        native = programs(DEFAULT_LIMITS)
        announce(len(native))
        for program, config in native:
            got = runner.run(program, arrays).reshape(want.shape)
            result = compare(got, want, args.backend)
            report(config, "ok" if result.ok else "wrong", result.reason, (result.max_abs_error, result.max_rel_error))
    else:
        from kgen.browser.measure import Harness
        from kgen.browser.session import BrowserSession

        with BrowserSession() as session:
            in_browser = programs(session.limits())
            announce(len(in_browser))
            harness = Harness(session, arrays, want, args.backend, timeout_s=args.timeout)
            for program, config in in_browser:
                m = harness.measure(program, time_it=False)
                report(config, m.status, m.reason, (m.max_abs_error, m.max_rel_error))
    if args.json:
        print(json.dumps({"workload": workload.key, "backend": args.backend, "results": rows}, indent=2))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def _progress(line: str) -> None:
    if sys.stderr.isatty():
        print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def _cmd_tune(args: argparse.Namespace) -> int:
    from kgen.cli_args import config_from_args, workload_from_args
    from kgen.ops.examples import resnet50_convs
    from kgen.ops.workload import Workload
    from kgen.records.store import RecordStore
    from kgen.tune.study import make_sampler, open_storage
    from kgen.tune.tune import tune

    args.fixed = config_from_args(args.fix, "--fix")  # bad JSON is an error before anything is opened or written
    if args.model:
        if args.op or args.suite or args.shape:
            raise KgenError("--model tunes the model's own workloads: give no OP, --suite or --shape with it")
        return _tune_model(args)
    if not args.op:
        raise KgenError("give an OP to tune (see `kgen ops`), or --model model.onnx")
    if args.suite:
        if args.shape or args.op != "conv2d":
            raise KgenError("--suite resnet50 tunes conv2d layers: give `kgen tune conv2d --suite resnet50`")
        workloads = [Workload.create("conv2d", shapes, attrs) for shapes, attrs in resnet50_convs()]
    else:
        workloads = [workload_from_args(args)]
    # a sampler whose packages are missing, or a bad storage URL, fails here: before a browser starts or
    # anything is written (opening a good SQLite URL creates the database)
    make_sampler(args.sampler, args.seed)
    store = RecordStore(args.records)
    store.check_writable()  # before a browser starts or a study is created
    open_storage(args.storage)
    summaries = []
    for n, workload in enumerate(workloads, 1):
        if not args.json:
            print(
                f"[{n}/{len(workloads)}] tuning {workload.key} on {args.backend}: {args.trials} trials", file=sys.stderr
            )
        summary = tune(
            workload,
            args.backend,
            trials=args.trials,
            storage_url=args.storage,
            sampler=args.sampler,
            timeout_s=args.timeout,
            seed=args.seed,
            records=store,
            progress=None if args.json else _progress,
            candidate_timeout_s=args.candidate_timeout,
            fixed=args.fixed,
        )
        summaries.append(summary)
        if not args.json:
            if sys.stderr.isatty():
                print(file=sys.stderr)
            _print_summary(summary)
            if args.show and summary.best_config is not None:
                from kgen.build import build

                print(build(workload, args.backend, summary.best_config, summary.limits)[0].source)
        if summary.interrupted:
            break
    if args.json:
        out = [s.to_json() for s in summaries]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    stopped = next((s.interrupted for s in summaries if s.interrupted), None)
    if stopped:
        return _interrupted_exit(stopped)
    return 0 if all(s.best_config is not None for s in summaries) else 1


def _interrupted_exit(name: str) -> int:
    """128 + the signal's number, as a shell reports a process that a signal ended (130 SIGINT, 143 SIGTERM)."""
    import signal

    print(f"kgen tune: stopped by {name}; the summary above is the run so far", file=sys.stderr)
    return 128 + signal.Signals[name].value


def _tune_model(args: argparse.Namespace) -> int:
    from kgen.records.store import RecordStore
    from kgen.tune.model import estimated_ms, interrupted, summary_rows, tasks_of, tune_model
    from kgen.tune.study import make_sampler, open_storage

    graph = _model_graph(args)
    make_sampler(args.sampler, args.seed)
    store = RecordStore(args.records)
    store.check_writable()
    open_storage(args.storage)
    if not args.json:
        tasks = tasks_of(graph, args.backend)
        print(
            f"{args.model}: {len(graph.nodes)} nodes, {len(tasks)} distinct workloads; {args.trials} trials on "
            f"{args.backend}, where the model gains most",
            file=sys.stderr,
        )
    tasks = tune_model(
        graph,
        args.backend,
        args.trials,
        args.storage,
        store,
        chunk=args.chunk,
        progress=None if args.json else (lambda line: print(line, file=sys.stderr)),
        sampler=args.sampler,
        timeout_s=args.timeout,
        seed=args.seed,
        candidate_timeout_s=args.candidate_timeout,
        fixed=args.fixed,
    )
    rows = summary_rows(tasks)
    total = estimated_ms(tasks)
    if args.json:
        print(
            json.dumps(
                {"model": args.model, "backend": args.backend, "estimated_ms": total, "workloads": rows}, indent=2
            )
        )
    else:
        for r in rows:
            best = f"{r['best_ms']:.3f} ms x{r['count']}, {r['gflops']:.2f} GFLOP/s" if r["best_ms"] else "not measured"
            print(f"  {r['trials']:>4} trials  {best:<38} {r['workload']}")
        if total is not None:
            print(f"estimated kernel time of the model: {total:.2f} ms; records in {store.path}")
    stopped = interrupted(tasks)
    if stopped:
        return _interrupted_exit(stopped)
    return 0 if any(t.best_ms is not None for t in tasks) else 1


def _print_summary(s) -> None:
    device = f"{s.device_class}{', software' if s.software else ''}"
    print(f"tuned {s.workload} on {s.backend} ({device})")
    if s.best_config is None and not s.failures and s.prune_reasons:
        reason, count = next(iter(s.prune_reasons.items()))
        print(f"  no valid candidate: every proposal broke a constraint, most often {reason!r} ({count} of {s.pruned})")
    elif s.best_config is None:
        print("  no candidate passed its check: see the failures below")
    else:
        print(f"  best     {s.best_ms:.3f} ms (IQR {s.best_iqr_ms or 0:.3f})  {s.best_gflops:.3f} GFLOP/s")
        print(f"  config   {json.dumps(s.best_config, sort_keys=True)}")
        if s.speedup is not None:
            print(f"  default  {s.default_ms:.3f} ms: speedup {s.speedup:.2f}x over the untuned default")
    failures = ", ".join(f"{k} {v}" for k, v in sorted(s.failures.items())) or "none"
    proposed = s.trials + s.pruned
    share = f" ({s.pruned / proposed:.0%})" if proposed else ""
    print(
        f"  trials   {s.trials} measured in this run ({s.per_minute:.0f}/min), {s.study_trials} in the study; "
        f"failures: {failures}; pruned {s.pruned} of {proposed} proposed{share}; reused {s.reused}"
    )
    if s.interrupted:
        print(f"  stopped  by {s.interrupted} (the candidate being measured is a FAIL trial, reason 'interrupted')")
    if s.record:
        print(f"  record   {s.record}")
    print(f"  study    {s.study} in {s.storage}")


def _cmd_records(args: argparse.Namespace) -> int:
    from kgen.records.store import RecordStore

    store = RecordStore(args.records)
    if args.action == "import":
        if not args.file:
            raise KgenError("kgen records import needs a file of JSON lines")
        source = RecordStore(args.file)
        if not source.path.exists():
            raise KgenError(f"cannot read {args.file}: no such file")
        records = source.all()
        store.check_writable()
        print(f"imported {store.add(records)} of {len(records)} records into {store.path} (the others were there)")
        return 0
    best = store.best()
    if args.csv or args.action == "csv":
        import pandas as pd

        rows = [
            {
                "key": r.key,
                "backend": r.backend,
                "device_class": r.device_class,
                "median_ms": r.median_ms,
                "iqr_ms": r.iqr_ms,
                "samples": r.samples,
                "gflops": r.gflops,
                "config": json.dumps(r.config, sort_keys=True),
                "time": r.time,
            }
            for r in best
        ]
        pd.DataFrame(rows).to_csv(sys.stdout, index=False)
        return 0
    if args.action == "export":
        text = "".join(r.to_line() + "\n" for r in best)
        if args.file:
            from kgen.atomic import write_text_atomic

            try:
                write_text_atomic(args.file, text)
            except OSError as err:
                raise KgenError(f"cannot write {args.file}: {err.strerror}") from None
        else:
            sys.stdout.write(text)
        return 0
    for r in best:
        print(f"{r.backend:<7} {r.device_class:<20} {r.median_ms:9.3f} ms {r.gflops:7.3f} GFLOP/s  {r.key}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from kgen.doctor import diagnose

    report = diagnose(browser=not args.no_browser)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    print(f"kgen {report['kgen']} on Python {report['python']}")
    print("packages:")
    for name, version in report["packages"].items():
        print(f"  {name:<12} {version or 'not installed'}")
    chromium = report["chromium"]
    print(f"chromium: {chromium['path']}: {chromium['version'] or 'not found (run make setup, or set KGEN_CHROMIUM)'}")
    page = report.get("browser")
    if page is not None:
        if "error" in page:
            print(f"browser: could not start: {page['error']}")
        else:
            gpu = page["webgpu"]
            if gpu["available"]:
                kind = " (software: SwiftShader/fallback)" if page["software"] else ""
                name = " ".join(filter(None, (gpu["vendor"], gpu["architecture"], gpu["device"])))
                print(f"webgpu: {name}{kind}")
                print(f"  features: {', '.join(gpu['features'])}")
                limits = (
                    "maxComputeInvocationsPerWorkgroup",
                    "maxComputeWorkgroupStorageSize",
                    "maxStorageBuffersPerShaderStage",
                    "maxStorageBufferBindingSize",
                )
                print("  limits: " + ", ".join(f"{k}={gpu['limits'][k]}" for k in limits))
            else:
                print(f"webgpu: unavailable: {gpu['error']}")
            gl = page["webgl2"]
            print(f"webgl2: {gl.get('renderer', 'unavailable')}")
            print(
                f"wasm: {'yes' if page['wasm']['available'] else 'no'}, SharedArrayBuffer "
                f"{'yes' if page['wasm']['sharedArrayBuffer'] else 'no'}, "
                f"cross-origin isolated {'yes' if page['crossOriginIsolated'] else 'no'}, "
                f"relaxed SIMD {'yes' if page['wasm'].get('relaxedSimd') else 'no'}, "
                f"{page['wasm'].get('maxThreads', 1)} of {page['hardwareConcurrency']} threads usable"
            )
    return 0 if report["ok"] else 1


def _parse_backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    aliases = {"webassembly": "wasm", "fallback": "js"}
    names = [aliases.get(b, b) for b in names]
    for b in names:
        if b not in BACKENDS:
            raise KgenError(f"--backend '{b}' is not a backend (backends: {', '.join(BACKENDS)})")
    if not names:
        raise KgenError("--backend names no backend")
    return list(dict.fromkeys(names))


def _model_graph(args: argparse.Namespace):
    """``--model``'s graph after the passes, at ``--input-shape``'s sizes: the one whose workloads are tuned."""
    from kgen.graph import onnx as onnx_frontend
    from kgen.graph.passes import optimize

    return optimize(onnx_frontend.load(args.model, _parse_input_shapes(args.input_shape)))


def _parse_input_shapes(items: Sequence[str] | None) -> dict[str, tuple[int, ...]]:
    from kgen.cli_args import parse_shapes

    shapes = {}
    for item in items or ():
        name, sep, dims = item.partition("=")
        if not sep or not name:
            raise KgenError(f"--input-shape '{item}' is not like NAME=1x3x224x224")
        parsed = parse_shapes(dims)
        if len(parsed) != 1:
            raise KgenError(f"--input-shape '{item}': one shape per input")
        shapes[name] = parsed[0]
    return shapes


def _cmd_convert(args: argparse.Namespace) -> int:
    from kgen.descriptor.assemble import Options
    from kgen.descriptor.convert import convert
    from kgen.records.store import RecordStore, shipped_records

    backends = _parse_backends(args.backend)
    store = None
    if args.records != "none":
        store = RecordStore(args.records or shipped_records())
        if not store.path.is_file():
            raise KgenError(f"--records {store.path}: no such file")
        store.all()  # a malformed records file is an error before anything is converted
    try:
        threads = sorted({int(t) for t in args.threads.split(",")})
    except ValueError:
        threads = []
    if not threads or any(t not in (1, 2, 4) for t in threads):
        raise KgenError(f"--threads '{args.threads}': thread counts from 1, 2 and 4, comma-separated")
    if args.candidates < 1:
        raise KgenError(f"--candidates {args.candidates}: at least 1 (the chosen config alone)")
    options = Options(records=store, threads=threads[0], candidates=args.candidates)
    progress = None if args.json else (lambda line: print(f"kgen convert: {line}", file=sys.stderr))
    summary = convert(
        args.model,
        args.out,
        backends,
        encoding=args.encoding,
        options=options,
        input_shapes=_parse_input_shapes(args.input_shape),
        force=args.force,
        progress=progress,
        wasm_threads=threads,
        unfused=args.unfused,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_convert_summary(summary, args.out, args.explain)
    return 1 if summary["failed"] else 0


def _print_convert_summary(summary: Mapping[str, Any], out: str, explain: bool) -> None:
    print(f"{summary['model']} -> {out}")
    print(f"  nodes: {summary['nodes_before']} before the passes, {summary['nodes_after']} after")
    print(f"  weights: {summary['weight_bytes'] / 1e6:.2f} MB {summary['encoding']}", end="")
    print(f" ({summary['weight_ratio']:.3f}x fp32)" if summary["encoding"] != "fp32" else "")
    if "agreement" in summary:
        a = summary["agreement"]
        print(f"  {summary['encoding']} vs fp32 outputs: cosine {a['cosine']:.5f}, top-1 same: {a['top1_same']}")
    for backend, b in summary["backends"].items():
        m = b["memory"]
        chosen = ", ".join(f"{n} {how}" for how, n in sorted(b["chosen"].items()))
        if len(b["variants"]) > 1:
            chosen += "; variants " + ", ".join(b["variants"])
        print(
            f"  {backend}: {b['kernels']} kernels ({chosen}); planned memory {m['planned_bytes'] / 1e6:.1f} MB "
            f"(activations {m['activation_peak_bytes'] / 1e6:.1f} MB of {m['activation_sum_bytes'] / 1e6:.1f} MB)"
        )
    for backend, err in summary["failed"].items():
        print(f"  {backend}: FAILED, skipped: {err}")
    if explain:
        from kgen.descriptor.schema import read_backend, read_model

        model = read_model(out)
        for backend in summary["backends"]:
            print(f"\n{backend}:")
            for n in read_backend(out, model, backend)["nodes"]:
                ops = "+".join([n["op"], *n["epilogue"]])
                if n["how"] == "default":
                    how = "template default" + (f" ({n['note']})" if n["note"] else "")
                else:
                    how = f"{n['how']} record {n['record']}, {n['gflops']} GFLOP/s"
                print(f"  {n['name']:<28} {ops:<28} {how}")


def _cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    from kgen.browser.model_run import run_model

    feeds = {}
    for item in args.input or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise KgenError(f"--input '{item}' is not like NAME=FILE.npy")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise KgenError(f"--input {name}: cannot read {path} as a .npy array ({err})") from None
    if args.bench and args.runs < 1:
        raise KgenError(f"--runs {args.runs}: at least 1 timed run")
    if args.profile < 0:
        raise KgenError(f"--profile {args.profile}: the rounds must be at least 1")
    if args.out and not args.out.endswith(".npz"):
        raise KgenError(f"--out {args.out}: the outputs are written as a .npz file")
    if args.tune is not None and args.tune <= 0:
        raise KgenError(f"--tune {args.tune}: the budget must be a positive number of ms")
    bench = args.runs if args.bench else 0
    result = run_model(args.dir, args.backend, feeds, bench=bench, profile=args.profile, tune_ms=args.tune or 0)
    records = result.pop("records")
    if args.tune and result["tuning"]["state"] == "failed":  # nothing written: the tuning asked for did not happen
        raise KgenError(f"--tune: {result['tuning']['error']}")
    if args.tune:
        from kgen.atomic import write_text_atomic

        write_text_atomic(args.tune_out, records)
    if args.out:
        import io

        from kgen.atomic import write_bytes_atomic

        buffer = io.BytesIO()
        np.savez(buffer, **result["outputs"])
        write_bytes_atomic(args.out, buffer.getvalue())
    summary = {k: v for k, v in result.items() if k != "outputs"}
    summary["outputs"] = {k: list(v.shape) for k, v in result["outputs"].items()}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"backend: {result['backend']}")
    for reason in result["fallback"]:
        print(f"  not loaded: {reason}")
    print(f"load: {result['load_ms']:.1f} ms, first run: {result['first_run_ms']:.1f} ms")
    if args.tune:
        t = result["tuning"]
        print(
            f"tuning ({t['deviceClass']}): {t['state']}; {t['kernelsDone']} of {t['kernels']} kernels, "
            f"{t['tried']} candidates tried, {t['swapped']} swapped in, {len(t['rejected'])} rejected; "
            f"{t['spentMs']:.0f} ms, estimated speed-up {t['speedup']:.2f}x" + (f"; {t['error']}" if t["error"] else "")
        )
        print(f"records: {len(records.splitlines())} -> {args.tune_out} (kgen records import {args.tune_out})")
    if "median_ms" in result:
        print(f"run: median {result['median_ms']:.2f} ms, IQR {result['iqr_ms']:.2f} ms over {result['runs']} runs")
    for name, value in result["outputs"].items():
        print(f"output {name}: shape {list(value.shape)}" + (f" -> {args.out}" if args.out else ""))
    if "profile" in result:
        _print_profile(result["profile"], args.profile)
    return 0


def _print_profile(rows: list[dict[str, Any]], rounds: int) -> None:
    total = sum(r["ms"] for r in rows)
    print(f"profile: each kernel alone, median of {rounds} rounds; sum {total:.2f} ms; slowest first")
    print(f"  {'node':28} {'op':28} {'ms':>9} {'share':>6} {'cum':>6} {'GFLOP/s':>8}  config")
    cumulative = 0.0
    for r in rows:
        cumulative += r["share"]
        gflops = f"{r['gflops']:8.1f}" if "gflops" in r else f"{'':8}"
        print(
            f"  {r['node'][:28]:28} {r['op'][:28]:28} {r['ms']:9.3f} {r['share']:6.1%} {cumulative:6.1%} {gflops}"
            f"  {r.get('how') or ''}"
        )


def _cmd_serve(args: argparse.Namespace) -> int:
    from kgen.browser.model_run import serve

    serve(args.dir, args.port)
    return 0


def _cmd_fleet_serve(args: argparse.Namespace) -> int:
    from kgen.cli_args import workload_from_args
    from kgen.records.store import RecordStore
    from kgen.tune.fleet import Fleet, serve

    if args.model:
        if args.op or args.shape:
            raise KgenError("--model tunes the model's own workloads: give no OP or --shape with it")
        from kgen.tune.model import tasks_of

        tasks = tasks_of(_model_graph(args))
        workloads = [task.workload for task in tasks]
        counts = {task.workload.key: task.count for task in tasks}
    elif not args.op:
        raise KgenError("give an OP to tune (see `kgen ops`), or --model model.onnx")
    else:
        workloads, counts = [workload_from_args(args)], {}
    names = [b.strip() for b in args.backend.split(",") if b.strip()]
    if args.trials < 1 or args.chunk < 1:
        raise KgenError(f"--trials {args.trials} --chunk {args.chunk}: each at least 1")
    records = RecordStore(args.records)
    records.check_writable()
    say = (
        (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    )
    if args.trials < len(workloads):
        say(f"note: --trials {args.trials} is fewer than the model's {len(workloads)} workloads: the lightest get none")
    fleet = Fleet(
        workloads,
        names,
        args.trials,
        args.storage,
        records,
        counts=counts,
        chunk=args.chunk,
        job_timeout_s=args.job_timeout,
        max_strikes=args.max_strikes,
        sampler=args.sampler,
        progress=say,
    )
    qr = sys.stdout.isatty() and not args.json if args.qr is None else args.qr
    status = serve(fleet, args.host, args.port, args.token, args.classes, args.timeout, announce=say, qr=qr)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_fleet(status)
    return 0


def _cmd_fleet_status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    url = args.url.rstrip("/") + "/api/status"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            status = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise KgenError(f"{args.url}: HTTP {err.code} ({'a wrong token' if err.code == 403 else err.reason})") from None
    except (urllib.error.URLError, OSError) as err:
        raise KgenError(f"{args.url}: no fleet answers there ({getattr(err, 'reason', err)})") from None
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_fleet(status)
    return 0


def _print_fleet(status: dict[str, Any]) -> None:
    shown = status["workloads"][0] if len(status["workloads"]) == 1 else f"{len(status['workloads'])} workloads"
    print(f"fleet: {shown}; {status['jobs_per_minute']} jobs per minute, {status['in_flight']} in flight")
    for w in status["workers"]:
        dropped = f", dropped: {w['dropped']}" if w["dropped"] else ""
        print(
            f"  worker {w['id']}: {', '.join(w['classes'].values())}; {w['jobs']} jobs, {w['rejected']} rejected, "
            f"{w['lost']} unanswered{dropped}"
        )
    for c in status["classes"]:
        model = f", model ~{c['estimated_ms']:.2f} ms" if c["estimated_ms"] and len(status["workloads"]) > 1 else ""
        print(f"  {c['backend']} {c['device_class']}: {c['finished']}/{c['trials']} trials{model}")
    for s in status["studies"]:
        best = "no result yet" if s["best_ms"] is None else f"best {s['best_ms']:.3f} ms {json.dumps(s['best_config'])}"
        print(f"  {s['backend']} {s['device_class']} {s['workload']}: {s['finished']}/{s['trials']} trials, {best}")


def _checkout_tool(module: str):
    """A module of bench/, the repository's benchmark tool, which is not installed: imported from the checkout the
    command runs in, with the ``bench`` extra's packages."""
    if (Path.cwd() / "bench" / "__init__.py").is_file() and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == "bench":
            raise KgenError(
                "kgen bench and kgen report run from a kgen checkout (bench/ is a tool of the repository, not part "
                "of the package): cd into one, with its bench extra installed (pip install -e '.[bench]')"
            ) from None
        if err.name in ("asv", "matplotlib", "jinja2"):
            raise KgenError(f"{err.name} is missing: install the bench extra (pip install -e '.[bench]')") from None
        raise


def _cmd_bench(args: argparse.Namespace) -> int:
    return _checkout_tool("bench.command").main(args)


def _cmd_report(args: argparse.Namespace) -> int:
    return _checkout_tool("bench.report").main(args)


def build_parser() -> argparse.ArgumentParser:
    from kgen.cli_args import add_workload_args

    parser = argparse.ArgumentParser(
        prog="kgen",
        description="Generate deep-learning kernels for web browsers (WebGPU, WebGL2, WebAssembly, JS) "
        "and autotune them in real headless Chromium.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ops = sub.add_parser("ops", help="list every op with its inputs and attributes")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(func=_cmd_ops)

    show = sub.add_parser("show", help="print the kernels generated for a workload and a config")
    add_workload_args(show)
    show.add_argument("--backend", choices=BACKENDS, default="webgpu")
    show.add_argument("--config", metavar="JSON", help="knob values (missing knobs take their defaults)")
    show.add_argument("--json", action="store_true", help="the program (texts and launch info) as JSON")
    show.set_defaults(func=_cmd_show)

    check = sub.add_parser(
        "check",
        help="run kernels in headless Chromium and compare them with numpy; exit 0 only when all are within tolerance",
    )
    add_workload_args(check)
    check.add_argument("--backend", choices=BACKENDS, default="webgpu")
    group = check.add_mutually_exclusive_group()
    group.add_argument("--config", metavar="JSON", help="knob values (missing knobs take their defaults)")
    group.add_argument("--configs", type=int, metavar="N", help="the default config plus N sampled ones")
    check.add_argument(
        "--native", action="store_true", help="run outside the browser: WebGPU through wgpu-py, wasm through wasmtime"
    )
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs and the config sample")
    check.add_argument("--timeout", type=float, default=60.0, help="seconds before a kernel counts as hung")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_cmd_check)

    tune = sub.add_parser(
        "tune",
        help="autotune a workload's kernels in headless Chromium (Optuna) and record the fastest",
        description="Tune OP on a backend: Optuna proposes configs of the template, each is checked against numpy "
        "and timed in headless Chromium, failures are recorded with their reason, and the best becomes a "
        "tuning record. Without --shape, a representative workload (for conv2d, ResNet-50's 64->64 3x3 layer). "
        "Several `kgen tune` processes on one storage share the study.",
    )
    add_workload_args(tune, op_required=False)
    tune.add_argument(
        "--model",
        metavar="MODEL.onnx",
        help="tune the model's distinct workloads (after the passes), trials going where the model gains most",
    )
    tune.add_argument("--chunk", type=int, default=8, help="with --model: trials per allocation (default 8)")
    tune.add_argument("--input-shape", action="append", metavar="NAME=SHAPE", help="with --model: see `kgen convert`")
    tune.add_argument("--backend", choices=BACKENDS, default="webgpu")
    tune.add_argument("--suite", choices=("resnet50",), help="tune every distinct conv2d layer of ResNet-50")
    tune.add_argument("--trials", type=int, default=30, help="trials this process runs (default 30)")
    tune.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tune.add_argument("--sampler", choices=("tpe", "random", "cmaes", "gp"), default="tpe")
    tune.add_argument(
        "--fix",
        metavar="JSON",
        help="knob values held fixed while tuning, in a study of their own, e.g. '{\"threads\": 1}' on wasm",
    )
    tune.add_argument(
        "--storage",
        default="sqlite:///results/kgen.db",
        help="Optuna storage URL (sqlite:///…, postgresql://…, journal:PATH)",
    )
    tune.add_argument("--records", default="results/records.jsonl", help="the tuning records file")
    tune.add_argument("--seed", type=int, help="sampler seed")
    tune.add_argument("--candidate-timeout", type=float, default=60.0, help="seconds before a kernel counts as hung")
    tune.add_argument("--show", action="store_true", help="print the best kernel's text after the summary")
    tune.add_argument("--json", action="store_true", help="the summary as JSON on stdout; no progress")
    tune.set_defaults(func=_cmd_tune)

    records = sub.add_parser("records", help="list, export or import tuning records")
    records.add_argument("action", nargs="?", choices=("list", "export", "import", "csv"), default="list")
    records.add_argument("file", nargs="?", help="export: write here (default stdout); import: read from here")
    records.add_argument("--records", default="results/records.jsonl", help="the tuning records file")
    records.add_argument("--csv", action="store_true", help="the best records as CSV (pandas)")
    records.set_defaults(func=_cmd_records)

    convert = sub.add_parser(
        "convert",
        help="convert an ONNX model into a folder the JS runtime loads (one program per backend, weight shards)",
        description="Convert MODEL (.onnx, opsets 7-23) for one or more backends: the graph is optimized (constants "
        "and batch norms folded, activations and residual adds fused), each node's kernel is chosen from the "
        "tuning records (exact, nearest shape, else the template default) and the memory is planned by liveness. "
        "The folder is written whole or not at all; a backend that fails is reported and skipped (exit 1).",
    )
    convert.add_argument("model", help="the .onnx file")
    convert.add_argument("--out", required=True, help="the folder to write (refused if it exists, unless --force)")
    convert.add_argument(
        "--backend", default="webgpu,wasm,js", help="comma-separated: webgpu, webgl, wasm, js (default webgpu,wasm,js)"
    )
    convert.add_argument("--encoding", default="fp32", help="weights: fp32 (default), fp16 or eightbit (~0.25x)")
    convert.add_argument(
        "--records",
        help="tuning records (JSONL, as `kgen tune` writes); default: $KGEN_RECORDS, else the records kgen ships "
        "(tuned on a 2-core Zen 4 VM, SwiftShader and an H100); 'none': the templates' defaults",
    )
    convert.add_argument(
        "--input-shape",
        action="append",
        metavar="NAME=SHAPE",
        help="the shape of an input whose shape is dynamic in the model, e.g. input=1x3x224x224 (repeatable)",
    )
    convert.add_argument(
        "--threads",
        default="1",
        help="wasm: thread counts, one variant each, e.g. 1,2 (default 1); the page loads the most it can run",
    )
    convert.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="K",
        help="webgpu, wasm, js: up to K configs per kernel, the chosen one and others a page may try when it tunes "
        "on the visitor's device (records of other device classes, the template default, its seeds, configs drawn "
        "from its space), in <variant>.candidates.json, fetched only to tune (default 1: none; 4 costs about 3x the "
        "conversion time)",
    )
    convert.add_argument(
        "--unfused",
        action="append",
        default=[],
        choices=sorted(OPTIONAL_PATTERNS),
        help="leave this pattern as its chain of kernels, e.g. attention as MatMul, Softmax and MatMul: to measure "
        "what its fused kernel gains (repeatable)",
    )
    convert.add_argument("--force", action="store_true", help="replace an existing output folder")
    convert.add_argument("--explain", action="store_true", help="for each node, which kernel config it took and why")
    convert.add_argument("--json", action="store_true", help="the summary as JSON on stdout; no progress")
    convert.set_defaults(func=_cmd_convert)

    run = sub.add_parser(
        "run",
        help="run a converted model in headless Chromium through the JS runtime and write its outputs",
        description="Load DIR (written by `kgen convert`) in headless Chromium with the page's runtime on BACKEND, "
        "run it on the given inputs and write the outputs; --bench adds the first run and the median of many.",
    )
    run.add_argument("dir", help="the converted model folder")
    run.add_argument("--backend", choices=BACKENDS, default="wasm")
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="an input's values (repeatable)")
    run.add_argument("--out", help="write the outputs here (.npz, by output name)")
    run.add_argument("--bench", action="store_true", help="time the runs: warm-up (>= 1 s, 3 runs), then --runs runs")
    run.add_argument("--runs", type=int, default=10, help="timed runs with --bench (default 10)")
    run.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=10,
        default=0,
        metavar="ROUNDS",
        help="after a warm-up, time every node's kernels alone (median of ROUNDS rounds, default 10): a table, "
        "slowest first, with each node's share and GFLOP/s",
    )
    run.add_argument(
        "--tune",
        type=float,
        metavar="BUDGET_MS",
        help="tune in the page as kgen.load(dir, {tune: {budgetMs}}) does (a model converted with --candidates K): "
        "after the first output, for at most BUDGET_MS of the page's time; the outputs and --bench are then the "
        "tuned program's, and what the page measured is written as records (--tune-out)",
    )
    run.add_argument(
        "--tune-out",
        default="tuning.jsonl",
        metavar="FILE",
        help="with --tune: write the page's measurements here, as `kgen records import` takes them "
        "(default tuning.jsonl)",
    )
    run.add_argument("--json", action="store_true", help="the summary as JSON")
    run.set_defaults(func=_cmd_run)

    serve = sub.add_parser(
        "serve",
        help="serve a folder and the JS runtime on 127.0.0.1, cross-origin isolated (wasm threads work)",
        description="Serve DIR at / and the runtime at /kgen/ (import it from /kgen/kgen.js) on 127.0.0.1 only, "
        "with COOP/COEP headers; nothing outside DIR and the runtime is served. Ctrl-C stops.",
    )
    serve.add_argument("dir", help="the folder to serve (your page and its converted models)")
    serve.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free port)")
    serve.set_defaults(func=_cmd_serve)

    bench = sub.add_parser(
        "bench",
        help="benchmark kgen against ONNX Runtime Web and TF.js in one browser; rows appended to a results store",
        description="Measure a suite on the fair protocol (idle machine before each side, the same warm-up and "
        "samples, sides interleaved over fresh pages, rounds that disagree re-measured): kernels (the peer suite, "
        "kgen's kernels from the records against the peers live), resnet50, models and transformers (whole models, "
        "kgen's runtime against ONNX Runtime Web; transformers: a MiniLM-L6-like encoder at sequence 128, a "
        "DeiT-small-like ViT and a MobileNet-v3-large-like net), peak (this machine's arithmetic ceilings). "
        "Every output is checked before it is timed; every row (median, IQR, n, GFLOP/s, device, software label, "
        "commit, peer versions) is appended to --out (JSON lines; pandas.read_json(F, lines=True)). "
        "Needs `make peers`.",
    )
    bench.add_argument("--suite", choices=("kernels", "resnet50", "models", "transformers", "peak"), default="kernels")
    bench.add_argument(
        "--backend", default="wasm,webgl,webgpu", help="comma-separated: wasm (1 and 2 threads), webgl, webgpu"
    )
    bench.add_argument("--threads", default="1,2", help="wasm: the thread counts compared (default 1,2)")
    bench.add_argument("--peers", default="ort,tfjs", help="comma-separated peers: ort, tfjs (none: kgen alone)")
    bench.add_argument(
        "--only",
        help="only the workloads (kernels) or models whose name contains this, e.g. 'conv 64' or 'minilm' (models: "
        "comma-separated names, e.g. 'dcgan,mobilenet')",
    )
    bench.add_argument("--rounds", type=int, default=3, help="fresh pages per backend (at least 3; median taken)")
    bench.add_argument("--samples", type=int, default=15, help="timed samples per side and round (at least 5)")
    bench.add_argument(
        "--warmup-ms",
        type=int,
        default=1000,
        help="warm-up of every side, and of the peak loop timed beside kgen on wasm, before its samples (at least "
        "100; default 1000: engines compile their optimized code meanwhile)",
    )
    bench.add_argument(
        "--records",
        action="append",
        help="tuning records kgen's kernels come from (repeatable; default: the shipped ones under results/)",
    )
    bench.add_argument("--out", default="results/bench/history.jsonl", help="the results store to append to")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when this run completes a regression (asv step detection over the store's history)",
    )
    bench.set_defaults(func=_cmd_bench)

    report = sub.add_parser(
        "report",
        help="build the static HTML dashboard of the results store (offline: no CDN), with CSV and LaTeX tables",
        description="Read the results store and the Optuna storage and write OUT/index.html (plots inline), "
        "OUT/*.csv and, with --latex, OUT/*.tex: per workload and backend the history per commit, kgen / peer "
        "ratios and geomeans, the share of the measured peak, regressions found by asv's step detection, and "
        "tuning convergence (best so far against trials, per sampler).",
    )
    report.add_argument("--results", default="results/bench/history.jsonl", help="the results store (JSON lines)")
    report.add_argument("--storage", default="sqlite:///results/kgen.db", help="Optuna storage of the tuning studies")
    report.add_argument("--out", default="results/report", help="the folder to write")
    report.add_argument("--latex", action="store_true", help="also write the tables as LaTeX (.tex)")
    report.add_argument(
        "--markdown",
        default="results/BENCHMARKS.md",
        help="every run's figures as Markdown, written here ('none': not written)",
    )
    report.set_defaults(func=_cmd_report)

    fleet = sub.add_parser(
        "fleet",
        help="tune on many devices: serve a workload's candidates to browsers that open the worker page",
        description="kgen fleet serve: a server that hands out a workload's (or a model's) candidates to any "
        "browser that opens its worker page (a phone, a laptop, a desktop GPU). Each device class has a study of its "
        "own per workload; its best becomes that class's record. kgen fleet status: the workers, their classes, "
        "jobs per minute and the best so far per class.",
    )
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    fleet_serve = fleet_sub.add_parser(
        "serve",
        help="serve the workload's candidates to worker pages until every class has its trials",
        description="Serve OP's candidates to the worker pages that open the printed URL, on 127.0.0.1 unless "
        "--host says otherwise. Every path carries the token (given with --token, or generated and printed): a "
        "request without it gets 403. A device's page checks each candidate's output against the reference before "
        "timing it, and the server checks the output again; a job not answered within --job-timeout fails its "
        "trial. At the end (--classes, --timeout, or Ctrl-C) each class's best is written to the records.",
    )
    add_workload_args(fleet_serve, op_required=False)
    fleet_serve.add_argument(
        "--model",
        metavar="MODEL.onnx",
        help="tune the model's distinct workloads (after the passes): --trials per class spread over them as "
        "`kgen tune --model` does, where the model gains most",
    )
    fleet_serve.add_argument(
        "--input-shape", action="append", metavar="NAME=SHAPE", help="with --model: see `kgen convert`"
    )
    fleet_serve.add_argument(
        "--backend", default="wasm", help="comma-separated backends the workers measure (default wasm)"
    )
    fleet_serve.add_argument("--trials", type=int, default=30, help="trials measured per device class (default 30)")
    fleet_serve.add_argument(
        "--chunk", type=int, default=8, help="with --model: trials per allocation to one workload (default 8)"
    )
    fleet_serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0: every device on the network, "
        "which the printed URL and QR code then name by this machine's address)",
    )
    fleet_serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    fleet_serve.add_argument("--token", help="the token every path carries (default: a random one, printed)")
    fleet_serve.add_argument(
        "--classes", type=int, default=0, help="stop once this many device classes have every trial (default 0: never)"
    )
    fleet_serve.add_argument("--timeout", type=float, help="stop after this many seconds")
    fleet_serve.add_argument(
        "--job-timeout", type=float, default=120.0, help="seconds a worker has to answer a job (default 120)"
    )
    fleet_serve.add_argument(
        "--max-strikes", type=int, default=3, help="rejected or unanswered jobs before a worker is dropped (default 3)"
    )
    fleet_serve.add_argument(
        "--storage", default="sqlite:///results/kgen.db", help="Optuna storage URL (sqlite, postgresql)"
    )
    fleet_serve.add_argument("--records", default="results/records.jsonl", help="the tuning records file")
    fleet_serve.add_argument("--sampler", choices=("tpe", "random", "cmaes", "gp"), default="tpe")
    fleet_serve.add_argument("--json", action="store_true", help="the final status as JSON on stdout")
    fleet_serve.add_argument(
        "--qr",
        action=argparse.BooleanOptionalAction,
        help="print the worker page's URL as a QR code for a phone's camera (default: on a terminal)",
    )
    fleet_serve.set_defaults(func=_cmd_fleet_serve)
    fleet_status = fleet_sub.add_parser("status", help="a running fleet's workers, classes, pace and best per class")
    fleet_status.add_argument("url", help="the fleet's URL with its token, as `kgen fleet serve` prints it")
    fleet_status.add_argument("--json", action="store_true", help="machine-readable output")
    fleet_status.set_defaults(func=_cmd_fleet_status)

    doctor = sub.add_parser(
        "doctor",
        help="report packages, the browser and its backends (adapter, features, limits); exit 1 if one is missing",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--no-browser", action="store_true", help="do not start the browser")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def _attach_dash_values(argv: Sequence[str]) -> list[str]:
    """``--shape -4x4`` as ``--shape=-4x4``: argparse takes a value that starts with a dash and is not a number for
    an option, and the error would be 'expected one argument' instead of what is wrong with the value."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and re.match(r"-\d+\D", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(_attach_dash_values(sys.argv[1:] if argv is None else argv))
    try:
        return args.func(args)
    except KgenError as err:
        print(f"kgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a tuning loop (which ends its trial and summary itself)
        print("kgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `kgen ops | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
