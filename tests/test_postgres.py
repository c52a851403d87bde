"""One study on a real PostgreSQL, tuned by two `kgen tune` workers at once, as a fleet of machines tunes it: one
worker is killed with SIGKILL and resumed. The trials add up, no kernel is measured twice, no completed trial is
lost and none is left RUNNING. Two `kgen fleet serve` servers share one device class's study there too. The
server is Debian's postgresql (make setup installs it), initialised in a temporary folder and started on
127.0.0.1 by the test."""

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

import pytest

pytestmark = pytest.mark.browser  # the workers tune in Chromium

WORKLOAD = ["matmul", "--shape", "24x40,40x32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr or done.stdout}"


@pytest.fixture(scope="module")
def postgres():
    (initdb,) = glob.glob("/usr/lib/postgresql/*/bin/initdb")[-1:] or [None]
    assert initdb, "Debian's postgresql is not installed (make setup installs it)"
    bin_dir = os.path.dirname(initdb)
    root = tempfile.mkdtemp(prefix="kgen-postgres-")  # not under pytest's folder, which only root may enter
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as Debian's postgres user
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = f"{root}/data", free_port()
    run(*as_user, f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "kgen", "--no-sync")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    run(*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-w", "-l", f"{root}/log", "start")
    try:
        run(*as_user, f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "kgen", "kgen")
        yield f"postgresql://kgen@127.0.0.1:{port}/kgen"
    finally:
        run(*as_user, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def worker(url, tmp_path, seed, trials):
    records = tmp_path / f"records-{seed}.jsonl"
    cmd = [sys.executable, "-m", "kgen.cli", "tune", *WORKLOAD, "--storage", url, "--records", str(records)]
    cmd += ["--trials", str(trials), "--sampler", "random", "--seed", str(seed), "--json"]
    # stdin from /dev/null: CI runs with stdin closed, and a child given the parent's closed fd 0 would get its own
    # stdout pipe's read end there, once the parent's os.pipe() reuses the free fd 0
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def trials_of(url):
    import optuna

    from kgen.tune.study import open_storage

    storage = open_storage(url)
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).trials


def measured(trials, tag=None):
    return [
        t
        for t in trials
        if t.state.name in ("COMPLETE", "FAIL")
        and t.user_attrs.get("status") != "worker_died"
        and (tag is None or t.user_attrs.get("worker") == tag)
    ]


def test_two_workers_on_postgresql_one_killed_and_resumed(postgres, tmp_path):
    killed = worker(postgres, tmp_path, seed=1, trials=200)
    survivor = worker(postgres, tmp_path, seed=2, trials=12)
    killed_tag = f"{socket.gethostname()}:{killed.pid}"
    deadline, done_before_kill = time.monotonic() + 180, 0
    while done_before_kill < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
        with contextlib.suppress(ValueError):  # no study yet
            done_before_kill = len(measured(trials_of(postgres), killed_tag))
    assert done_before_kill >= 3, "the first worker measured nothing in 3 minutes"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    before = {t.number: t.value for t in trials_of(postgres) if t.state.name == "COMPLETE"}
    out, err = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, err
    resumed = worker(postgres, tmp_path, seed=3, trials=4)
    out_resumed, err_resumed = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err_resumed

    trials = trials_of(postgres)
    states = Counter(t.state.name for t in trials)
    assert states["RUNNING"] == 0  # the killed worker's trial was failed as 'worker died' by a live one
    after = {t.number: t.value for t in trials if t.state.name == "COMPLETE"}
    assert before.items() <= after.items()  # no completed trial lost
    summaries = json.loads(out), json.loads(out_resumed)
    tags = (f"{socket.gethostname()}:{survivor.pid}", f"{socket.gethostname()}:{resumed.pid}")
    for summary, tag in zip(summaries, tags, strict=True):
        assert len(measured(trials, tag)) == summary["trials"]  # each worker's count is what the study holds
    assert len(measured(trials)) == len(measured(trials, killed_tag)) + summaries[0]["trials"] + summaries[1]["trials"]
    digests = [t.user_attrs["digest"] for t in measured(trials) if "reused_from" not in t.user_attrs]
    assert len(digests) == len(set(digests))  # no kernel measured twice


def test_two_fleet_servers_share_a_device_class_study_on_postgresql(postgres, tmp_path):
    """Two fleets (servers on two machines, say), each with a simulated worker of one class: one study in the
    storage holds both fleets' trials, and each server writes the class's record from it."""
    import base64

    from kgen.ops import Workload
    from kgen.records.store import RecordStore
    from kgen.tune.fleet import Fleet

    workload = Workload.create("relu", [(4, 8)], {})
    fingerprint = {
        "userAgent": "Chrome/156.0.0.0",
        "hardwareConcurrency": 2,
        "crossOriginIsolated": True,
        "webgpu": {"available": False},
        "webgl2": {"available": False},
        "wasm": {"available": True, "maxThreads": 2, "relaxedSimd": True, "sharedArrayBuffer": True},
    }
    fleets = [Fleet([workload], ["wasm"], 2, postgres, RecordStore(tmp_path / f"r{k}.jsonl")) for k in (1, 2)]
    for k, fleet in enumerate(fleets):
        worker = fleet.hello(fingerprint)["worker"]
        output = base64.b64encode(fleet.targets[0].want.tobytes()).decode()
        while "job" in (got := fleet.job(worker)):
            answer = {"job": got["job"]["id"], "status": "ok", "output": output, "median_ms": 0.1 + k}
            assert fleet.result(worker, answer)["accepted"]
    (one,), (two,) = (fleet.studies.values() for fleet in fleets)
    assert one.name == two.name  # the same study, opened by both servers
    complete = [t for t in one.optuna.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4  # 2 trials from each server
    assert sorted(t.value for t in complete) == pytest.approx([0.1, 0.1, 1.1, 1.1])
    for k in (1, 2):  # each server's record is the study's best: the first fleet's 0.1 ms
        (record,) = RecordStore(tmp_path / f"r{k}.jsonl").all()
        assert record.device_class == "wasm-2threads" and record.median_ms == pytest.approx(0.1)
