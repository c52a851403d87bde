"""The ``kgen`` command line: the one top layer that may call both ``kgen`` and ``tuner``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from kgen.errors import KgenError

BACKENDS = ("webgpu",)


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
    from kgen.cli_args import config_from_args, workload_from_args
    from kgen.scheduling.build import build, space

    workload = workload_from_args(args)
    program, config = build(workload, args.backend, config_from_args(args.config))
    if args.json:
        print(json.dumps({"workload": workload.key, "config": config, "program": program.to_json()}, indent=2))
        return 0
    print(f"// workload: {workload.key}")
    print(f"// config:   {json.dumps(config, sort_keys=True)}")
    knobs = space(workload, args.backend).knobs
    print("// knobs:    " + "; ".join(f"{k.name} in {list(k.values)}" for k in knobs))
    for kernel in program.kernels:
        views = ", ".join(f"{b.binding}={b.buffer}:{b.view}" for b in kernel.bindings)
        print(
            f"// kernel {kernel.name}: grid {list(kernel.grid)} x workgroup {list(kernel.workgroup)}; bindings {views}"
        )
        print(kernel.source)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import numpy as np

    from kgen.checking import compare
    from kgen.cli_args import config_from_args, workload_from_args
    from kgen.scheduling.build import build, space

    workload = workload_from_args(args)
    if args.configs:
        configs: list[Any] = [None, *space(workload, args.backend).sample(args.configs, seed=args.seed)]
    else:
        configs = [config_from_args(args.config)]
    programs = [build(workload, args.backend, c) for c in configs]
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(args.seed))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    rows = []

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

    if not args.json:
        where = "wgpu-py (native)" if args.native else "headless Chromium"
        print(f"checking {workload.key} on {args.backend} in {where}: {len(programs)} config(s)")
    if args.native:
        from kgen.native import wgpu_runner

        for program, config in programs:
            got = wgpu_runner.run(program, arrays).reshape(want.shape)
            result = compare(got, want, args.backend)
            report(config, "ok" if result.ok else "wrong", result.reason, (result.max_abs_error, result.max_rel_error))
    else:
        from kgen.browser.measure import Harness
        from kgen.browser.session import BrowserSession

        with BrowserSession() as session:
            harness = Harness(session, arrays, want, args.backend, timeout_s=args.timeout)
            for program, config in programs:
                m = harness.measure(program, time_it=False)
                report(config, m.status, m.reason, (m.max_abs_error, m.max_rel_error))
    if args.json:
        print(json.dumps({"workload": workload.key, "backend": args.backend, "results": rows}, indent=2))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


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
                f"{page['hardwareConcurrency']} threads"
            )
    return 0 if report["ok"] else 1


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
    check.add_argument("--native", action="store_true", help="run through wgpu-py instead of the browser")
    check.add_argument("--seed", type=int, default=0, help="seed of the random inputs and the config sample")
    check.add_argument("--timeout", type=float, default=60.0, help="seconds before a kernel counts as hung")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(func=_cmd_check)

    doctor = sub.add_parser(
        "doctor",
        help="report packages, the browser and its backends (adapter, features, limits); exit 1 if one is missing",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--no-browser", action="store_true", help="do not start the browser")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KgenError as err:
        print(f"kgen: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `kgen ops | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
