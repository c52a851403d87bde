"""Parsing the command line's description of a workload: ``OP --shape 1x3x8x8,4x3x3x3 --attr pads=1,1,1,1``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kgen.errors import KgenError
from kgen.ops.examples import EXAMPLES
from kgen.ops.workload import Workload


def add_workload_args(parser: argparse.ArgumentParser, op_required: bool = True) -> None:
    if op_required:
        parser.add_argument("op", help="op name (see `kgen ops`)")
    else:
        parser.add_argument("op", nargs="?", help="op name (see `kgen ops`); or --model")
    parser.add_argument(
        "--shape",
        help="input shapes, 'x' between dimensions and ',' between inputs, e.g. 1x64x56x56,64x64x3x3 "
        "(default: a representative workload of the op)",
    )
    parser.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an attribute, e.g. pads=1,1,1,1 or alpha=0.2 (repeatable; with --shape)",
    )
    parser.add_argument("--attrs", metavar="JSON", help="attributes as a JSON object, e.g. '{\"strides\": [2, 2]}'")


def parse_shapes(text: str) -> list[tuple[int, ...]]:
    shapes = []
    for part in text.split(","):
        dims = part.strip().lower().split("x")
        try:
            shape = tuple(int(d) for d in dims)
        except ValueError:
            raise KgenError(f"--shape '{text}': '{part}' is not like 1x64x56x56") from None
        if not shape or any(d <= 0 for d in shape):
            raise KgenError(f"--shape '{text}': dimensions must be positive, got '{part}'")
        shapes.append(shape)
    return shapes


def parse_attr_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        return [parse_attr_value(v) for v in text.split(",")]
    return text


def workload_from_args(args: argparse.Namespace) -> Workload:
    if args.shape is None:
        if args.attr or args.attrs:
            raise KgenError("--attr/--attrs need --shape (the default workload has its own attributes)")
        if args.op not in EXAMPLES:
            raise KgenError(f"unknown op '{args.op}' (see `kgen ops`)")
        shapes, attrs = EXAMPLES[args.op]
        return Workload.create(args.op, shapes, attrs)
    attrs: dict[str, Any] = {}
    if args.attrs:
        try:
            attrs.update(json.loads(args.attrs))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise KgenError(f"--attrs is not a JSON object: {err}") from None
    for item in args.attr:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise KgenError(f"--attr '{item}' is not NAME=VALUE")
        attrs[name] = parse_attr_value(value)
    return Workload.create(args.op, parse_shapes(args.shape), attrs)


def config_from_args(text: str | None, option: str = "--config") -> dict[str, Any] | None:
    """Knob values given as JSON on the command line; errors name ``option`` (--config or --fix)."""
    if text is None:
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise KgenError(f"{option} is not JSON: {err}") from None
    if not isinstance(config, dict):
        raise KgenError(f"{option} must be a JSON object of knob values, e.g. '{{\"tile_b\": 4}}'")
    return config
