"""WebGPU kernels in real headless Chromium: every op, default and sampled configs, odd and even shapes; and
failures (compile errors, hung kernels, a killed browser) come back as results while the batch goes on."""

import dataclasses
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from kgen.browser.measure import Harness
from kgen.build import build, space
from kgen.codegen.program import CompiledProgram
from kgen.errors import KgenError
from kgen.ops import Workload, all_ops
from tests.browser_cases import CASES, cases_of

pytestmark = pytest.mark.browser


def harness_for(browser, workload, **kwargs):
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    return Harness(browser, arrays, workload.opdef.reference(arrays, workload.attr_dict), "webgpu", **kwargs)


def test_every_op_has_browser_cases():
    assert sorted(CASES) == sorted(op.name for op in all_ops())


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_numpy_in_browser(browser, op):
    for shapes, attrs in cases_of(op):
        workload = Workload.create(op, shapes, attrs)
        harness = harness_for(browser, workload)
        configs = [None, *space(workload, "webgpu").sample(2, seed=len(shapes))]
        programs = [build(workload, "webgpu", c)[0] for c in configs]
        for config, result in zip(configs, harness.measure_batch(programs, time_it=False), strict=True):
            assert result.ok, f"{workload.key} {config}: {result.status} {result.reason}"


def relu_program():
    workload = Workload.create("relu", [(64,)])
    return workload, build(workload, "webgpu")[0]


def with_source(program: CompiledProgram, source: str) -> CompiledProgram:
    kernel = dataclasses.replace(program.kernels[0], source=source)
    return dataclasses.replace(program, kernels=(kernel,))


HUNG = """
@group(0) @binding(0) var<storage, read> b_in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> b_out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var acc = 0.0;
  for (var i = 0u; i < 2000000000u; i = i + 1u) { acc = acc + b_in0[(i + gid.x) % 64u]; }
  b_out[gid.x] = acc;
}
"""


def test_invalid_wgsl_and_hung_kernel_are_failed_results_and_the_batch_goes_on(browser):
    workload, good = relu_program()
    harness = harness_for(browser, workload, timeout_s=8)
    invalid = with_source(good, "this is not WGSL")
    results = harness.measure_batch([invalid, with_source(good, HUNG), good])
    assert [r.status for r in results] == ["compile_error", "timeout", "ok"]
    assert results[0].reason == "relu:1:1: unexpected token"  # the compiler's own message, with its place
    assert "did not finish within 8 s" in results[1].reason
    assert results[2].median_ms > 0 and results[2].samples >= 5


def test_killed_browser_is_a_failed_result_and_a_new_browser_starts(browser):
    workload, good = relu_program()
    harness = harness_for(browser, workload)
    assert harness.measure(good).ok
    os.killpg(browser.pid, signal.SIGKILL)
    crashed = harness.measure(good)
    assert crashed.status == "browser_crashed", crashed
    assert harness.measure(good).ok


def gpu_process(browser) -> int:
    pgrep = ["pgrep", "-g", str(browser.pid), "-f", "--", "type=gpu-process"]
    out = subprocess.run(pgrep, capture_output=True, text=True)
    (pid,) = out.stdout.split()
    return int(pid)


@pytest.mark.parametrize("backend", ["webgpu", "webgl"])
def test_a_killed_gpu_process_replaces_the_browser_and_the_candidate_runs_again(browser, backend):
    """Chromium outlives its GPU process, but its device or context is lost for good: the candidate that met
    the loss is measured again in a new browser, and the next ones run there."""
    workload = Workload.create("relu", [(3, 5, 7)])
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    harness = Harness(browser, arrays, workload.opdef.reference(arrays, {}), backend)
    program = build(workload, backend)[0]
    assert harness.measure(program).ok
    restarts = browser.restarts
    os.kill(gpu_process(browser), signal.SIGKILL)
    time.sleep(1.0)
    again = harness.measure(program)
    assert again.ok, again
    assert browser.restarts == restarts + 1
    assert harness.measure(program).ok


def test_timing_follows_the_protocol(browser):
    workload = Workload.create("matmul", [(64, 64), (64, 64)])
    harness = harness_for(browser, workload)
    result = harness.measure(build(workload, "webgpu", {"tile_a": 4, "tile_b": 4, "vec4": 1})[0])
    assert result.ok, result
    assert result.clock == "timestamp-query"
    assert result.samples >= 5
    assert result.median_ms * result.k >= 0.5  # a sample is a batch of k runs lasting about a millisecond or more
    assert result.iqr_ms >= 0


def test_fingerprint_describes_the_device(browser):
    fp = browser.fingerprint()
    assert fp["crossOriginIsolated"] is True
    assert fp["webgpu"]["available"], fp["webgpu"]
    assert "timestamp-query" in fp["webgpu"]["features"]
    assert fp["webgpu"]["architecture"]
    assert fp["webgl2"]["renderer"]
    assert fp["hardwareConcurrency"] >= 1
    assert fp["browser"]
    software_gpu = fp["webgpu"]["architecture"] == "swiftshader" or bool(fp["webgpu"]["isFallbackAdapter"])
    assert fp["software"] == (software_gpu or "SwiftShader" in fp["webgl2"]["renderer"])


def test_a_browser_that_exits_at_once_is_reported_at_once(monkeypatch):
    from kgen.browser.session import _Chromium

    monkeypatch.setenv("KGEN_CHROMIUM", "/bin/false")
    started = time.monotonic()
    with pytest.raises(KgenError, match=r"Chromium \(/bin/false\) exited at once with code 1"):
        _Chromium()
    assert time.monotonic() - started < 5  # not the 30 s launch timeout


def test_profiles_of_dead_processes_are_removed_at_the_next_start():
    from kgen.browser import session

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = session.PROFILES / f"{dead.pid}-left-by-a-killed-kgen"
    left.mkdir(parents=True, exist_ok=True)
    mine = session._new_profile()
    try:
        assert not left.exists()
        assert Path(mine).parent == session.PROFILES and Path(mine).name.startswith(f"{os.getpid()}-")
    finally:
        shutil.rmtree(mine)


def test_a_killed_browser_leaves_nothing_in_the_temporary_folder():
    from kgen.browser.session import _Chromium

    chromium = _Chromium()
    socket = Path(chromium.profile) / "SingletonSocket"
    deadline = time.monotonic() + 10
    while not socket.is_symlink() and time.monotonic() < deadline:
        time.sleep(0.05)
    target = Path(os.readlink(socket))
    assert target.parent.parent == Path(chromium.profile)  # not a folder of its own in /tmp
    chromium.kill()  # SIGKILL: the browser removes nothing itself
    assert not target.parent.exists() and not Path(chromium.profile).exists()
