"""The x86-64 code V8's TurboFan makes of a WebAssembly kernel in this Chromium, and a count of what it does: for
kernel work, to see the multiply-adds, the reads and the register spills that a WAT text does not show.

    .venv/bin/python -m bench.wasm_disasm conv2d --shape 1x512x14x14,512x1x3x3 --attr group=512 \\
        --attr pads=1,1,1,1 --config '{"tile_a": 7, "tile_b": 16, "stream": 1, "unroll": 2}' [--kernel N] [--code]

Chromium's release build has no disassembler (``--print-wasm-code`` prints nothing), but V8's ``--perf-prof``
writes the code of every function it compiles into a jitdump file (the format of Linux perf's JIT interface).
The kernel (by default the program's last, the op's own) is instantiated in a page of a headless Chromium run
with that flag and without Liftoff, so that TurboFan compiles it at once; its code is read back from the jitdump
and disassembled by binutils' objdump. The flags change the code's speed (a depthwise conv ran 0.053 ms without
them and 0.07-0.08 with), so read the code here and time it with ``kgen bench`` or the tuner.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kgen.browser.executable import require_chromium
from kgen.build import build
from kgen.cli_args import add_workload_args, config_from_args, workload_from_args
from kgen.errors import KgenError
from kgen.scheduling.space import DEFAULT_LIMITS

JIT_CODE_LOAD = 0
#: after the kernel, this much JavaScript is compiled so that V8 writes its buffered jitdump records out
FILLER_FUNCTIONS = 300


@dataclass(frozen=True)
class Code:
    name: str
    code: bytes


def jitdump_functions(path: Path) -> list[Code]:
    """Every function a jitdump file records as loaded (its name and machine code)."""
    data = path.read_bytes()
    offset = struct.unpack_from("<I", data, 8)[0]  # the header's size
    functions = []
    while offset + 16 <= len(data):
        kind, size = struct.unpack_from("<II", data, offset)
        if size == 0 or offset + size > len(data):
            break  # the last record may be cut short where the browser stopped writing
        if kind == JIT_CODE_LOAD:
            code_size = struct.unpack_from("<Q", data, offset + 16 + 24)[0]
            start = offset + 16 + 40
            end = data.index(b"\0", start)
            functions.append(Code(data[start:end].decode(errors="replace"), data[end + 1 : end + 1 + code_size]))
        offset += size
    return functions


def disassemble(code: bytes) -> list[str]:
    """objdump's Intel-syntax lines (offset, instruction) of raw x86-64 code."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise KgenError("bench.wasm_disasm needs binutils' objdump (make setup installs it)")
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        out = subprocess.run(
            [objdump, "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", f.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    lines = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and re.match(r"\s*[0-9a-f]+:$", parts[0]):
            lines.append(f"{parts[0].strip():>6} {parts[2].strip()}")
    return lines


def summary(lines: list[str]) -> dict[str, int]:
    """What the code does: instructions, fused multiply-adds, vector reads (broadcasts included), vector
    writes, and reads and writes of the stack frame (register spills and their reloads)."""
    counts: Counter[str] = Counter(instructions=len(lines))
    for line in lines:
        _, op, operands = (*line.split(None, 2), "", "")[:3]
        memory = "PTR [" in operands
        stack = "[rbp-" in operands or "[rsp" in operands
        vector = "xmm" in operands
        if op.startswith("vfmadd"):
            counts["fma"] += 1
        if vector and memory and not stack:
            counts["vector_stores" if operands.index("PTR") < operands.index("xmm") else "vector_reads"] += 1
        if vector and stack:
            counts["spill_stores" if operands.index("PTR") < operands.index("xmm") else "spill_reads"] += 1
    return dict(counts)


def turbofan_code(binary: bytes, memory_bytes: int, tiles: int) -> list[Code]:
    """The TurboFan functions V8 compiled for a kernel module (``run(begin, end)`` over ``tiles`` tiles, one
    memory of ``memory_bytes``), in a headless Chromium."""
    pages = -(-memory_bytes // 65536)
    module = base64.b64encode(binary).decode()
    body = "'let s = 0; for (let i = 0; i < x; i++) s += i * ' + k + '; return s;'"
    filler = f"for (let k = 0; k < {FILLER_FUNCTIONS}; k++) {{ const f = new Function('x', {body}); "
    filler += "for (let j = 0; j < 20000; j++) f(10); }"
    page = f"""<script>
const bytes = Uint8Array.from(atob('{module}'), c => c.charCodeAt(0));
const memory = new WebAssembly.Memory({{initial: {pages}, maximum: {pages}}});
const kernel = new WebAssembly.Instance(new WebAssembly.Module(bytes), {{env: {{memory}}}});
for (let i = 0; i < 10; i++) kernel.exports.run(0, {tiles});
{filler}
document.title = 'done';
</script>"""
    with tempfile.TemporaryDirectory(prefix="kgen-disasm-") as tmp:
        html = Path(tmp) / "kernel.html"
        html.write_text(page)
        flags = f"--perf-prof --no-liftoff --perf-prof-path={tmp}"
        args = [str(require_chromium()), "--headless=new", "--no-sandbox", "--disable-dev-shm-usage"]
        args += [f"--user-data-dir={tmp}/profile", f"--js-flags={flags}", "--dump-dom", html.as_uri()]
        # in the temporary folder: --perf-prof also makes V8 write an isolate log into the working directory
        dom = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp).stdout
        if "<title>done" not in dom:
            raise KgenError("bench.wasm_disasm: the kernel's page did not finish in Chromium")
        found = [f for dump in Path(tmp).glob("jit-*.dump") for f in jitdump_functions(dump)]
    return [f for f in found if f.name.startswith("JS:wasm-function") and "turbofan" in f.name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wasm_disasm", description=__doc__.split("\n\n")[0])
    add_workload_args(parser)
    parser.add_argument("--config", metavar="JSON", help="knob values (missing knobs take their defaults; 1 thread)")
    parser.add_argument("--kernel", type=int, default=-1, help="which kernel of the program (default: the last)")
    parser.add_argument("--code", action="store_true", help="print the code after the counts")
    args = parser.parse_args(argv)
    try:
        workload = workload_from_args(args)
        config = {**(config_from_args(args.config) or {}), "threads": 1}
        limits = {**DEFAULT_LIMITS, "relaxed_simd": 1}
        program, full = build(workload, "wasm", config, limits)
        if not -len(program.kernels) <= args.kernel < len(program.kernels):
            names = ", ".join(k.name for k in program.kernels)
            raise KgenError(f"--kernel {args.kernel}: the program has {len(program.kernels)} kernels ({names})")
        kernel = program.kernels[args.kernel]
        assert kernel.binary is not None and program.memory_bytes is not None
        functions = turbofan_code(base64.b64decode(kernel.binary), program.memory_bytes, kernel.grid[0])
    except KgenError as err:
        print(f"bench.wasm_disasm: {err}", file=sys.stderr)
        return 1
    if not functions:
        print("bench.wasm_disasm: Chromium's jitdump holds no TurboFan code of the kernel", file=sys.stderr)
        return 1
    print(f"{workload.key} kernel {kernel.name} ({kernel.grid[0]} tiles)\nconfig {json.dumps(full, sort_keys=True)}")
    for f in functions:
        lines = disassemble(f.code)
        print(f"{f.name}: {json.dumps(summary(lines))}")
        if args.code:
            print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
