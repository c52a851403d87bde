"""`kgen tune`: resume after SIGKILL, a browser killed mid-trial, two workers sharing a study, bad input."""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest

pytestmark = pytest.mark.browser

SMALL = ["matmul", "--shape", "24x40,40x32"]


def tune_cmd(tmp_path, *extra, storage=None, workload=SMALL):
    """``kgen tune`` on a small workload, with its study and records under ``tmp_path``."""
    storage = storage or f"sqlite:///{tmp_path}/study.db"
    records = str(tmp_path / "records.jsonl")
    return [sys.executable, "-m", "kgen.cli", "tune", *workload, "--storage", storage, "--records", records, *extra]


def study_trials(tmp_path):
    import optuna

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/study.db")
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def complete(trials):
    return [t for t in trials if t.state.name == "COMPLETE"]


def test_sigkill_mid_study_then_resume_loses_no_completed_trial(tmp_path):
    proc = subprocess.Popen(
        tune_cmd(tmp_path, "--trials", "200", "--seed", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    before = []
    while time.monotonic() < deadline:
        time.sleep(1)
        if (tmp_path / "study.db").exists():
            try:
                before = complete(study_trials(tmp_path))
            except Exception:
                continue
            if len(before) >= 4:
                break
    os.killpg(proc.pid, signal.SIGKILL)  # the tuner and its browser
    proc.wait()
    assert len(before) >= 4
    done_before = {t.number: t.value for t in complete(study_trials(tmp_path))}
    out = subprocess.run(tune_cmd(tmp_path, "--trials", "3", "--json"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    after = study_trials(tmp_path)
    survived = {t.number: t.value for t in complete(after) if t.number in done_before}
    assert survived == done_before
    assert len(complete(after)) >= len(done_before)
    running = [(t.number, t.user_attrs) for t in after if t.state.name == "RUNNING"]
    assert not running, running  # the killed worker's trial was failed, not left hanging
    summary = json.loads(out.stdout)
    assert summary["study_trials"] == len(after)
    assert Path(summary["record"]).exists()


def test_browser_killed_mid_trial_fails_that_trial_and_tuning_goes_on(tmp_path):
    proc = subprocess.Popen(
        tune_cmd(tmp_path, "--trials", "14", "--json", "--seed", "2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    killed = False
    deadline = time.monotonic() + 120
    while not killed and time.monotonic() < deadline:
        time.sleep(0.5)
        # the tuner's own browser (its child), not the test session's shared one
        found = subprocess.run(
            ["pgrep", "-P", str(proc.pid), "-f", "kgen-chromium/.*--remote-debugging-port"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if found and (tmp_path / "study.db").exists() and len(study_trials_safe(tmp_path)) >= 3:
            os.kill(int(found[0]), signal.SIGKILL)
            killed = True
    out, _ = proc.communicate(timeout=300)
    assert killed
    summary = json.loads(out)
    assert summary["failures"].get("browser_crashed", 0) >= 1
    assert summary["trials"] == 14
    reasons = [
        t.user_attrs.get("reason") for t in study_trials(tmp_path) if t.user_attrs.get("status") == "browser_crashed"
    ]
    assert reasons and all(r == "browser crashed" for r in reasons)
    assert complete(study_trials(tmp_path))[-1].number > min(
        t.number for t in study_trials(tmp_path) if t.user_attrs.get("status") == "browser_crashed"
    )


def study_trials_safe(tmp_path):
    try:
        return study_trials(tmp_path)
    except Exception:
        return []


def test_two_workers_share_one_study_without_measuring_a_kernel_twice(tmp_path):
    workers = [
        subprocess.Popen(
            tune_cmd(tmp_path, "--trials", "8", "--json", "--sampler", "random", "--seed", str(s)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (1, 2)
    ]
    outs = [w.communicate(timeout=600) for w in workers]
    assert all(w.returncode == 0 for w in workers), [e for _, e in outs]
    trials = study_trials(tmp_path)
    assert sum(t.state.name in ("COMPLETE", "FAIL") for t in trials) == 16  # 8 each; pruned proposals aside
    measured = [
        t.user_attrs["digest"] for t in trials if "digest" in t.user_attrs and "reused_from" not in t.user_attrs
    ]
    assert len(measured) == len(set(measured))


def test_gp_sampler_without_pytorch_is_a_clear_error_and_writes_nothing(tmp_path):
    hide_torch = "import sys; sys.modules['torch'] = None; from kgen.cli import main; sys.exit(main())"
    args = ["tune", "matmul", "--shape", "4x4,4x4", "--sampler", "gp", "--storage", "sqlite:///here.db"]
    out = subprocess.run([sys.executable, "-c", hide_torch, *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith("kgen: error: --sampler gp needs PyTorch and SciPy")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "conv3d"], "kgen: error: unknown op 'conv3d'"),
        (["tune", "conv2d", "--backend", "metal"], "invalid choice: 'metal'"),
        (["tune", "matmul", "--shape", "4x4,4xq"], "kgen: error: --shape '4x4,4xq': '4xq' is not like 1x64x56x56"),
        (["tune", "matmul", "--shape", "4x4,4x4", "--storage", "nosuchdb://x"], "kgen: error: cannot open storage"),
        (
            ["tune", "matmul", "--shape", "4x4,4x4", "--storage", "sqlite:////nonexistent/dir/k.db"],
            "kgen: error: cannot open storage 'sqlite:////nonexistent/dir/k.db': "
            "directory /nonexistent/dir does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_non_zero_and_writes_nothing(tmp_path, args, message):
    out = subprocess.run(
        [sys.executable, "-m", "kgen.cli", *args, "--records", str(tmp_path / "r.jsonl")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode != 0
    assert message in out.stderr
    last = out.stderr.strip().splitlines()[-1]  # argparse prints its usage above; the error itself is one line
    assert message in last and "error:" in last
    assert list(tmp_path.iterdir()) == []


def test_new_study_warm_starts_from_the_nearest_tuned_shape_and_journal_storage_works(tmp_path, browser):
    from kgen.build import space
    from kgen.ops import Workload
    from kgen.records.store import Record, RecordStore, device_class

    device = device_class(browser.fingerprint(), "webgpu")  # the class the tuner will see on this machine
    tuned = Workload.create("matmul", [(24, 40), (40, 32)])
    config = space(tuned, "webgpu").complete({"wg": 32, "tile_a": 2, "tile_b": 4, "k_unroll": 2, "vec4": 1})
    RecordStore(tmp_path / "records.jsonl").add(
        [
            Record(
                workload=json.loads(tuned.to_json()),
                key=tuned.key,
                backend="webgpu",
                device_class=device,
                config=config,
                median_ms=0.1,
                iqr_ms=0.0,
                samples=7,
                gflops=1.0,
                digest="",
                source="test",
            )
        ]
    )
    journal = f"journal:{tmp_path}/journal.log"
    nearby = ["matmul", "--shape", "32x40,40x32"]
    out = subprocess.run(
        tune_cmd(tmp_path, "--trials", "2", "--json", storage=journal, workload=nearby),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["device_class"] == device
    import optuna

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(f"{tmp_path}/journal.log"))
    study = optuna.load_study(study_name=summary["study"], storage=storage)
    assert study.trials[0].params == config  # first the nearest tuned shape's best, which a conversion would run
    assert study.trials[1].params == space(tuned, "webgpu").default()


def test_tune_on_webgl_writes_a_record_with_layouts(tmp_path):
    out = subprocess.run(
        tune_cmd(tmp_path, "--backend", "webgl", "--trials", "6", "--seed", "2", "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["backend"] == "webgl" and summary["device_class"].startswith("webgl-")
    assert set(summary["best_config"]) >= {"layout_out", "layout_A", "layout_B"}
    assert summary["best_ms"] > 0 and summary["limits"]["max_texture_size"] >= 2048
    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert record["backend"] == "webgl" and record["config"] == summary["best_config"]


def test_tune_wasm_with_a_fixed_thread_count(tmp_path):
    """--fix holds a knob (wasm's threads) in a study of its own; the record says the thread count and the page's
    cross-origin isolation; CPU backends are not labelled software."""
    out = subprocess.run(
        tune_cmd(tmp_path, "--backend", "wasm", "--trials", "5", "--fix", '{"threads": 2}', "--json"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["best_config"]["threads"] == 2 and summary["study"].endswith('|{"threads": 2}')
    assert summary["device_class"].startswith("wasm-") and not summary["software"]
    (record,) = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert record["config"]["threads"] == 2 and record["fingerprint"]["crossOriginIsolated"] is True


def test_fixing_an_unknown_knob_or_value_is_a_clear_error(tmp_path):
    for fix, message in (('{"thread": 2}', "unknown knob 'thread'"), ('{"threads": 3}', "not one of 1, 2, 4")):
        out = subprocess.run(
            tune_cmd(tmp_path, "--backend", "wasm", "--trials", "1", "--fix", fix), capture_output=True, text=True
        )
        assert out.returncode != 0 and message in out.stderr, out.stderr


def test_a_trial_killed_before_its_worker_tagged_it_is_failed_on_resume(tmp_path):
    """A worker killed between creating a trial and tagging it leaves an untagged RUNNING trial: the next run
    fails it at once when no other worker of the study is alive, while a live worker's trial stays."""
    import optuna

    from kgen.tune.study import open_storage
    from kgen.tune.tune import fail_dead_workers_trials

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    study.set_user_attr(f"worker {socket.gethostname()}:999999999", "a dead worker")
    untagged = study.ask()
    live = study.ask()
    live.set_user_attr("worker", f"{socket.gethostname()}:{os.getppid()}")
    assert fail_dead_workers_trials(study, storage) == 1
    states = {t.number: (t.state.name, t.user_attrs.get("reason")) for t in study.get_trials()}
    assert states == {untagged.number: ("FAIL", "worker died"), live.number: ("RUNNING", None)}


def test_a_live_workers_trial_still_in_ask_is_waited_for_not_failed(tmp_path):
    """Another live worker of the study may be in ``study.ask()``, its new trial not tagged yet (the sampler runs
    in ask): a joining worker waits until it is tagged instead of failing it."""
    import optuna

    from kgen.tune.study import open_storage
    from kgen.tune.tune import fail_dead_workers_trials

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    other = f"{socket.gethostname()}:{os.getppid()}"
    study.set_user_attr(f"worker {other}", "a live worker")
    asked = study.ask()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        failed = pool.submit(fail_dead_workers_trials, study, storage)
        time.sleep(2.5)  # a sampler's ask() on a large study takes seconds
        assert not failed.done(), "returned before the live worker tagged its trial"
        asked.set_user_attr("worker", other)
        assert failed.result(timeout=10) == 0
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]


def test_twins_that_read_each_other_out_of_order_measure_their_kernel_once(tmp_path):
    """Two workers start the same kernel at once: the later trial reads the study before the earlier one
    announced its digest, so it finds no twin. The earlier trial then sees it and waits for its decision instead of
    measuring too."""
    import optuna

    from kgen.tune.study import open_storage
    from kgen.tune.tune import WORKER, _claim

    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    first, second = study.ask(), study.ask()
    for t in (first, second):
        t.set_user_attr("worker", WORKER)
    second.set_user_attr("digest", "d")
    assert _claim(study, "d", second.number) == second.number  # nothing announced below it: it measures
    first.set_user_attr("digest", "d")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        claim = pool.submit(_claim, study, "d", first.number)
        time.sleep(1.5)
        assert not claim.done(), "decided before the twin above it did"
        second.set_user_attr("source", second.number)
        assert claim.result(timeout=10) == second.number
    third = study.ask()
    third.set_user_attr("worker", WORKER)
    third.set_user_attr("digest", "d")
    assert _claim(study, "d", third.number) == second.number  # a later twin follows the decision


def test_a_changed_search_space_gets_its_own_study():
    """Optuna cannot go on with a study whose categorical choices changed (a new planes value, say), so the knobs
    are part of the study's name; the same knobs give the same name."""
    from kgen.scheduling.space import Knob
    from kgen.tune.study import study_name

    knobs = (Knob("planes", (1, 2, 4)), Knob("unroll", (0, 1)))
    same = study_name("k", "webgl", "d", tuple(knobs))
    assert study_name("k", "webgl", "d", knobs) == same
    assert study_name("k", "webgl", "d", (Knob("planes", (1, 2, 4, 8)), knobs[1])) != same
    assert study_name("k", "webgl", "d", knobs, {"unroll": 1}) == same + '|{"unroll": 1}'


def test_model_scheduler_spends_trials_where_the_model_gains_most():
    """Ansor-style allocation over a model's workloads: every workload first, heaviest first; then the one whose
    weighted best improves most. A fake tune stands in for the browser: its best falls with trials only for
    ResNet-50's 3x3 convs."""
    from kgen.graph import zoo
    from kgen.graph.onnx import from_model
    from kgen.graph.passes import optimize
    from kgen.records.store import RecordStore
    from kgen.tune.model import Task, estimated_ms, pick, tasks_of, tune_model
    from kgen.tune.tune import TuneSummary

    graph = optimize(from_model(zoo.resnet50(size=64)))
    tasks = tasks_of(graph, "wasm")
    assert sum(t.count for t in tasks) == len(graph.nodes) - 1  # the flatten is a view
    # on WebGL's textures a view is a kernel of its own, tuned like the others
    assert sum(t.count for t in tasks_of(graph, "webgl")) == len(graph.nodes)
    assert tasks[0].count * tasks[0].flops == max(t.count * t.flops for t in tasks)
    calls: list[str] = []
    spent: dict[str, int] = {}

    def fake_tune(workload, backend, trials, **kwargs):
        calls.append(workload.key)
        spent[workload.key] = spent.get(workload.key, 0) + trials
        improving = workload.op == "conv2d" and dict(workload.attrs)["pads"] == (1, 1, 1, 1)
        best = 1.0 / (1 + spent[workload.key]) if improving else 0.5
        default = 1.0 if improving else 0.5
        summary = TuneSummary("s", "m", workload.key, backend, "d", False, trials, trials, {}, 0, 0, best_ms=best)
        summary.default_ms = default
        return summary

    result = tune_model(
        graph, "wasm", 8 * (len(tasks) + 10), "memory", RecordStore("/nonexistent"), 8, tune_fn=fake_tune
    )
    assert calls[: len(tasks)] == [t.workload.key for t in tasks]  # every workload once, heaviest first
    improving = {k for k in spent if k.startswith("conv2d/") and "pads=1,1,1,1" in k}
    assert sum(calls.count(k) > 1 for k in improving) >= 3  # the improving workloads got more trials
    # the next allocation: the workload whose weighted best improves most, a small floor for the others
    a, b, c = (Task(tasks[0].workload, 1, 1, trials=8) for _ in range(3))
    a.best_ms, a.gain = 10.0, 0.5
    b.best_ms, b.gain = 10.0, 0.0
    c.best_ms, c.gain = 100.0, 0.0
    assert pick([b, a]) is a and pick([a, c]) is a
    c.best_ms = 200.0  # heavy enough that even without recent gain it is worth another look
    assert pick([a, c]) is c
    assert estimated_ms(result) < sum(t.count * 0.5 for t in result)
    # a budget smaller than a chunk for every workload: each is measured first, with fewer trials
    calls.clear()
    spent.clear()
    budget = 3 * len(tasks)
    result = tune_model(graph, "wasm", budget, "memory", RecordStore("/nonexistent"), 8, tune_fn=fake_tune)
    assert calls[: len(tasks)] == [t.workload.key for t in tasks] and all(t.best_ms is not None for t in result)
    assert all(spent[t.workload.key] >= 1 for t in tasks) and sum(spent.values()) == budget
    # a timeout is the whole model's: each allocation gets what is left, none starts after it
    clock = iter(range(0, 1000, 10))
    lefts: list[float] = []

    def timed_tune(workload, backend, trials, timeout_s, **kwargs):
        lefts.append(timeout_s)
        return fake_tune(workload, backend, trials)

    with mock.patch("kgen.tune.model.time") as fake_time:
        fake_time.monotonic = lambda: next(clock)
        tune_model(graph, "wasm", 1000, "memory", RecordStore("/nonexistent"), 8, tune_fn=timed_tune, timeout_s=35)
    assert lefts == [25, 15, 5]


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_the_trial_cleanly_and_prints_the_summary_so_far(tmp_path, signum, code):
    proc = subprocess.Popen(
        tune_cmd(tmp_path, "--trials", "200", "--seed", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(complete(study_trials_safe(tmp_path))) < 3:
        time.sleep(0.3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"stopped  by {signal.Signals(signum).name}" in out
    assert "best " in out and (tmp_path / "records.jsonl").exists()  # the best so far is recorded
    trials = study_trials(tmp_path)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    for t in trials:
        if t.state.name == "FAIL":
            assert t.user_attrs.get("reason") == "interrupted"


def test_trials_counts_measured_candidates_not_pruned_proposals(tmp_path):
    """After the enqueued seeds, the random sampler proposes many configs that break a constraint: --trials 28
    still measures 28."""
    out = subprocess.run(
        tune_cmd(
            tmp_path,
            *("--trials", "28", "--sampler", "random", "--seed", "4", "--json", "--backend", "wasm"),
            workload=["conv2d", "--shape", "1x8x10x10,8x8x3x3"],
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["trials"] == 28
    states = Counter(t.state.name for t in study_trials(tmp_path))
    assert states["COMPLETE"] + states["FAIL"] == 28
    assert summary["pruned"] == states["PRUNED"] > 0
    assert sum(summary["prune_reasons"].values()) >= summary["pruned"]  # an invalid config can break several


def test_a_fix_that_no_config_satisfies_names_the_broken_constraint(tmp_path):
    """Scalar 8x16 tiles are 128 accumulators: every proposal is pruned, and the run says which constraint they
    broke (it said only that no candidate passed its check) and exits 1."""
    fix = '{"tile_a": 8, "tile_b": 16, "vector": "scalar", "threads": 1}'
    out = subprocess.run(
        tune_cmd(tmp_path, "--backend", "wasm", "--trials", "1", "--fix", fix), capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "no valid candidate: every proposal broke a constraint, most often 'more than 32 accumulators" in out.stdout
    assert "(20 of 20)" in out.stdout and not (tmp_path / "records.jsonl").exists()


def test_a_new_study_of_a_conv_with_bias_starts_from_the_bare_convs_nearest_record(tmp_path):
    """What a conversion would run comes first, so a study of one trial never records worse than it: the bare
    conv's record (completed with the bias layout's default), then the template default."""
    from kgen.descriptor.nodes import space
    from kgen.ops import Workload
    from kgen.records.store import Record, RecordStore
    from kgen.scheduling.space import DEFAULT_LIMITS
    from kgen.tune.study import open_storage
    from kgen.tune.tune import open_study

    bare = Workload.create("conv2d", [(1, 16, 28, 28), (16, 16, 3, 3)], {"pads": (1, 1, 1, 1)})
    config = next(c for c in space(bare, "webgl").seed_configs() if c != space(bare, "webgl").default())
    store = RecordStore(tmp_path / "records.jsonl")
    fields = {"median_ms": 1.0, "iqr_ms": 0.0, "samples": 7, "gflops": 1.0, "digest": "", "source": "test"}
    workload = json.loads(bare.to_json())
    store.add([Record(workload, bare.key, "webgl", "webgl-test", config, **fields)])
    own = Workload.create("conv2d", [(1, 32, 28, 28), (32, 32, 3, 3), (32,)], {"pads": (1, 1, 1, 1)})
    sp = space(own, "webgl")
    storage = open_storage(f"sqlite:///{tmp_path}/study.db")
    _, study = open_study(own, "webgl", "webgl-test", sp, DEFAULT_LIMITS, storage, "tpe", 0, store)
    queued = [t.system_attrs["fixed_params"] for t in study.trials]
    assert queued[0] == {**sp.default(), **config}
    assert queued[1] == sp.default()
