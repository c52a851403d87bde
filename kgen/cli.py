"""The ``kgen`` command line: the one top layer that may call both ``kgen`` and ``tuner``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from kgen.errors import KgenError


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


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


def _cmd_doctor(args: argparse.Namespace) -> int:
    from kgen.doctor import diagnose

    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"kgen {report['kgen']} on Python {report['python']}")
        print("packages:")
        for name, version in report["packages"].items():
            print(f"  {name:<12} {version or 'not installed'}")
        chromium = report["chromium"]
        found = chromium["version"] or "not found (run make setup, or set KGEN_CHROMIUM)"
        print(f"chromium: {chromium['path']}: {found}")
    return 0 if report["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgen",
        description="Generate deep-learning kernels for web browsers (WebGPU, WebGL2, WebAssembly, JS) "
        "and autotune them in real headless Chromium.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ops = sub.add_parser("ops", help="list every op with its inputs and attributes")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.set_defaults(func=_cmd_ops)

    doctor = sub.add_parser(
        "doctor",
        help="report Python packages and the browser kgen measures in; exit 1 if something is missing",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
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
