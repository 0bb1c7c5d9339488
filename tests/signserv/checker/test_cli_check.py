"""`signserv check`: options, token sources, exit status and output formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from signserv.cli.check import check_command
from signserv.secret_input import SecretInputError

StartFakeService = Callable[..., Any]


def token_file(directory: Path, name: str, token: str) -> str:
    """Write ``token`` (with the newline editors add) to a file and return its path."""
    path = directory / name
    path.write_text(token + "\n")
    return str(path)


def test_a_conforming_service_exits_zero_with_a_summary(
    start_fake_service: StartFakeService, tmp_path: Path
) -> None:
    service = start_fake_service()
    tokens = token_file(tmp_path, "token", service.tokens["admin1"])
    result = CliRunner().invoke(
        check_command, [service.url, "--key", "admin1", "--token-file", tokens]
    )
    assert result.exit_code == 0, result.output
    summary = result.output.splitlines()[-1]
    assert summary.startswith("conforms: ")
    assert "0 FAIL, 0 WARN" in summary
    assert "PASS  public-key.der" in result.output


def test_any_failure_exits_one(start_fake_service: StartFakeService, tmp_path: Path) -> None:
    service = start_fake_service("sha256_signature")
    tokens = token_file(tmp_path, "token", service.tokens["admin1"])
    result = CliRunner().invoke(
        check_command, [service.url, "--key", "admin1", "--token-file", tokens]
    )
    assert result.exit_code == 1
    assert "FAIL  sign.sha512-once" in result.output


def test_json_report_is_machine_readable(
    start_fake_service: StartFakeService, tmp_path: Path
) -> None:
    service = start_fake_service()
    arguments = [
        service.url,
        "--key", "admin1",
        "--token-file", token_file(tmp_path, "one", service.tokens["admin1"]),
        "--key2", "admin2",
        "--token2-file", token_file(tmp_path, "two", service.tokens["admin2"]),
        "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(check_command, arguments)
    report = json.loads(result.output)
    assert result.exit_code == 0
    assert report["ok"] is True
    assert report["summary"]["FAIL"] == 0
    outcomes = {check["check"]: check["outcome"] for check in report["checks"]}
    assert outcomes["auth.other-keys-token"] == "PASS"
    assert set(report["checks"][0]) == {"check", "outcome", "evidence"}


def test_the_token_can_come_from_stdin(start_fake_service: StartFakeService) -> None:
    service = start_fake_service()
    result = CliRunner().invoke(
        check_command,
        [service.url, "--key", "admin1", "--token-file", "-"],
        input=service.tokens["admin1"] + "\n",
    )
    assert result.exit_code == 0, result.output


def test_no_prompt_when_stdin_is_not_a_terminal() -> None:
    result = CliRunner().invoke(check_command, ["http://127.0.0.1:9", "--key", "admin1"])
    assert isinstance(result.exception, SecretInputError)
    assert "not a terminal" in str(result.exception)


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["ftp://host", "--key", "k", "--token-file", "t"], "must look like https://host:port"),
        (["https://user:pw@host", "--key", "k", "--token-file", "t"], "must not carry credentials"),
        (["https://host", "--key", "a/b", "--token-file", "t"], "unreserved characters"),
        (["https://host", "--key", "k", "--token2-file", "t"], "--token2-file needs --key2"),
        (
            [
                "https://host",
                "--key",
                "k",
                "--token-file",
                "-",
                "--key2",
                "j",
                "--token2-file",
                "-",
            ],
            "can be - (stdin)",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(arguments: list[str], complaint: str) -> None:
    result = CliRunner().invoke(check_command, arguments)
    assert result.exit_code == 2
    assert complaint in result.output
    assert "pw" not in result.output
