"""The IR printed as WebAssembly text (WAT), assembled in-process by ``wasmtime.wat2wasm``.

Each kernel is one module exporting ``run(begin, end)``: it computes tiles ``begin .. end - 1`` of its launch, so
threads can split a launch. Every kernel of a program imports the same linear memory, in which the renderer
places each buffer at a fixed byte offset (``BufferInfo.offset``); addresses are then constants folded into the
loads' ``offset=`` immediates. exp and tanh are computed inline; log and pow come from the page's ``Math``
(import module ``math``).

Values are ``f32``/``i32`` scalars or ``v128`` vectors (``f32x4``, and ``i32x4`` lane masks for conditions).
A guarded read is read anyway and its value discarded where the guard is false: the memory plan
(``kgen.codegen.memory``) keeps every index a read can reach inside memory, so this never traps; a read whose
reach is unknown reads index 0 instead where its guard is false.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import sympy
import wasmtime

from kgen.codegen.cstyle import shifted_division
from kgen.codegen.memory import PAGE, placed_buffers, plan_memory, reach
from kgen.codegen.program import ONE_THREAD, CompiledKernel, CompiledProgram, RenderOptions
from kgen.errors import KgenError
from kgen.scheduling import ir
from kgen.te import index as ix
from kgen.te.expr import Binary, Cast, Compare, Const, Expr, IndexCond, Select, Unary

F32_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div", "max": "max", "min": "min"}
I32_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "div": "div_s"}
F32_COMPARE = {"lt": "lt", "le": "le", "gt": "gt", "ge": "ge", "eq": "eq", "ne": "ne"}
I32_COMPARE = {"lt": "lt_s", "le": "le_s", "gt": "gt_s", "ge": "ge_s", "eq": "eq", "ne": "ne"}
RELATIONS = {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"}
MATH = ("log", "pow")  # imported from JavaScript's Math (f64)

HELPERS = {
    "floordiv": "(func $floordiv (param $a i32) (param $b i32) (result i32)\n"
    "  (if (result i32) (i32.ge_s (local.get $a) (i32.const 0))\n"
    "    (then (i32.div_s (local.get $a) (local.get $b)))\n"
    "    (else (i32.sub (i32.const 0) (i32.div_s (i32.sub (i32.sub (local.get $b) (i32.const 1)) (local.get $a))"
    " (local.get $b))))))",
    "floormod": "(func $floormod (param $a i32) (param $b i32) (result i32)\n"
    "  (i32.sub (local.get $a) (i32.mul (local.get $b) (call $floordiv (local.get $a) (local.get $b)))))",
    "imin": "(func $imin (param $a i32) (param $b i32) (result i32)\n"
    "  (select (local.get $a) (local.get $b) (i32.lt_s (local.get $a) (local.get $b))))",
    "imax": "(func $imax (param $a i32) (param $b i32) (result i32)\n"
    "  (select (local.get $a) (local.get $b) (i32.gt_s (local.get $a) (local.get $b))))",
    "iabs": "(func $iabs (param $a i32) (result i32)\n"
    "  (select (local.get $a) (i32.sub (i32.const 0) (local.get $a)) (i32.ge_s (local.get $a) (i32.const 0))))",
}


def _exp(arg: str, lanes: int, names: tuple[str, str, str, str], fused: bool = False) -> str:
    """exp(``arg``) in WebAssembly itself (Cephes' expf), as one expression: x = n·ln2 + r with n whole (ln2 in two
    parts, so r is exact), a degree-7 polynomial for e^r, 2^n built in the exponent bits; 0 below -87.34 and +inf
    above 88.72 (where float32 underflows and overflows), 2.4e38 between 88.38 and 88.72, NaN kept. Relative error
    under 1e-7 elsewhere. ``names`` are four locals (the argument, x, n, r), set by ``local.tee`` where they are
    first read in evaluation order. Inline, not a function: a call clobbers every vector register, so a matmul's
    accumulators were spilled around each GELU of its epilogue. ``fused`` (4 lanes, relaxed SIMD): the reduction
    and the polynomial in fused multiply-adds, 22 vector operations where they took 30 (softmax's exps were a fifth of
    DeiT-small's attention on wasm)."""
    v, i = ("f32x4", "i32x4") if lanes == 4 else ("f32", "i32")
    a, x, n, r = names
    fused = fused and lanes == 4

    def const(value: float) -> str:
        return _f32(value, lanes)

    def madd(p: str, q: str, c: str) -> str:
        return f"(f32x4.relaxed_madd {p} {q} {c})" if fused else f"({v}.add ({v}.mul {p} {q}) {c})"

    def icon(value: int) -> str:
        return f"(v128.const i32x4 {' '.join([str(value)] * 4)})" if lanes == 4 else f"(i32.const {value})"

    def pick(condition: str, value: str, otherwise: str) -> str:
        if lanes == 4:
            return f"(v128.bitselect {value} {otherwise} {condition})"
        return f"(select {value} {otherwise} {condition})"

    lower, upper = (f"{v}.pmax", f"{v}.pmin") if lanes == 4 else (f"{v}.max", f"{v}.min")  # NaN kept either way
    clamped = f"({upper} ({lower} (local.tee {a} {arg}) {const(-87.33654022216797)}) {const(88.37626266479492)})"
    ln2_high, ln2_low = const(0.693359375), const(-2.12194440e-4)
    if fused:  # operands are evaluated in order: x and n are set before the fused steps read them
        whole_n = f"(local.tee {n} ({v}.nearest ({v}.mul (local.tee {x} {clamped}) {const(1.4426950408889634)})))"
        high = f"(local.set {r} (f32x4.relaxed_nmadd {whole_n} {ln2_high} (local.get {x})))"
        reduced = f"(block (result v128) {high} (f32x4.relaxed_nmadd (local.get {n}) {ln2_low} (local.get {r})))"
    else:
        whole_n = f"(local.tee {n} ({v}.nearest ({v}.mul (local.get {x}) {const(1.4426950408889634)})))"
        high = f"({v}.sub (local.tee {x} {clamped}) ({v}.mul {whole_n} {ln2_high}))"
        reduced = f"({v}.sub {high} ({v}.mul (local.get {n}) {ln2_low}))"
    poly = const(1.9875691500e-4)
    for k, c in enumerate((1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)):
        rr = f"(local.tee {r} {reduced})" if k == 0 else f"(local.get {r})"
        poly = madd(poly, rr, const(c))
    square = f"({v}.mul (local.get {r}) (local.get {r}))"
    poly = f"({v}.add {madd(poly, square, f'(local.get {r})')} {const(1.0)})"
    whole = f"({i}.trunc_sat_{v}_s (local.get {n}))"
    power = f"({i}.shl ({i}.add {whole} {icon(127)}) (i32.const 23))"
    if lanes == 1:
        power = f"(f32.reinterpret_i32 {power})"
    value = f"({v}.mul {poly} {power})"
    value = pick(f"({v}.gt (local.get {a}) {const(88.72283935546875)})", const(float("inf")), value)
    return pick(f"({v}.lt (local.get {a}) {const(-87.33654022216797)})", const(0.0), value)


def _f32(value: float, lanes: int) -> str:
    """A float32 constant, splatted into a vector where ``lanes`` is 4."""
    return f"(v128.const f32x4 {' '.join([repr(value)] * 4)})" if lanes == 4 else f"(f32.const {value!r})"


def _math_helpers(fn: str) -> dict[str, str]:
    """f32 and f32x4 wrappers of an imported f64 ``Math`` function (lane by lane for vectors)."""
    params = ["$a", "$b"] if fn == "pow" else ["$a"]
    sig = " ".join(f"(param {p} f32)" for p in params)
    promoted = " ".join(f"(f64.promote_f32 (local.get {p}))" for p in params)
    scalar = f"(func ${fn} {sig} (result f32)\n  (f32.demote_f64 (call $m_{fn} {promoted})))"
    vsig = " ".join(f"(param {p} v128)" for p in params)

    def lane(k: int) -> str:
        args = " ".join(f"(f32x4.extract_lane {k} (local.get {p}))" for p in params)
        return f"(call ${fn} {args})"

    vector = f"(f32x4.splat {lane(0)})"
    for k in range(1, 4):
        vector = f"(f32x4.replace_lane {k} {vector} {lane(k)})"
    return {fn: scalar, f"{fn}4": f"(func ${fn}4 {vsig} (result v128)\n  {vector})"}


@dataclass(frozen=True)
class Val:
    """Printed value: its text, lanes (1 or 4) and kind ("f32" or "i32"; i32 lanes are masks when 4 wide)."""

    text: str
    lanes: int
    kind: str


# -- one kernel -------------------------------------------------------------------------------------------------


class _KernelPrinter:
    def __init__(self, kernel: ir.Kernel, offsets: dict[str, int], memory: str) -> None:
        self.kernel = kernel
        self.ranges = dict(kernel.ranges)
        self.offsets = offsets
        self.memory = memory
        self.locals: dict[str, str] = {}
        self.helpers: dict[str, str] = {}
        self.imports: set[str] = set()
        self.memo: dict[int, tuple] = {}  # structure keys of the statement being printed
        self.computed: dict[tuple, Val] = {}  # its repeated subexpressions, in locals

    def once(self, value: Expr, pad: str) -> list[str]:
        """Sets of locals, before a statement, to the subexpressions that ``value`` repeats (V8 does not merge
        them, a call least of all: GELU's erf reads its clamped argument three times and its square in two
        polynomials). ``value`` then reads those locals."""
        self.memo, self.computed = {}, {}
        lines = []
        for node in ir.repeated(value, self.memo):
            v = self.value(node)
            name = self.local(f"cse{len(self.locals)}", "v128" if v.lanes == 4 else v.kind)
            lines.append(f"{pad}(local.set {name} {v.text})")
            self.computed[ir.structure(node, self.memo)] = Val(f"(local.get {name})", v.lanes, v.kind)
        return lines

    def fail(self, what: str) -> KgenError:
        return KgenError(f"WebAssembly renderer: kernel {self.kernel.name}: {what}")

    def local(self, name: str, type_: str) -> str:
        if self.locals.setdefault(name, type_) != type_:
            raise self.fail(f"local {name} declared as both {self.locals[name]} and {type_}")
        return f"${name}"

    def helper(self, name: str) -> str:
        if name in HELPERS:
            self.helpers[name] = HELPERS[name]
            if name == "floormod":
                self.helpers["floordiv"] = HELPERS["floordiv"]
        else:
            base = name.rstrip("4")
            self.helpers.update(_math_helpers(base))
            self.imports.add(base)
        return f"${name}"

    def exp(self, arg: str, lanes: int) -> str:
        type_ = "v128" if lanes == 4 else "f32"
        names = tuple(self.local(f"exp{lanes}_{part}", type_) for part in "axnr")
        return _exp(arg, lanes, names, self.kernel.fused_multiply_add)  # type: ignore[arg-type]

    def tanh(self, arg: str, lanes: int) -> str:
        """tanh(x) = sign(x) · (1 - 2 / (exp(2|x|) + 1)), |x| clamped to 9 (tanh(9) is 1.0 in float32, and exp never
        overflows): inline like exp, where a call into JavaScript's Math.tanh left WebAssembly once per lane."""
        x = self.local(f"tanh{lanes}_x", "v128" if lanes == 4 else "f32")
        p, smaller = ("f32x4", "f32x4.pmin") if lanes == 4 else ("f32", "f32.min")
        magnitude = f"({smaller} ({p}.abs (local.tee {x} {arg})) {_f32(9.0, lanes)})"
        e = self.exp(f"({p}.mul {magnitude} {_f32(2.0, lanes)})", lanes)
        r = f"({p}.sub {_f32(1.0, lanes)} ({p}.div {_f32(2.0, lanes)} ({p}.add {e} {_f32(1.0, lanes)})))"
        if lanes == 4:  # r is not negative: x's sign bit or-ed in
            return f"(v128.or {r} (v128.and (local.get {x}) {_f32(-0.0, 4)}))"
        return f"(f32.copysign {r} (local.get {x}))"

    # -- index math (i32) ------------------------------------------------------------------------------
    def index(self, e: sympy.Basic) -> str:
        if e is sympy.true or e is sympy.false:
            return f"(i32.const {int(e is sympy.true)})"
        if e.is_Integer:
            return f"(i32.const {int(e)})"
        if e.is_Symbol:
            return f"(local.get {self.local(f'i_{e.name}', 'i32')})"
        if e.is_Add:
            terms = e.as_ordered_terms()
            out = self.index(terms[0])
            for t in terms[1:]:
                coeff, _ = t.as_coeff_Mul()
                out = f"(i32.sub {out} {self.index(-t)})" if coeff.is_negative else f"(i32.add {out} {self.index(t)})"
            return out
        if e.is_Mul:
            coeff, rest = e.as_coeff_Mul()
            out = None
            for f in sympy.Mul.make_args(rest):
                out = self.index(f) if out is None else f"(i32.mul {out} {self.index(f)})"
            return out if coeff == 1 else f"(i32.mul (i32.const {int(coeff)}) {out})"
        if isinstance(e, ix.FloorDiv | ix.FloorMod):
            return self.divide(e)
        if isinstance(e, sympy.Min | sympy.Max):
            return self.fold(f"call {self.helper('imin' if isinstance(e, sympy.Min) else 'imax')}", e.args)
        if isinstance(e, sympy.Abs):
            return f"(call {self.helper('iabs')} {self.index(e.args[0])})"
        if isinstance(e, sympy.And | sympy.Or):
            return self.fold("i32.and" if isinstance(e, sympy.And) else "i32.or", e.args)
        if isinstance(e, sympy.Not):
            return f"(i32.eqz {self.index(e.args[0])})"
        if isinstance(e, sympy.core.relational.Relational):
            return f"(i32.{RELATIONS[e.rel_op]} {self.index(e.lhs)} {self.index(e.rhs)})"
        raise self.fail(f"cannot print index expression {e}")

    def fold(self, op: str, args: tuple[sympy.Basic, ...]) -> str:
        """``(op (op a b) c)``: a binary instruction (or call) over two or more index arguments."""
        out = self.index(args[0])
        for a in args[1:]:
            out = f"({op} {out} {self.index(a)})"
        return out

    def divide(self, e: ix.FloorDiv | ix.FloorMod) -> str:
        """Like the C-style printers: a dividend is shifted to be non-negative where its bound is known."""
        a, b, shift = shifted_division(e, self.ranges, self.fail)
        if shift is None:
            fn = self.helper("floordiv" if isinstance(e, ix.FloorDiv) else "floormod")
            return f"(call {fn} {self.index(a)} (i32.const {b}))"
        a_text = self.index(a) if shift == 0 else f"(i32.add {self.index(a)} (i32.const {shift * b}))"
        if isinstance(e, ix.FloorMod):
            return f"(i32.rem_u {a_text} (i32.const {b}))"
        quotient = f"(i32.div_u {a_text} (i32.const {b}))"
        return quotient if shift == 0 else f"(i32.sub {quotient} (i32.const {shift}))"

    # -- memory ------------------------------------------------------------------------------------------
    def address(self, buf: ir.Buffer, index: sympy.Expr, span: int, guard: str | None) -> tuple[str, int]:
        """(address operand, offset immediate) of ``buf[index]``, read ``span`` elements wide; the constant part of
        the index goes into the immediate where the rest cannot be negative. With ``guard``, a reach that is
        unknown reads index 0 where the guard is false."""
        if buf.scope != "global":
            raise self.fail(f"buffer {buf.name} is {buf.scope}: WebAssembly kernels have global buffers only")
        base = self.offsets[buf.name]
        if reach(self.kernel, ir.BufLoad(buf, index, span)) is None and guard is not None:
            return f"(i32.shl (select {self.index(index)} (i32.const 0) {guard}) (i32.const 2))", base
        constant, rest = index.as_coeff_Add()
        lo, _ = ix.bounds(rest, self.ranges)
        if lo is not None and lo >= 0 and base + 4 * int(constant) >= 0:
            return f"(i32.shl {self.index(rest)} (i32.const 2))", base + 4 * int(constant)
        return f"(i32.add (i32.const {base}) (i32.shl {self.index(index)} (i32.const 2)))", 0

    def load(self, e: ir.BufLoad) -> Val:
        kind = "f32" if e.dtype == "float32" else "i32"
        cond = None if e.guard is sympy.true else self.index(e.guard)
        addr, offset = self.address(e.buffer, e.index, e.span, cond)
        if e.lanes == 1:
            read = f"({kind}.load offset={offset} {addr})"
        elif e.stride == 1:
            read = f"(v128.load offset={offset} {addr})"
        elif e.stride == 2:  # the even lanes of two neighbouring 4-wide reads
            even = " ".join(str(b) for lane in (0, 2, 4, 6) for b in range(4 * lane, 4 * lane + 4))
            read = f"(i8x16.shuffle {even} (v128.load offset={offset} {addr}) (v128.load offset={offset + 16} {addr}))"
        else:
            raise self.fail(f"buffer {e.buffer.name}: a {e.lanes}-lane read with stride {e.stride}")
        if cond is None:
            return Val(read, e.lanes, kind)
        fallback = self.const(e.default, e.dtype)
        if e.lanes == 4:
            fallback = Val(f"({kind}x4.splat {fallback.text})", 4, kind)
        return Val(f"(select {read} {fallback.text} {cond})", e.lanes, kind)

    # -- values ------------------------------------------------------------------------------------------
    def const(self, v: float | int | bool, dtype: str) -> Val:
        if dtype in ("bool", "int32"):
            return Val(f"(i32.const {int(v)})", 1, "i32")
        f = float(v)
        if f != f:
            raise self.fail("NaN constants are not supported")
        text = "inf" if f == float("inf") else "-inf" if f == float("-inf") else repr(f)
        return Val(f"(f32.const {text})", 1, "f32")

    def widen(self, v: Val, lanes: int) -> str:
        """``v`` as ``lanes`` lanes: a scalar is splatted (a condition to an all-ones/all-zeros lane mask)."""
        if v.lanes == lanes:
            return v.text
        if v.kind == "i32":
            return f"(i32x4.splat (i32.sub (i32.const 0) {v.text}))"
        return f"(f32x4.splat {v.text})"

    def value(self, e: Expr) -> Val:
        if self.computed:
            done = self.computed.get(ir.structure(e, self.memo))
            if done is not None:
                return done
        match e:
            case Const(value=v, dtype=dt):
                return self.const(v, dt)
            case ir.Local(name=name, dtype=dt, lanes=lanes, lane=lane):
                kind = "f32" if dt == "float32" else "i32"
                text = f"(local.get ${name})"
                if lane is None:
                    return Val(text, lanes, kind)
                if kind == "i32":
                    return Val(f"(i32.ne (i32x4.extract_lane {lane} {text}) (i32.const 0))", 1, kind)
                return Val(f"(f32x4.extract_lane {lane} {text})", 1, kind)
            case ir.BufLoad():
                return self.load(e)
            case ir.Vector(values=values):
                first = values[0]
                if isinstance(first, ir.BufLoad) and first.guard is sympy.true and all(v is first for v in values):
                    addr, offset = self.address(first.buffer, first.index, 1, None)
                    kind = "f32" if e.dtype == "float32" else "i32"
                    return Val(f"(v128.load32_splat offset={offset} {addr})", 4, kind)
                if all(isinstance(v, IndexCond) and v.cond in (sympy.true, sympy.false) for v in values):
                    lanes = " ".join("-1" if v.cond is sympy.true else "0" for v in values)  # type: ignore[union-attr]
                    return Val(f"(v128.const i32x4 {lanes})", 4, "i32")
                return self.gather([self.value(v) for v in values])
            case Unary(func=f, x=x):
                return self.unary(f, self.value(x))
            case Binary(op=op, a=a, b=b):
                return self.binary(op, a, b)
            case Compare(op=op, a=a, b=b):
                va, vb = self.value(a), self.value(b)
                lanes = max(va.lanes, vb.lanes)
                table = F32_COMPARE if va.kind == "f32" else I32_COMPARE
                prefix = va.kind if lanes == 1 else f"{va.kind}x4"
                return Val(f"({prefix}.{table[op]} {self.widen(va, lanes)} {self.widen(vb, lanes)})", lanes, "i32")
            case IndexCond(cond=cond):
                return Val(self.index(cond), 1, "i32")
            case Select(cond=c, a=a, b=b):
                vc, va, vb = self.value(c), self.value(a), self.value(b)
                lanes = max(vc.lanes, va.lanes, vb.lanes)
                ta, tb = self.widen(va, lanes), self.widen(vb, lanes)
                if vc.lanes == 4:
                    if isinstance(b, Const) and b.value == 0 and math.copysign(1.0, b.value) > 0 and va.kind == "f32":
                        return Val(f"(v128.and {ta} {vc.text})", 4, va.kind)
                    return Val(f"(v128.bitselect {ta} {tb} {vc.text})", 4, va.kind)
                return Val(f"(select {ta} {tb} {vc.text})", lanes, va.kind)
            case Cast(x=x, dtype=dt):
                return self.cast(self.value(x), x.dtype, dt)
        raise self.fail(f"cannot print {type(e).__name__}")

    def gather(self, lanes: list[Val]) -> Val:
        kind = lanes[0].kind
        out = self.widen(lanes[0], 4)
        if all(v.text == lanes[0].text for v in lanes):
            return Val(out, 4, kind)
        for k, v in enumerate(lanes[1:], start=1):
            text = v.text if kind == "f32" else f"(i32.sub (i32.const 0) {v.text})"
            out = f"({kind}x4.replace_lane {k} {out} {text})"
        return Val(out, 4, kind)

    def unary(self, f: str, v: Val) -> Val:
        if v.kind != "f32":
            raise self.fail(f"{f} of integers")
        p = "f32" if v.lanes == 1 else "f32x4"
        suffix = "" if v.lanes == 1 else "4"
        match f:
            case "neg" | "abs" | "sqrt" | "floor" | "ceil" | "trunc":
                return Val(f"({p}.{f} {v.text})", v.lanes, "f32")
            case "exp":
                return Val(self.exp(v.text, v.lanes), v.lanes, "f32")
            case "tanh":
                return Val(self.tanh(v.text, v.lanes), v.lanes, "f32")
            case "log":
                return Val(f"(call {self.helper(f + suffix)} {v.text})", v.lanes, "f32")
            case "sigmoid":
                one = self.widen(Val("(f32.const 1.0)", 1, "f32"), v.lanes)
                e = self.exp(f"({p}.neg {v.text})", v.lanes)
                return Val(f"({p}.div {one} ({p}.add {one} {e}))", v.lanes, "f32")
        raise self.fail(f"no {f} on WebAssembly")

    def binary(self, op: str, a: Expr, b: Expr) -> Val:
        if op == "add" and self.kernel.fused_multiply_add:
            for acc, prod in ((a, b), (b, a)):
                if isinstance(prod, Binary) and prod.op == "mul":
                    x, y, z = self.value(prod.a), self.value(prod.b), self.value(acc)
                    if x.kind == "f32" and 4 in (x.lanes, y.lanes, z.lanes):
                        args = " ".join(self.widen(v, 4) for v in (x, y, z))
                        return Val(f"(f32x4.relaxed_madd {args})", 4, "f32")
        va, vb = self.value(a), self.value(b)
        lanes = max(va.lanes, vb.lanes)
        ta, tb = self.widen(va, lanes), self.widen(vb, lanes)
        if op == "pow":
            if va.kind != "f32":
                raise self.fail("pow of integers")
            return Val(f"(call {self.helper('pow' + ('4' if lanes == 4 else ''))} {ta} {tb})", lanes, "f32")
        if op in ("max", "min") and va.kind == "f32" and lanes == 4:
            bounded = _bound_first(a, b, ta, tb)
            if bounded is not None:
                return Val(f"(f32x4.p{op} {bounded[0]} {bounded[1]})", 4, "f32")
        table = F32_BINARY if va.kind == "f32" else I32_BINARY
        if op not in table or (va.kind == "i32" and lanes == 4):
            raise self.fail(f"no {op} of {va.kind} x{lanes}")
        prefix = va.kind if lanes == 1 else f"{va.kind}x4"
        return Val(f"({prefix}.{table[op]} {ta} {tb})", lanes, va.kind)

    def cast(self, v: Val, src: str, dst: str) -> Val:
        if v.lanes == 4:
            if src == "bool" and dst == "float32":
                return Val(f"(v128.and {v.text} (f32x4.splat (f32.const 1.0)))", 4, "f32")
            raise self.fail(f"no vector cast from {src} to {dst}")
        match src, dst:
            case ("int32", "float32"):
                return Val(f"(f32.convert_i32_s {v.text})", 1, "f32")
            case ("bool", "float32"):
                return Val(f"(f32.convert_i32_u {v.text})", 1, "f32")
            case ("float32", "int32"):
                return Val(f"(i32.trunc_sat_f32_s {v.text})", 1, "i32")
            case ("float32", "bool"):
                return Val(f"(f32.ne {v.text} (f32.const 0.0))", 1, "i32")
            case (_, _) if {src, dst} <= {"int32", "bool"}:
                return Val(v.text if dst == "int32" else f"(i32.ne {v.text} (i32.const 0))", 1, "i32")
        raise self.fail(f"no cast from {src} to {dst}")

    # -- statements ----------------------------------------------------------------------------------------
    def stmt(self, s: ir.Stmt, depth: int) -> list[str]:
        pad = "  " * depth
        match s:
            case ir.Seq(body=body):
                return [line for child in body for line in self.stmt(child, depth)]
            case ir.Let(var=var, value=value):
                return [f"{pad}(local.set {self.local(f'i_{var.name}', 'i32')} {self.index(value)})"]
            case ir.Decl(name=name, dtype=dt, init=init, lanes=lanes):
                before, v = self.once(init, pad), self.value(init)
                type_ = "v128" if lanes == 4 else ("f32" if dt == "float32" else "i32")
                return [*before, f"{pad}(local.set {self.local(name, type_)} {self.widen(v, lanes)})"]
            case ir.Assign(name=name, value=value):
                lanes = 4 if self.locals.get(name) == "v128" else 1
                before = self.once(value, pad)
                return [*before, f"{pad}(local.set ${name} {self.widen(self.value(value), lanes)})"]
            case ir.Store(buffer=buf, index=index, value=value, lanes=lanes):
                before, v = self.once(value, pad), self.value(value)
                addr, offset = self.address(buf, index, lanes, None)
                if lanes == 2:  # the first two lanes of a vector
                    return [*before, f"{pad}(v128.store64_lane offset={offset} 0 {addr} {v.text})"]
                op = "v128.store" if lanes == 4 else f"{'f32' if buf.dtype == 'float32' else 'i32'}.store"
                return [*before, f"{pad}({op} offset={offset} {addr} {self.widen(v, lanes)})"]
            case ir.For(var=var, extent=extent, body=body):
                i = self.local(f"i_{var.name}", "i32")
                label = f"$L_{var.name}"
                return [
                    f"{pad}(local.set {i} (i32.const 0))",
                    f"{pad}(loop {label}",
                    *self.stmt(body, depth + 1),
                    f"{pad}  (local.set {i} (i32.add (local.get {i}) (i32.const 1)))",
                    f"{pad}  (br_if {label} (i32.lt_s (local.get {i}) (i32.const {extent}))))",
                ]
            case ir.If(cond=cond, then=then, orelse=orelse):
                lines = [f"{pad}(if {self.index(cond)}", f"{pad}  (then", *self.stmt(then, depth + 2), f"{pad}  )"]
                if orelse is not None:
                    lines += [f"{pad}  (else", *self.stmt(orelse, depth + 2), f"{pad}  )"]
                return [*lines, f"{pad})"]
            case ir.Barrier():
                raise self.fail("WebAssembly kernels have no workgroup barrier")
        raise self.fail(f"cannot print {type(s).__name__}")

    def render(self) -> str:
        k = self.kernel
        (tiles,) = k.launch
        t = self.local(f"i_{k.thread_vars[0].name}", "i32")
        body = self.stmt(k.body, 3)
        imports = [
            f'  (import "math" "{fn}" (func $m_{fn} {"(param f64) " * (2 if fn == "pow" else 1)}(result f64)))'
            for fn in MATH
            if fn in self.imports
        ]
        locals_ = [f"    (local ${n} {t_})" for n, t_ in self.locals.items()]
        helpers = ["  " + text.replace("\n", "\n  ") for _, text in sorted(self.helpers.items())]
        return "\n".join(
            [
                f";; kgen {k.name}: {tiles} tiles; run(begin, end) computes tiles begin .. end - 1",
                "(module",
                f'  (import "env" "memory" (memory {self.memory}))',
                *imports,
                *helpers,
                '  (func (export "run") (param $begin i32) (param $end i32)',
                *locals_,
                f"    (local.set {t} (local.get $begin))",
                "    (block $done",
                f"      (br_if $done (i32.ge_s (local.get {t}) (local.get $end)))",
                "      (loop $tiles",
                *body,
                f"        (local.set {t} (i32.add (local.get {t}) (i32.const 1)))",
                f"        (br_if $tiles (i32.lt_s (local.get {t}) (local.get $end))))))",
                ")",
                "",
            ]
        )


def _bound_first(a: Expr, b: Expr, ta: str, tb: str) -> tuple[str, str] | None:
    """For a vector max or min against a constant that is not NaN (ReLU, Clip): the operands' texts with the
    other operand first, else None.

    ``f32x4.max``/``min`` propagate NaN and order -0 below +0, which x86 has no instruction for: V8 emits about
    eight for each (a MobileNet expansion conv with its ReLU6 ran at 29 GFLOP/s with them, 44 without).
    ``f32x4.pmax(x, c)`` is ``x < c ? c : x``, one ``maxps``: the same result, a NaN ``x`` included, up to the sign
    of a zero."""
    for x, c, tx, tc in ((a, b, ta, tb), (b, a, tb, ta)):
        if isinstance(c, Const) and not math.isnan(c.value) and not isinstance(x, Const):
            return tx, tc
    return None


def assemble(text: str, name: str) -> bytes:
    """The binary module of a WAT text; a text wat2wasm rejects is a renderer bug, reported with its kernel."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except Exception as err:  # wasmtime raises its own error type with the parser's message
        raise KgenError(f"WebAssembly renderer: kernel {name}: wat2wasm rejected the text: {err}") from err


def render(program: ir.Program, options: RenderOptions = ONE_THREAD) -> CompiledProgram:
    """WAT text, its assembled binary and the memory plan for every kernel of ``program``; with more than one
    thread the memory is shared (and of fixed size, as shared memories must declare a maximum)."""
    threads = options.threads
    offsets, end = options.placement or plan_memory(program)
    pages = max(1, -(-end // PAGE))
    memory = f"{pages} {pages} shared" if threads > 1 else str(pages)
    buffers = placed_buffers(program, offsets)
    kernels = []
    for k in program.launches:
        text = _KernelPrinter(k, offsets, memory).render()
        binary = base64.b64encode(assemble(text, k.name)).decode()
        kernels.append(CompiledKernel(k.name, text, (1, 1, 1), (k.launch[0], 1, 1), (), binary=binary))
    prepare = len(program.prepare) or None
    return CompiledProgram("wasm", buffers, tuple(kernels), memory_bytes=pages * PAGE, threads=threads, prepare=prepare)
