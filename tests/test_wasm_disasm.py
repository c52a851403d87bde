"""bench.wasm_disasm: the x86-64 code TurboFan makes of a kernel in Chromium, read back from V8's jitdump."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bench.wasm_disasm import jitdump_functions, main, summary


def test_a_jitdump_is_read_record_by_record_and_a_cut_record_ends_it(tmp_path):
    """Header, then records; a code-load record (id 0) carries the function's name and code; other records are
    skipped; a record cut short (the browser stopped writing mid-record) ends the file."""
    header = struct.pack("<IIIIIIQQ", 0x4A695444, 1, 40, 62, 0, 1, 0, 0)

    def load(name: bytes, code: bytes) -> bytes:
        body = struct.pack("<IIQQQQ", 1, 1, 0x1000, 0x1000, len(code), 7) + name + b"\0" + code
        return struct.pack("<IIQ", 0, 16 + len(body), 0) + body

    other = struct.pack("<IIQ", 3, 24, 0) + b"\0" * 8
    data = header + load(b"JS:wasm-function[0]-0-turbofan", b"\x90\xc3") + other + load(b"cut", b"\x90" * 64)[:40]
    (tmp_path / "jit-1.dump").write_bytes(data)
    (function,) = jitdump_functions(tmp_path / "jit-1.dump")
    assert function.name == "JS:wasm-function[0]-0-turbofan" and function.code == b"\x90\xc3"


def test_the_counts_tell_spills_from_reads_and_writes():
    lines = [
        "0: vmovdqu xmm1,XMMWORD PTR [rcx+rbx*1+0x40]",
        "8: vbroadcastss xmm2,DWORD PTR [r8+rdx*1]",
        "e: vfmadd231ps xmm0,xmm1,xmm2",
        "13: vmovups XMMWORD PTR [rbp-0x40],xmm0",
        "18: vmovups xmm3,XMMWORD PTR [rbp-0x40]",
        "1d: vmovdqu XMMWORD PTR [rcx+rbx*1+0x80],xmm3",
        "24: add esi,0x1",
    ]
    counts = summary(lines)
    assert counts == {
        "instructions": 7,
        "vector_reads": 2,
        "fma": 1,
        "spill_stores": 1,
        "spill_reads": 1,
        "vector_stores": 1,
    }


@pytest.mark.browser
def test_the_code_of_a_matmul_tile_holds_its_fused_multiply_adds(tmp_path):
    """A 6x8 matmul tile with the reduction split by 4: 6 * 2 * 4 = 48 fused multiply-adds in TurboFan's code; the
    browser's files (jitdump, V8's isolate log) stay out of the working directory."""
    config = '{"tile_axis": "i0", "tile_a": 6, "tile_b": 8, "vector": "f32x4_fma", "k_unroll": 4}'
    cmd = [sys.executable, "-m", "bench.wasm_disasm", "matmul", "--shape", "64x64,64x64", "--config", config]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert not list(tmp_path.iterdir())
    line = next(line for line in out.stdout.splitlines() if line.startswith("JS:wasm-function"))
    assert '"fma": 48' in line and '"vector_reads": ' in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "{"], "--config is not JSON"),
        (["--config", '{"wrap": 1}'], "unknown knob 'wrap'"),  # no padding: no wrap
        (["--kernel", "9"], "--kernel 9: the program has 3 kernels"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(capsys, args, message):
    assert main(["conv2d", "--shape", "1x8x14x14,8x8x3x3", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
