"""Driving the service with wrk (when installed) and reading its figures from a Lua ``done`` hook."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from signserv.bench.summary import LoadSummary
from signserv.errors import SignservError

WRK_GENERATOR = "wrk"

# wrk counts answers other than 2xx/3xx in errors.status; latencies are in microseconds.
_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = {token}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class WrkFailed(SignservError):
    """wrk did not run to completion or printed no figures."""


def wrk_path() -> str | None:
    """The wrk executable on PATH, or None."""
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of printable ASCII is a valid Lua string literal


def run_wrk(
    wrk: str, url: str, token: str, body: bytes, connections: int, seconds: int
) -> LoadSummary:
    """POST ``body`` to ``url`` with ``token`` over ``connections`` connections for ``seconds``."""
    script = _SCRIPT.format(body=_lua_string(body.decode("ascii")), token=_lua_string(token))
    with tempfile.TemporaryDirectory(prefix="signserv-wrk-") as directory:
        script_file = Path(directory) / "sign.lua"  # holds the token: the directory is 0700
        script_file.write_text(script)
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        result = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [*command, "-s", str(script_file), url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("WRK-JSON ")]
    if result.returncode != 0 or not lines:
        raise WrkFailed(f"wrk exited {result.returncode}: {result.stderr.strip()[:200]}")
    figures = json.loads(lines[-1].removeprefix("WRK-JSON "))
    errors = {
        kind if kind != "status" else "status other than 2xx/3xx": figures[kind]
        for kind in ("connect", "read", "write", "status", "timeout")
        if figures[kind]
    }
    seconds_taken = figures["duration_us"] / 1e6
    return LoadSummary(
        generator=WRK_GENERATOR,
        connections=connections,
        seconds=round(seconds_taken, 2),
        requests=figures["requests"],
        per_second=round(figures["requests"] / seconds_taken, 1),
        p50_ms=round(figures["p50_us"] / 1000, 2),
        p99_ms=round(figures["p99_us"] / 1000, 2),
        statuses={"2xx/3xx": figures["requests"] - figures["status"]},
        errors=errors,
    )
