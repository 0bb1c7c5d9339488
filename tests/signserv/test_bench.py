"""`signserv bench`: the smoke run works end to end; the report's arithmetic is right."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from signserv.bench import render_comparison, softhsm_token
from signserv.bench.http_load import LoadResult, _read_response
from signserv.bench.summary import percentile_ms, summarize


def test_smoke_run_measures_every_phase_and_reports_no_error(tmp_path: Path) -> None:
    """`signserv bench --smoke --json` with the built-in client (as CI has no wrk) runs clean."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("SIGNSERV_")
    }
    environment["SIGNSERV_HOME"] = str(tmp_path / "unused-home")
    command = [sys.executable, "-m", "signserv", "bench", "--smoke", "--json"]
    result = subprocess.run(
        [*command, "--load-generator", "builtin"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0
    assert report["openssl_sign_per_s"] > 0
    assert report["service_sign_per_s"] > 0
    assert report["ratio"] > 0
    for name, phase in report["phases"].items():
        assert phase["requests"] > 0, name
        assert phase["errors"] == {}, name
    for flood in ("wrong_token_flood", "unknown_key_flood"):
        assert report[flood]["peak_rss_mib"] > 0
    assert report["unknown_key_flood"]["argon2id_runs"] > 0
    assert report["unknown_key_flood"]["attack"]["connections"] == 64
    slow = report["slow_connections"]
    assert slow["count"] == 32 and slow["held"]["opened"] >= 32
    assert slow["legitimate"]["requests"] > 0 and slow["legitimate"]["errors"] == {}
    if softhsm_token.missing_parts():
        assert report["hsm_sign_per_s"] is None and "unavailable" in report["hsm_status"]
    else:
        assert report["hsm_sign_per_s"] > 0
    assert not (tmp_path / "unused-home").exists()


def test_smoke_run_on_both_backends_reports_them_side_by_side_and_leaves_no_keystore(
    tmp_path: Path, postgres_database
) -> None:
    """`--backend both`: SQLite and PostgreSQL, one comparison table; the database ends empty."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("SIGNSERV_")
    }
    environment["SIGNSERV_HOME"] = str(tmp_path / "unused-home")
    result = subprocess.run(
        [
            sys.executable, "-m", "signserv", "bench", "--smoke", "--load-generator", "builtin",
            "--json", "--backend", "both", "--postgres-url", postgres_database.url,
            "--postgres-password-file", str(postgres_database.password_file),
        ],
        capture_output=True, text=True, env=environment, timeout=600, check=False,
    )  # fmt: skip
    # Floods may be shed with 503 "busy" on a loaded machine (counted as errors, exit 1);
    # every other phase must be clean on both backends.
    assert result.returncode in (0, 1), result.stdout + result.stderr
    documents = json.loads(result.stdout)
    assert list(documents) == ["sqlite", "postgres"]
    for backend, document in documents.items():
        assert document["backend"] == backend
        for name, phase in document["phases"].items():
            assert phase["requests"] > 0, (backend, name)
            assert "flood" in name or phase["errors"] == {}, (backend, name, phase["errors"])
    table = render_comparison(documents)
    assert table.startswith("signserv bench: sqlite vs postgres")
    assert "| figure | sqlite | postgres |" in table
    assert "| warm sign, 8 connections |" in table
    password = postgres_database.password_file.read_text().strip()
    with psycopg.connect(postgres_database.url, password=password) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,), "the throwaway keystore must be dropped"


def test_percentile_is_nearest_rank_in_milliseconds() -> None:
    latencies = [0.001 * value for value in range(1, 101)]
    assert percentile_ms(latencies, 50) == 50.0
    assert percentile_ms(latencies, 99) == 99.0
    assert percentile_ms([], 99) == 0.0


def test_unexpected_statuses_and_transport_failures_count_as_errors() -> None:
    result = LoadResult(elapsed=2.0)
    result.statuses.update({401: 5, 429: 3, 500: 1})
    result.socket_errors.update({"ConnectionResetError": 2})
    summary = summarize(result, connections=4, expected=(401, 429))
    assert summary.errors == {"status 500": 1, "ConnectionResetError": 2}
    assert summary.error_count == 3
    assert summary.requests == 11
    assert summary.per_second == 5.5


def test_load_generator_reads_a_response_and_whether_the_server_closes() -> None:
    async def read(raw: bytes) -> tuple[int, bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader)

    answer = b"HTTP/1.1 401 UNAUTHORIZED\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    assert asyncio.run(read(answer)) == (401, True)
    assert asyncio.run(read(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) == (200, False)
