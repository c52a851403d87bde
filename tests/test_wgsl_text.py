"""Generated WGSL is pinned (golden files) and deterministic: same inputs, byte-identical text, in any process.

After an intended change of the generated code, refresh the files with ``KGEN_UPDATE_GOLDEN=1 pytest
tests/test_wgsl_text.py`` and review the diff.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kgen.build import build
from kgen.ops import Workload

GOLDEN = Path(__file__).parent / "golden"
PINNED = {
    "conv2d_default": ("conv2d", [(1, 4, 6, 6), (8, 4, 3, 3), (8,)], {"pads": (1, 1, 1, 1)}, None),
    "conv2d_tiled": (
        "conv2d",
        [(1, 4, 6, 6), (8, 4, 3, 3)],
        {"pads": (1, 1, 1, 1)},
        {"tile_axis": "m", "tile_a": 2, "tile_b": 2, "unroll": 1, "vec4": 1},
    ),
    "matmul_vec4": ("matmul", [(8, 16), (16, 8)], {}, {"tile_a": 2, "tile_b": 4, "k_unroll": 4, "vec4": 1}),
    "softmax": ("softmax", [(3, 7)], {}, None),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_golden_wgsl(name):
    op, shapes, attrs, config = PINNED[name]
    text = build(Workload.create(op, shapes, attrs), "webgpu", config)[0].source
    path = GOLDEN / f"{name}.wgsl"
    if os.environ.get("KGEN_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_same_inputs_give_identical_text_across_processes():
    script = (
        "from tests.test_wgsl_text import PINNED\n"
        "from kgen.ops import Workload\n"
        "from kgen.build import build\n"
        "for op, shapes, attrs, config in PINNED.values():\n"
        "    print(build(Workload.create(op, shapes, attrs), 'webgpu', config)[0].digest)\n"
    )
    digests = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert digests[0] == digests[1]
    assert len(set(digests[0].split())) == len(PINNED)
