"""The checker stays polite and discreet: bounded requests, few failed logins, no token leaks."""

from __future__ import annotations

import io
import itertools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from signserv.checker import CheckSettings, Outcome, render_json, render_text, run_checks
from signserv.checker.auth_checks import FAILED_AUTHENTICATIONS, check_transport
from signserv.checker.context import CheckContext
from signserv.checker.errors import RunLimitReached
from signserv.checker.probe import ServiceProbe
from signserv.checker.results import Verdict
from signserv.checker.runner import MAX_REQUESTS
from signserv.secret import Secret

StartFakeService = Callable[..., Any]


def settings_for(service: Any) -> CheckSettings:
    """Check admin1 of ``service``, with admin2 as the other key."""
    return CheckSettings(
        base_url=service.url,
        key="admin1",
        token=Secret(service.tokens["admin1"]),
        second_key="admin2",
        second_token=Secret(service.tokens["admin2"]),
        timeout=5.0,
    )


def test_echoed_tokens_are_masked_in_every_output(start_fake_service: StartFakeService) -> None:
    service = start_fake_service("echoes_authorization")
    settings = settings_for(service)
    report = run_checks(settings)
    outputs = [render_text(report), render_json(report), repr(settings), repr(report)]
    for output in outputs:
        for token in service.tokens.values():
            assert token not in output
    assert "<hidden> is wrong" in render_text(report)


def test_requests_are_bounded_and_failed_logins_few(start_fake_service: StartFakeService) -> None:
    service = start_fake_service()
    report = run_checks(settings_for(service))
    refused_for_admin1 = [
        authorization
        for name, authorization in service.authorizations
        if name == "admin1" and authorization != service.tokens["admin1"]
    ]
    assert len(refused_for_admin1) == FAILED_AUTHENTICATIONS
    assert None in refused_for_admin1  # no Authorization header at all
    assert "" in refused_for_admin1  # the empty one the TKE client sends for an empty token
    assert report.requests_sent == len(service.authorizations) <= MAX_REQUESTS
    assert report.results[-1].check == "auth.still-usable"
    assert report.results[-1].outcome is Outcome.PASS


def test_a_lockout_is_reported_but_is_not_a_failure(start_fake_service: StartFakeService) -> None:
    """A 429 after a few failed logins is a legitimate defence: every auth check still passes."""
    report = run_checks(settings_for(start_fake_service("locks_out_after_three_failures")))
    auth = {
        result.check: result.outcome
        for result in report.results
        if result.check.startswith("auth.")
    }
    assert auth.pop("auth.still-usable") is Outcome.WARN
    assert set(auth.values()) == {Outcome.PASS}
    assert not report.failed


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_unreachable_service_ends_the_run_with_one_failure() -> None:
    token = Secret("a-token-long-enough-to-be-real")
    report = run_checks(CheckSettings(base_url=closed_port_url(), key="k", token=token))
    [result] = report.results
    assert result.outcome is Outcome.FAIL
    assert "ConnectionError" in result.evidence
    assert "the remaining checks were not run" in result.evidence


def make_probe(
    url: str, *, max_requests: int = 10, clock: Callable[[], float] | None = None
) -> ServiceProbe:
    """A probe with a small budget; ``clock`` replaces the monotonic clock."""
    options: dict[str, Any] = {} if clock is None else {"clock": clock}
    return ServiceProbe(
        url, timeout=5.0, ca_bundle=None, max_requests=max_requests, max_seconds=60.0, **options
    )


def test_the_request_budget_is_enforced(start_fake_service: StartFakeService) -> None:
    probe = make_probe(start_fake_service().url, max_requests=1)
    probe.get_key("admin1", None)
    with pytest.raises(RunLimitReached, match="request budget of 1"):
        probe.get_key("admin1", None)
    probe.close()


def test_the_time_budget_is_enforced() -> None:
    ten_minutes_a_tick = itertools.count(step=600)
    probe = make_probe(closed_port_url(), clock=lambda: float(next(ten_minutes_a_tick)))
    with pytest.raises(RunLimitReached, match="time budget"):
        probe.get_key("admin1", None)
    probe.close()


def test_a_slow_answer_cannot_outlast_the_time_budget(
    start_fake_service: StartFakeService,
) -> None:
    """The clock reads 0 when the budget starts and the request is sent, 600 s while reading."""
    ticks = itertools.chain([0.0, 0.0], itertools.repeat(600.0))
    probe = make_probe(start_fake_service().url, clock=lambda: next(ticks))
    with pytest.raises(RunLimitReached, match="while reading an answer"):
        probe.get_key("admin1", None)
    probe.close()


def test_netrc_credentials_are_never_added(
    start_fake_service: StartFakeService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request meant to carry no token carries none, even with a ~/.netrc entry for the host."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    service = start_fake_service()
    probe = make_probe(service.url)
    probe.get_key("admin1", None)
    probe.close()
    assert service.authorizations == [("admin1", None)]


@pytest.mark.parametrize(
    ("url", "outcome"),
    [
        ("https://signer.example.com", Outcome.PASS),
        ("http://127.0.0.1:8080", Outcome.PASS),
        ("http://[::1]:8080", Outcome.PASS),
        ("http://localhost:8080", Outcome.PASS),
        ("http://signer.example.com", Outcome.WARN),
        ("http://10.0.0.7:8080", Outcome.WARN),
    ],
)
def test_plain_http_warns_only_off_loopback(url: str, outcome: Outcome) -> None:
    settings = CheckSettings(base_url=url, key="k", token=Secret("t"))
    probe = make_probe(url)
    verdict: Verdict = check_transport(CheckContext(settings, probe))
    assert verdict.outcome is outcome
    assert probe.requests_sent == 0


@pytest.mark.parametrize("environment_bundle", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
@pytest.mark.parametrize(
    ("ca_bundle", "expected_verify"),
    [("/etc/given-ca.pem", "/etc/given-ca.pem"), (None, "/etc/environment-ca.pem")],
    ids=["ca-bundle-given", "no-ca-bundle"],
)
def test_the_ca_bundle_wins_over_the_environment_which_applies_only_without_one(
    environment_bundle: str,
    ca_bundle: str | None,
    expected_verify: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--ca-bundle`` is what the transport verifies against, whatever the environment says."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv(environment_bundle, "/etc/environment-ca.pem")
    verified_against: list[object] = []

    def send(
        adapter: HTTPAdapter, request: requests.PreparedRequest, **options: Any
    ) -> requests.Response:
        verified_against.append(options["verify"])
        response = requests.Response()
        response.status_code = 200
        response.raw = io.BytesIO(b"{}")
        response.request = request
        return response

    monkeypatch.setattr(HTTPAdapter, "send", send)
    probe = ServiceProbe(
        "https://signing.example",
        timeout=5.0,
        ca_bundle=ca_bundle,
        max_requests=2,
        max_seconds=60.0,
    )
    probe.get_key("admin1", None)
    probe.post_sign("admin1", None, b"{}")
    probe.close()
    assert verified_against == [expected_verify, expected_verify]
