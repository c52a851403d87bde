"""One Chromium, one harness page, many candidates.

kgen starts the system Chromium itself (so it owns the process: it can kill a browser stuck on a hung kernel,
and knows when one crashed) and drives the page through Playwright over the DevTools protocol. Every harness
call starts a job in the page and is polled with a timeout on this side; a job that does not finish in time
means the page's GPU work is stuck, and the browser is replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kgen.browser.executable import require_chromium
from kgen.browser.server import RUNTIME_DIR, StaticServer
from kgen.errors import KgenError
from kgen.scheduling.space import DEFAULT_LIMITS

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--disable-dev-shm-usage",
    "--enable-unsafe-webgpu",  # the one flag WebGPU needs here; robustness stays on
)
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserHung(KgenError):
    """A harness job did not finish in time (a kernel that loops for too long)."""


class BrowserCrashed(KgenError):
    """The browser process or its page went away."""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when kgen dies (even by SIGKILL), so no browser outlives its driver."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


PROFILES = Path(tempfile.gettempdir()) / "kgen-chromium"


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with ``pid`` exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _new_profile() -> str:
    """A profile folder under one parent, named by this process's pid; first, the folders of processes that are
    gone (a kgen killed by SIGKILL, or a browser that failed to start) are removed."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    for old in PROFILES.iterdir():
        owner = old.name.split("-", 1)[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=PROFILES)


def software_rasterizer(fp: Mapping[str, Any]) -> bool:
    """Whether a harness fingerprint's GPU is a software rasterizer (SwiftShader) standing in for a device."""
    return bool(
        (fp["webgpu"].get("architecture") or "").lower() == "swiftshader"
        or fp["webgpu"].get("isFallbackAdapter")
        or "swiftshader" in (fp["webgl2"].get("renderer") or "").lower()
    )


def limits_of(fp: Mapping[str, Any]) -> dict[str, int]:
    """The limits of the device a harness fingerprint describes, under the names knob constraints use
    (``kgen.scheduling.space``)."""
    gpu = fp["webgpu"]
    limits = dict(DEFAULT_LIMITS)
    if fp["webgl2"].get("available"):
        limits["max_texture_size"] = int(fp["webgl2"]["maxTextureSize"])
        limits["max_draw_buffers"] = int(fp["webgl2"]["maxDrawBuffers"])
    if fp["wasm"].get("available"):
        limits["max_threads"] = int(fp["wasm"]["maxThreads"])
        limits["relaxed_simd"] = int(bool(fp["wasm"]["relaxedSimd"]))
    if not gpu["available"]:
        return limits
    names = {
        "max_workgroup_invocations": "maxComputeInvocationsPerWorkgroup",
        "max_workgroup_size_x": "maxComputeWorkgroupSizeX",
        "max_workgroup_size_y": "maxComputeWorkgroupSizeY",
        "max_workgroup_storage_bytes": "maxComputeWorkgroupStorageSize",
        "max_storage_buffers_per_stage": "maxStorageBuffersPerShaderStage",
        "max_workgroups_per_dimension": "maxComputeWorkgroupsPerDimension",
        "max_storage_buffer_binding_size": "maxStorageBufferBindingSize",
    }
    return limits | {ours: int(gpu["limits"][theirs]) for ours, theirs in names.items()}


class _Chromium:
    """The browser process, with its own profile directory and process group."""

    def __init__(self, launch_timeout_s: float = 30.0) -> None:
        self.profile = _new_profile()
        args = [str(require_chromium()), *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0"]
        self.proc = subprocess.Popen(
            [*args, "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a stuck browser is killed with all its children
            preexec_fn=_die_with_parent,
            # Chromium makes its singleton socket's folder (org.chromium.Chromium.XXXXXX) in TMPDIR and removes it
            # only on a clean exit; inside the profile, it goes with the profile when the browser is killed
            env={**os.environ, "TMPDIR": self.profile},
        )
        self.log: deque[str] = deque(maxlen=50)
        found = threading.Event()
        self.ws_url = ""

        def drain() -> None:  # keep reading, or a full pipe would block the browser
            for line in self.proc.stderr:  # type: ignore[union-attr]
                self.log.append(line.rstrip())
                match = DEVTOOLS.search(line)
                if match and not found.is_set():
                    self.ws_url = match.group(1)
                    found.set()

        threading.Thread(target=drain, name="kgen-chromium-log", daemon=True).start()
        deadline = time.monotonic() + launch_timeout_s
        while not found.wait(0.1):
            if not self.alive or time.monotonic() > deadline:
                code = self.proc.poll()
                self.kill()
                tail = " | ".join(list(self.log)[-5:]) or "no output"
                if code is not None:
                    raise KgenError(f"Chromium ({args[0]}) exited at once with code {code}: {tail}")
                raise KgenError(f"Chromium did not start within {launch_timeout_s:.0f} s: {tail}")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def exited_within(self, seconds: float) -> bool:
        """Whether the process is gone, or goes within ``seconds`` (a dropped connection can come first)."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)


class BrowserSession:
    """``with BrowserSession() as s: s.call("startRun", candidate)``: the harness page in a live Chromium."""

    def __init__(self, job_timeout_s: float = 60.0, mounts: Mapping[str, Path] | None = None) -> None:
        """``mounts``: more directories to serve beside the runtime, by URL prefix (a benchmark's peer libraries)."""
        self.job_timeout_s = job_timeout_s
        self.server = StaticServer({"/": RUNTIME_DIR, **(mounts or {})})
        self._pw: Any = None
        self._chromium: _Chromium | None = None
        self._browser: Any = None
        self.page: Any = None
        self.restarts = 0
        self._fingerprint: dict[str, Any] | None = None

    def __enter__(self) -> BrowserSession:
        from playwright.sync_api import sync_playwright

        self.server.__enter__()
        self._pw = sync_playwright().start()
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        if self._pw is not None:
            with contextlib.suppress(Exception):  # its connection may be gone already (a signal cut a call)
                self._pw.stop()
        self.server.__exit__(*exc)

    @property
    def pid(self) -> int:
        assert self._chromium is not None
        return self._chromium.proc.pid

    def _start(self) -> None:
        self._chromium = _Chromium()
        self._browser = self._pw.chromium.connect_over_cdp(self._chromium.ws_url)
        context = self._browser.contexts[0] if self._browser.contexts else self._browser.new_context()
        self.page = context.new_page()
        self.page.goto(self.server.url("/harness.html"))
        self.page.wait_for_function("() => window.kgenHarness && window.kgenHarness.ready", timeout=30_000)

    def _stop(self) -> None:
        # the process first: closing over the protocol waits for a page that may be stuck in a WebGL draw
        if self._chromium is not None:
            self._chromium.kill()
        if self._browser is not None:
            with contextlib.suppress(Exception):  # already gone with its process
                self._browser.close()
        self._browser = self._chromium = self.page = None

    def restart(self) -> None:
        """A fresh browser and page (after a hang or a crash); inputs must be set again."""
        self._stop()
        self._start()
        self.restarts += 1

    def fingerprint(self) -> dict[str, Any]:
        """Browser version, adapter info, WebGL renderer, thread count: what every measurement is tied to."""
        if self._fingerprint is None:
            fp = self.evaluate("() => window.kgenHarness.fingerprint()")
            fp["browser"] = self._browser.version
            fp["software"] = software_rasterizer(fp)
            self._fingerprint = fp
        return self._fingerprint

    def limits(self) -> dict[str, int]:
        """The device's limits, under the names knob constraints use (``kgen.scheduling.space``)."""
        return limits_of(self.fingerprint())

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run ``script`` (a JavaScript function of ``arg``) in the page, under the watchdog; its result."""
        with self._watchdog(self.job_timeout_s + 10, "the page stopped answering"):
            return self.page.evaluate(script, arg)

    @contextlib.contextmanager
    def _watchdog(self, seconds: float, hung: str):
        """Playwright errors become ``BrowserCrashed``; and since Playwright's own timeouts need the page's main
        thread, which WebGL blocks (a synchronous readPixels on a kernel that never ends), a browser that does
        not answer within ``seconds`` is killed and that is ``BrowserHung``."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        chromium = self._chromium
        assert chromium is not None
        fired = threading.Event()

        def kill_stuck_browser() -> None:
            fired.set()
            chromium.kill()

        timer = threading.Timer(seconds, kill_stuck_browser)
        timer.start()
        try:
            yield
        except PlaywrightTimeout:
            raise
        except PlaywrightError as err:
            if fired.is_set():
                raise BrowserHung(f"{hung} (the page stopped answering; browser killed)") from None
            raise self._crash(err) from None
        finally:
            timer.cancel()

    def _crash(self, err: Exception) -> BrowserCrashed:
        gone = self._chromium is None or self._chromium.exited_within(2.0)
        return BrowserCrashed("browser crashed" if gone else f"page failed: {str(err).splitlines()[0]}")

    def call(self, method: str, *args: Any, timeout_s: float | None = None) -> dict[str, Any]:
        """Start ``kgenHarness[method](*args)`` in the page and wait for its result."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        timeout = self.job_timeout_s if timeout_s is None else timeout_s
        hung = f"{method} did not finish within {timeout:g} s"
        start = time.monotonic()
        with self._watchdog(timeout + 10, hung):
            try:
                job = self.page.evaluate(f"(args) => window.kgenHarness.{method}(...args)", list(args))
                self.page.wait_for_function(
                    "(id) => window.kgenHarness.finished(id)", arg=job, timeout=timeout * 1000, polling=50
                )
                result = self.page.evaluate("(id) => window.kgenHarness.result(id)", job)
            except PlaywrightTimeout:
                raise BrowserHung(hung) from None
        result["elapsedS"] = time.monotonic() - start
        return result

    def set_inputs(self, key: str, arrays_b64: list[str]) -> None:
        self.evaluate("([key, arrays]) => window.kgenHarness.setInputs(key, arrays)", [key, arrays_b64])

    def release(self, candidate_id: str) -> None:
        self.evaluate("(id) => window.kgenHarness.release(id)", candidate_id)
