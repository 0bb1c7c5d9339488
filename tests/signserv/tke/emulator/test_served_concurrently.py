"""``emulator serve`` with two gunicorn workers and eight concurrent clients over HTTP.

Every client adds its own administrator to the same crypto unit, reading the transaction
counter afresh and trying again when another client's command took that counter value
(§4.4). If the workers did not serialise their read-modify-write of the state file, an
update would be lost: fewer administrators, or a counter that moved less than once per add.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from signserv.secret import Secret
from signserv.tke.client.cloud_api import CloudTkeApi, tke_api_session
from signserv.tke.client.iam import IssuedAccessToken
from signserv.tke.client.targeting import CloudTarget
from signserv.tke.emulator import DEFAULT_STATE_FILENAME
from signserv.tke.wire import CommandId

from ....iam_token_server import IamTokenServer
from ..emulator_server import RunningEmulatorServer, start_emulator_server
from .conftest import Administrator, UnitDriver

CLIENTS = 8  # also the most administrators a unit holds (MAX_ADMINS)
ATTEMPTS_PER_CLIENT = 60
CLIENT_TIMEOUT_SECONDS = 30


def _driver_over_http(server: RunningEmulatorServer, token: str) -> UnitDriver:
    """A driver for the first operational unit, with its own HTTP session."""
    api = CloudTkeApi(
        CloudTarget(server.base_url, server.instance_id),
        IssuedAccessToken(Secret(token)),
        session=tke_api_session(),
        timeout=CLIENT_TIMEOUT_SECONDS,
    )
    unit = api.list_crypto_units()["hsms"][0]  # type: ignore[index]
    return UnitDriver(api, unit["hsm_id"], unit["location"])


def _add_until_accepted(driver: UnitDriver, admin: Administrator) -> int:
    """Add ``admin`` (imprint mode: unsigned); return how many tries a stale counter cost."""
    for attempt in range(ATTEMPTS_PER_CLIENT):
        driver.emulator.list_crypto_units()  # a query between the admin commands
        if driver.command(CommandId.ADD_ADMIN, admin.certificate()).return_code == 0:
            return attempt
    raise AssertionError(f"{admin.name} was never added in {ATTEMPTS_PER_CLIENT} tries")


def test_two_workers_and_eight_clients_lose_no_update(
    tmp_path: Path, iam_server: IamTokenServer
) -> None:
    """Eight concurrent adds to one unit: eight admins, the counter moved exactly eight times."""
    state = tmp_path / DEFAULT_STATE_FILENAME
    # --emulator-state after 'emulator serve', where users tend to put it.
    server = start_emulator_server(state, iam_server.url, workers=2, state_option_after_serve=True)
    try:
        token = iam_server.issue_token(lifetime_seconds=600)
        drivers = [_driver_over_http(server, token) for _ in range(CLIENTS)]
        counter_before = int.from_bytes(
            drivers[0].query(CommandId.QUERY_DOMAIN_ATTRIBUTES).counter, "big"
        )
        admins = [Administrator(f"concurrent {n}") for n in range(CLIENTS)]
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            list(pool.map(_add_until_accepted, drivers, admins, timeout=120))
        checker = drivers[0]
        assert sorted(checker.installed_skis()) == sorted(admin.ski for admin in admins)
        counter_after = int.from_bytes(
            checker.query(CommandId.QUERY_DOMAIN_ATTRIBUTES).counter, "big"
        )
        assert counter_after == counter_before + CLIENTS
    finally:
        server.stop()
    document = json.loads(state.read_text())  # whole, never torn
    assert isinstance(document, dict)
    log = server.log.read_text()
    assert "Traceback" not in log
    assert log.count('" 200 ') >= CLIENTS * 2, "every client queried and added"
