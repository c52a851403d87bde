"""The op library: what each op computes (TE), how it validates its input, and its numpy reference."""

from kgen.ops.registry import Attr, Input, OpDef, all_ops, get_op
from kgen.ops.workload import Workload

__all__ = ["Attr", "Input", "OpDef", "Workload", "all_ops", "get_op"]
