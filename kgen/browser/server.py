"""A static file server on 127.0.0.1 for the harness page and the runtime, cross-origin isolated.

It serves only the directories it is given (each under its own URL prefix), GET and HEAD only, never a path
that resolves outside them. Every response carries COOP/COEP, so the page gets SharedArrayBuffer and a 5 µs
``performance.now()``.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Mapping
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class _Handler(BaseHTTPRequestHandler):
    server_version = "kgen"

    def __init__(self, *args, mounts: Mapping[str, Path], **kwargs) -> None:
        self.mounts = mounts
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args) -> None:
        pass  # quiet: the harness reports what matters

    def _resolve(self) -> Path | None:
        path = unquote(urlsplit(self.path).path)
        for prefix, root in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if path == prefix.rstrip("/") or path.startswith(prefix):
                rel = path[len(prefix) :].lstrip("/") or "index.html"
                target = (root / rel).resolve()
                if target.is_relative_to(root) and target.is_file():
                    return target
                return None
        return None

    def _send(self, body: bool) -> None:
        try:
            target = self._resolve()
        except (ValueError, OSError):  # a NUL byte (%00) or a name the file system refuses: a bad request
            self.send_error(400, "bad request")
            return
        if target is None:
            self.send_error(404, "not found")
            return
        data = target.read_bytes()
        ctype = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in ISOLATION_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(body=True)

    def do_HEAD(self) -> None:
        self._send(body=False)


class StaticServer:
    """``with StaticServer({"/": RUNTIME_DIR}) as s: s.url("/harness.html")``."""

    def __init__(self, mounts: Mapping[str, Path] | None = None, port: int = 0) -> None:
        mounts = mounts or {"/": RUNTIME_DIR}
        self.mounts = {prefix: Path(root).resolve() for prefix, root in mounts.items()}
        handler = partial(_Handler, mounts=self.mounts)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="kgen-server", daemon=True)

    def mount(self, prefix: str, root: Path) -> None:
        """Serve ``root`` under ``prefix`` too, from now on (the request handlers share ``mounts``)."""
        self.mounts[prefix] = Path(root).resolve()

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def __enter__(self) -> StaticServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
