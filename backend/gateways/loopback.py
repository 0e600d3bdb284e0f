"""The machinery every gateway sandbox shares (DESIGN rule 8).

A sandbox is a programmable HTTP server on 127.0.0.1, run by the stdlib
``ThreadingHTTPServer`` in a daemon thread. Subclasses declare their API routes (the real
provider's paths and JSON shapes) and their control routes under ``/__sandbox__/`` (what the
provider's other party would do: a user tapping "allow" in WeChat, say). This module adds:

* failure injection: ``fail_next(path, mode, ...)`` makes the next calls to ``path`` answer with
  a provider error code (``"errcode"``), an HTTP 500 (``"http500"``) or nothing at all after a
  delay (``"timeout"``: the request is dropped unprocessed, the connection closed);
* a clock that tests can move forward (``advance_clock``) to expire codes and tokens;
* a log of the API paths called (``calls``), failed calls included;
* ``SandboxControl``, a small HTTP client for the control routes, for use from another process.

State is guarded by one lock per sandbox; handlers never sleep while holding it.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlsplit

import requests

logger = logging.getLogger(__name__)

CONTROL_PREFIX = "/__sandbox__/"
FAILURE_MODES = ("errcode", "http500", "timeout")


@dataclass(frozen=True)
class SandboxRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class SandboxResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


Route = Callable[[SandboxRequest], SandboxResponse]


@dataclass
class _Failure:
    mode: str
    errcode: int | str | None
    delay: float
    remaining: int


class LoopbackSandbox:
    """Base class: lifecycle, dispatch, failure injection, clock and the shared controls."""

    name = "sandbox"
    timeout_delay = 10.0  # how long a "timeout" failure holds the request by default (> client timeouts)

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failures: dict[str, list[_Failure]] = {}
        self._calls: list[str] = []
        self._clock_offset = 0.0

    # --- lifecycle -----------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Bind ``host:port`` (0 = a free port) and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} sandbox is already running at {self.base_url}")
        self._server = _Server((host, port), _Handler)
        self._server.sandbox = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.name}-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{self.name} sandbox is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- clock ---------------------------------------------------------------------------
    def now(self) -> float:
        """The sandbox's unix time: the real clock plus ``advance_clock`` offsets."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self._lock:
            self._clock_offset += seconds

    # --- shared controls -------------------------------------------------------------------
    def fail_next(
        self,
        path: str,
        mode: str,
        errcode: int | str | None = None,
        times: int = 1,
        delay: float | None = None,
    ) -> None:
        """Make the next ``times`` calls to the API ``path`` fail the given way."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {FAILURE_MODES}, not {mode!r}")
        if mode == "errcode" and errcode is None:
            raise ValueError("mode 'errcode' needs an errcode")
        if times < 1:
            raise ValueError("times must be at least 1")
        failure = _Failure(mode, errcode, self.timeout_delay if delay is None else float(delay), int(times))
        with self._lock:
            self._failures.setdefault(path, []).append(failure)

    def clear_failures(self) -> None:
        """Forget the failures still pending (the provider is back)."""
        with self._lock:
            self._failures.clear()

    def calls(self, path: str | None = None) -> list[str]:
        """The API paths called so far, failed calls included (only ``path``, if given)."""
        with self._lock:
            return [called for called in self._calls if path is None or called == path]

    def reset(self) -> None:
        """Forget everything: state, call log, pending failures and clock offset."""
        with self._lock:
            self._failures.clear()
            self._calls.clear()
            self._clock_offset = 0.0
            self.reset_state()

    # --- for subclasses ----------------------------------------------------------------------
    def reset_state(self) -> None:
        raise NotImplementedError

    def api_routes(self) -> Mapping[tuple[str, str], Route]:
        raise NotImplementedError

    def control_routes(self) -> Mapping[tuple[str, str], Route]:
        return {}

    def error_response(self, request: SandboxRequest, errcode: int | str) -> SandboxResponse:
        """The provider's own answer for an error code (used by ``fail_next(mode="errcode")``)."""
        raise NotImplementedError

    # --- dispatch --------------------------------------------------------------------------
    def handle(self, request: SandboxRequest) -> SandboxResponse | None:
        """Answer one request; None means: drop the connection without an answer."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._handle_control(request)
        route = self.api_routes().get((request.method, request.path))
        if route is None:
            return SandboxResponse(404, b"not found", {"Content-Type": "text/plain"})
        with self._lock:
            self._calls.append(request.path)
        failure = self._take_failure(request.path)
        if failure is None:
            return route(request)
        if failure.mode == "timeout":
            time.sleep(failure.delay)
            return None
        if failure.mode == "http500":
            return SandboxResponse(
                500, b"<html><body>500 Internal Server Error</body></html>", {"Content-Type": "text/html"}
            )
        return self.error_response(request, failure.errcode)  # type: ignore[arg-type]

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(path)
            if not queue:
                return None
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.pop(0)
            return failure

    def _handle_control(self, request: SandboxRequest) -> SandboxResponse:
        routes = {**self._shared_control_routes(), **self.control_routes()}
        route = routes.get((request.method, request.path))
        if route is None:
            return SandboxResponse.json({"error": f"no control {request.method} {request.path}"}, 404)
        try:
            return route(request)
        except (ValueError, KeyError, TypeError) as exc:
            return SandboxResponse.json({"error": f"{type(exc).__name__}: {exc}"}, 400)

    def _shared_control_routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", CONTROL_PREFIX + "calls"): lambda request: SandboxResponse.json(
                self.calls(request.query.get("path"))
            ),
            ("POST", CONTROL_PREFIX + "fail"): self._control_fail,
            ("POST", CONTROL_PREFIX + "reset"): lambda request: self._ok(self.reset()),
            ("POST", CONTROL_PREFIX + "clock"): lambda request: self._ok(
                self.advance_clock(request.json()["advance"])
            ),
        }

    def _control_fail(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json()
        self.fail_next(
            spec["path"], spec["mode"], spec.get("errcode"), spec.get("times", 1), spec.get("delay")
        )
        return self._ok()

    @staticmethod
    def _ok(_: object = None) -> SandboxResponse:
        return SandboxResponse.json({"ok": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: LoopbackSandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up (e.g. a "timeout" failure): nothing to report
        logger.exception("sandbox %s failed on a request from %s", self.sandbox.name, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "QihuangSandbox/1.0"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = SandboxRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        try:
            response = self.server.sandbox.handle(request)
        except Exception:
            logger.exception(
                "sandbox %s crashed on %s %s", self.server.sandbox.name, self.command, parts.path
            )
            response = SandboxResponse(500, b"sandbox error", {"Content-Type": "text/plain"})
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s sandbox: " + format, self.server.sandbox.name, *args)


class SandboxControl:
    """HTTP client for a running sandbox's ``/__sandbox__/`` routes (from another process)."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, name: str, payload: Any = None) -> Any:
        url = f"{self.base_url}{CONTROL_PREFIX}{name}"
        response = requests.request(method, url, json=payload, timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"sandbox control {name} failed: HTTP {response.status_code} {response.text}")
        return response.json()

    def fail_next(
        self,
        path: str,
        mode: str,
        errcode: int | str | None = None,
        times: int = 1,
        delay: float | None = None,
    ) -> None:
        self.call(
            "POST", "fail", {"path": path, "mode": mode, "errcode": errcode, "times": times, "delay": delay}
        )

    def advance_clock(self, seconds: float) -> None:
        self.call("POST", "clock", {"advance": seconds})

    def calls(self, path: str | None = None) -> list[str]:
        return self.call("GET", "calls" + (f"?path={quote(path)}" if path else ""))

    def reset(self) -> None:
        self.call("POST", "reset")
