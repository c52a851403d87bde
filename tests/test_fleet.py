"""A fleet of browsers tunes one workload (`kgen fleet serve`): the protocol with simulated workers (a wrong token,
a result for a job another worker holds, a wrong output, a worker that stops answering), then real headless
Chromium workers of two device classes tuning to the end."""

import base64
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import optuna
import pytest

from kgen.graph import zoo
from kgen.ops import Workload
from kgen.records.store import RecordStore
from kgen.tune.fleet import Fleet, FleetServer, Refused, serve

WORKLOAD = Workload.create("matmul", [(8, 12), (12, 8)], {})


def fingerprint(threads: int = 2) -> dict:
    return {
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0",
        "hardwareConcurrency": threads,
        "crossOriginIsolated": True,
        "webgpu": {"available": False},
        "webgl2": {"available": False},
        "wasm": {"available": True, "maxThreads": threads, "relaxedSimd": True, "sharedArrayBuffer": True},
    }


@pytest.fixture
def fleet(tmp_path):
    return Fleet([WORKLOAD], ["wasm"], 3, f"sqlite:///{tmp_path}/f.db", RecordStore(tmp_path / "records.jsonl"))


def right(fleet: Fleet) -> str:
    return base64.b64encode(fleet.targets[0].want.astype(np.float32).tobytes()).decode()


def answer(fleet: Fleet, worker: str, output: str, median_ms: float = 0.5) -> dict:
    job = fleet.job(worker)["job"]
    return fleet.result(worker, {"job": job["id"], "status": "ok", "output": output, "median_ms": median_ms})


def test_a_class_tunes_to_its_record_and_every_trial_is_accounted_for(fleet, tmp_path):
    hello = fleet.hello(fingerprint())
    assert hello["classes"] == {"wasm": "wasm-2threads"}
    first = fleet.job(hello["worker"])["job"]  # the worker's first job of the workload carries its inputs
    assert first["inputs"]["want"] == right(fleet) and first["inputs_key"] == first["inputs"]["key"]
    fleet.result(hello["worker"], {"job": first["id"], "status": "ok", "output": right(fleet), "median_ms": 0.5})
    for k in range(1, 3):
        assert answer(fleet, hello["worker"], right(fleet), 0.5 - 0.1 * k)["accepted"]
    assert fleet.job(hello["worker"]) == {"done": True}
    (record,) = RecordStore(tmp_path / "records.jsonl").all()
    assert record.device_class == "wasm-2threads" and record.median_ms == pytest.approx(0.3)
    assert record.fingerprint["cpu"].startswith("a fleet worker")  # not the server's CPU
    (study,) = fleet.status()["studies"]
    assert study["finished"] == 3 and study["recorded"]
    trials = fleet.studies[WORKLOAD.key, "wasm", "wasm-2threads"].optuna.trials
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]  # none left half-measured
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 3


def test_a_models_trials_go_where_the_model_gains_most_and_each_workload_gets_its_record(tmp_path):
    """A class's 8 trials over two workloads, chunks of 2: a warm-up of 2 each in the given order (the heaviest
    first), each first job carrying its inputs; then the scheduler's picks. The matmul gains 2x on its warm-up and
    the relu nothing, so the matmul gets the next chunk; once the matmul stops gaining, the relu, 10 nodes of the
    model, weighs more and gets the last. Each workload of the class gets its record, and the class is complete
    only then."""
    other = Workload.create("relu", [(4, 8)], {})
    fleet = Fleet(
        [WORKLOAD, other],
        ["wasm"],
        8,
        f"sqlite:///{tmp_path}/f.db",
        RecordStore(tmp_path / "r.jsonl"),
        counts={other.key: 10},
        chunk=2,
    )
    times = {WORKLOAD.key: iter([1.0, 0.5, 0.5, 0.5]), other.key: iter([0.3, 0.3, 0.3, 0.3])}
    worker = fleet.hello(fingerprint())["worker"]
    seen = []
    while "job" in (next_job := fleet.job(worker)):
        job = next_job["job"]
        seen.append(("matmul" if job["workload"] == WORKLOAD.key else "relu", "inputs" in job))
        target = next(t for t in fleet.targets if t.workload.key == job["workload"])
        assert fleet.complete_classes() == 0
        output = base64.b64encode(target.want.astype(np.float32).tobytes()).decode()
        median = next(times[job["workload"]])
        fleet.result(worker, {"job": job["id"], "status": "ok", "output": output, "median_ms": median})
    assert [w for w, _ in seen] == ["matmul", "matmul", "relu", "relu"] * 2
    assert [first for _, first in seen] == [True, False, True, False, False, False, False, False]
    assert fleet.complete_classes() == 1
    (group,) = fleet.status()["classes"]
    assert group["finished"] == group["allocated"] == 8
    assert group["estimated_ms"] == pytest.approx(0.5 + 10 * 0.3)
    records = RecordStore(tmp_path / "r.jsonl").all()
    assert sorted(r.key for r in records) == sorted([WORKLOAD.key, other.key])


def test_a_wrong_output_is_rejected_and_a_worker_past_its_strikes_is_dropped(fleet):
    worker = fleet.hello(fingerprint())["worker"]
    wrong = base64.b64encode(np.zeros(64, np.float32).tobytes()).decode()
    got = answer(fleet, worker, wrong)
    assert got["status"] == "rejected" and "the server's check failed" in got["reason"]
    fleet.max_strikes = 2
    answer(fleet, worker, base64.b64encode(b"not floats").decode())
    with pytest.raises(Refused, match="dropped: 2 rejected") as refused:
        fleet.job(worker)
    assert refused.value.status == 403
    failed = [t for t in fleet.studies[WORKLOAD.key, "wasm", "wasm-2threads"].optuna.trials if t.state.name == "FAIL"]
    assert [t.user_attrs["status"] for t in failed] == ["rejected", "rejected"]


def test_a_result_for_a_job_another_worker_holds_is_refused(fleet):
    one, two = fleet.hello(fingerprint())["worker"], fleet.hello(fingerprint())["worker"]
    job = fleet.job(one)["job"]
    with pytest.raises(Refused, match="was not given to worker") as refused:
        fleet.result(two, {"job": job["id"], "status": "ok", "output": right(fleet), "median_ms": 0.1})
    assert refused.value.status == 409
    with pytest.raises(Refused, match="unknown worker"):
        fleet.job("w99")
    assert fleet.result(one, {"job": job["id"], "status": "ok", "output": right(fleet), "median_ms": 0.1})["accepted"]


def test_a_worker_that_stops_answering_costs_its_trial_only(fleet):
    fleet.job_timeout_s = 0.2
    gone, alive = fleet.hello(fingerprint())["worker"], fleet.hello(fingerprint())["worker"]
    lost = fleet.job(gone)["job"]
    time.sleep(0.3)
    assert answer(fleet, alive, right(fleet))["accepted"]  # the expired job failed when this one was asked for
    study = fleet.studies[WORKLOAD.key, "wasm", "wasm-2threads"]
    (failed,) = [t for t in study.optuna.trials if t.state.name == "FAIL"]
    assert failed.user_attrs["status"] == "worker_lost" and "did not answer within 0.2 s" in failed.user_attrs["reason"]
    assert study.finished == 2 and fleet.workers[gone].lost == 1
    with pytest.raises(Refused, match="was not given"):  # too late: it expired
        fleet.result(gone, {"job": lost["id"], "status": "ok", "output": right(fleet), "median_ms": 0.1})
    measured = 1
    while "job" in (next_job := fleet.job(alive)):
        fleet.result(alive, {"job": next_job["job"]["id"], "status": "ok", "output": right(fleet), "median_ms": 0.1})
        measured += 1
    assert measured == 3  # the budget's 3 trials: the lost one was given again


def test_every_path_needs_the_token(fleet):
    with FleetServer(fleet, token="s3cret") as server:
        assert server.url.endswith("/t/s3cret/")
        origin = server.url.split("/t/")[0]
        for path in ("/api/status", "/t/wrong/api/status", "/t/wrong/fleet/", "/t/s3cret"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(origin + path, timeout=5)
            assert err.value.code in (403, 404) and (err.value.code == 403 or path == "/t/s3cret")
        with urllib.request.urlopen(server.url + "api/status", timeout=5) as got:
            assert json.loads(got.read())["workloads"] == [WORKLOAD.key]
        with urllib.request.urlopen(server.url + "fleet/", timeout=5) as got:
            assert b"worker.js" in got.read() and got.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with urllib.request.urlopen(server.url + "plain/kgen/harness.js", timeout=5) as got:
            assert got.headers["Cross-Origin-Embedder-Policy"] is None  # a page without threads
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "kgen/../../../etc/passwd", timeout=5)
        assert err.value.code == 404
        status = subprocess.run(
            [sys.executable, "-m", "kgen.cli", "fleet", "status", server.url, "--json"], capture_output=True, text=True
        )
        assert status.returncode == 0 and json.loads(status.stdout)["workers"] == []
        wrong = subprocess.run(
            [sys.executable, "-m", "kgen.cli", "fleet", "status", origin + "/t/nope/"], capture_output=True, text=True
        )
        assert wrong.returncode == 2 and "HTTP 403 (a wrong token)" in wrong.stderr
        request = urllib.request.Request(server.url + "api/job", data=b"[1]", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 400


def test_bound_to_every_address_the_url_names_this_machine_and_its_qr_code_is_printed(fleet):
    """A phone cannot open 0.0.0.0: the announced URL names this machine's network address, which answers, and
    the worker page's URL follows as a QR code in block characters."""
    lines: list[str] = []
    reached: list[dict] = []

    def announce(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:
            url = re.search(r"open (\S+)fleet/ ", line)[1]
            with urllib.request.urlopen(url + "api/status", timeout=5) as got:
                reached.append(json.loads(got.read()))

    serve(fleet, "0.0.0.0", 0, "tok", 0, 0.5, announce=announce, qr=True)
    assert "0.0.0.0" not in lines[0] and reached[0]["workloads"] == [WORKLOAD.key]
    code = lines[1].splitlines()
    assert len(code) >= 12 and len({len(row) for row in code}) == 1 and set("".join(code)) <= set("█▀▄\xa0")


# two Chromium processes on the worker page, the second on its copy without cross-origin isolation (no wasm
# threads), and a third of the first one's class that takes a job and is killed before it answers; in a process
# of its own, since the suite's browser holds Playwright's sync API in this one
WORKERS = """
import sys
from playwright.sync_api import sync_playwright
from kgen.browser.session import _Chromium

isolated, plain = sys.argv[1:]
# the doomed worker's page keeps the first job it gets and never answers it
HANG = '''
const fetched = window.fetch.bind(window);
window.fetch = async (url, options) => {
  const response = await fetched(url, options);
  if (String(url).endsWith("api/job") && (await response.clone().json()).job) {
    window.kgenJobs = (window.kgenJobs || 0) + 1;
    return new Promise(() => {});
  }
  return response;
};'''
browsers = [_Chromium(), _Chromium(), _Chromium()]
try:
    with sync_playwright() as pw:
        pages = [pw.chromium.connect_over_cdp(b.ws_url).contexts[0].new_page() for b in browsers]
        pages[2].add_init_script(HANG)
        pages[2].goto(isolated)
        pages[2].wait_for_function("() => window.kgenJobs >= 1", timeout=60_000)
        browsers[2].kill()
        for page, url in zip(pages, (isolated, plain)):
            page.goto(url)
        for page in pages[:2]:
            page.wait_for_function("() => window.kgenFleetDone || window.kgenFleetError", timeout=240_000)
            print(page.evaluate("() => window.kgenFleetError || 'done'"))
finally:
    for chromium in browsers:
        chromium.kill()
"""


@pytest.mark.browser
def test_two_browsers_of_two_device_classes_tune_a_model_to_the_end_and_a_killed_one_costs_its_trial(tmp_path):
    """`kgen fleet serve --model` on 127.0.0.1 with a token; two headless Chromium processes open the worker page,
    one of them without cross-origin isolation (1 wasm thread on 2 cores): two device classes, each with a study
    and a record per workload of the model, its 8 trials spread over them (a warm-up each, then the scheduler's
    picks). A third worker of the first class is killed holding a job: that trial fails with the reason when its
    time is up, another takes its place, and nothing else is lost."""
    records = tmp_path / "records.jsonl"
    zoo.save(zoo.MODELS["mlp"](), tmp_path / "mlp.onnx")
    serve = ["fleet", "serve", "--model", str(tmp_path / "mlp.onnx"), "--backend", "wasm", "--trials", "8"]
    serve += ["--port", "0", "--token", "tok3n", "--classes", "2", "--json", "--timeout", "240", "--job-timeout", "4"]
    serve += ["--storage", f"sqlite:///{tmp_path}/fleet.db", "--records", str(records)]
    server = subprocess.Popen(
        [sys.executable, "-m", "kgen.cli", *serve], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stderr is not None
        first = server.stderr.readline()
        url = re.search(r"open (http://127\.0\.0\.1:\d+/t/tok3n/fleet/)", first)
        assert url, first
        workers = subprocess.run(
            [sys.executable, "-c", WORKERS, url[1], url[1].replace("/fleet/", "/plain/fleet/")],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert workers.returncode == 0 and workers.stdout.split() == ["done", "done"], workers.stdout + workers.stderr
        out, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 0, err
    status = json.loads(out)
    assert len(status["workloads"]) == 4  # the MLP's three gemms and its softmax
    studies = status["studies"]
    assert {(s["device_class"], s["workload"]) for s in studies} == {
        (c, w) for c in ("wasm-2threads", "wasm-1threads") for w in status["workloads"]
    }
    for s in studies:
        assert s["finished"] >= 1 and s["in_flight"] == 0 and s["recorded"] and (s["best_ms"] or 0) > 0, s
    # the lost trial was given again: 8 measured in each class
    assert [(c["finished"], c["allocated"]) for c in status["classes"]] == [(9, 9), (8, 8)]
    assert all(c["estimated_ms"] > 0 for c in status["classes"])
    assert sum(s["failures"].get("worker_lost", 0) for s in studies) == 1  # the killed worker's job, no other
    assert [w["lost"] for w in status["workers"]] == [1, 0, 0]
    stored = RecordStore(records).all()
    assert {(r.device_class, r.key) for r in stored} == {(s["device_class"], s["workload"]) for s in studies}
