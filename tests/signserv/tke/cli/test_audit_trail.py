"""Every command ``signserv-tke`` sends is described correctly in the signing service's audit.

A signing service of this test's own (so its audit log holds only this test's requests) signs a
whole administration: administrators added in imprint mode and after it, leaving imprint mode,
thresholds, a removal, each step of the manual master-key path (clearing both registers among
them), zeroize, auto-init and auto-mk-rotate. Each signature's
audit record must say what it signed, checked against what the crypto units are and what the
commands were meant to do, not against the decoder itself.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from signserv.client import SigningServiceClient
from signserv.secret import Secret
from signserv.tke.emulator import DEFAULT_STATE_FILENAME, open_emulator

from ....conftest import make_home
from .test_master_key_cli import add_two_parts, cli_runner, load_parts, succeeded

ROLES = ("alice", "bob", "carol")


def workstation(directory: Path, tokens: dict[str, str]) -> Path:
    """$CLOUDTKEFILES with every token and the two part owners' password files."""
    directory.mkdir()
    entries = [{"key": name, "token": token} for name, token in tokens.items()]
    (directory / "SIGNSERVKEYS").write_text(json.dumps(entries))
    (directory / "value.hex").write_text(bytes(range(32)).hex())
    (directory / "alice.password").write_text("alice's long password\n")
    (directory / "bob.password").write_text("bob's long password\n")
    return directory


def units_of(cloudtkefiles: Path) -> set[tuple[str, int]]:
    """(serial, domain) of every crypto unit the emulator under ``cloudtkefiles`` holds."""
    listing = open_emulator(cloudtkefiles / DEFAULT_STATE_FILENAME).list_crypto_units()
    units = [unit for kind in listing.values() for unit in kind]  # type: ignore[attr-defined]
    return {
        (unit["serial_number"], int(unit["location"].split(".")[-1].strip("[]"))) for unit in units
    }


def signed_records(audit_log: Path) -> list[dict[str, Any]]:
    """The audit records of successful signatures, oldest first."""
    records = [json.loads(line) for line in audit_log.read_text().splitlines()]
    return [r for r in records if r["operation"] == "sign" and r["status"] == 200]


def test_the_audit_trail_says_what_each_tke_command_signed(
    start_signserv: Any, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "service")
    service = start_signserv(home)
    tokens = {role: home.create_key(role) for role in ROLES}
    with SigningServiceClient(service.url, timeout=30) as client:
        skis = {role: client.public_key(role, Secret(tokens[role])).ski().hex() for role in ROLES}

    manual = workstation(tmp_path / "manual", tokens)
    run = cli_runner(service.url, manual)
    succeeded(run("cryptounit-admin-add", "--key", "alice", "--name", "Alice"))
    succeeded(run("cryptounit-admin-add", "--key", "bob", "--name", "Bob"))
    succeeded(run("cryptounit-exit-impr"))
    succeeded(run("cryptounit-thrhld-set", "--signature", "2", "--revocation", "2"))
    succeeded(run("cryptounit-admin-add", "--key", "carol", "--name", "Carol"))
    succeeded(run("cryptounit-admin-rm", "--ski", skis["carol"], "--yes"))
    add_two_parts(run, manual)
    succeeded(load_parts(run, manual, "alice", "bob"))
    succeeded(run("cryptounit-mk-commit"))
    succeeded(run("cryptounit-mk-setimm", "--yes"))
    succeeded(run("cryptounit-mk-clrcur", "--yes"))
    succeeded(load_parts(run, manual, "alice", "bob"))
    succeeded(run("cryptounit-mk-clrnew", "--yes"))
    succeeded(run("cryptounit-zeroize", "--yes"))
    manual_units = units_of(manual)

    automatic = workstation(tmp_path / "automatic", tokens)
    run = cli_runner(service.url, automatic)
    admins = [f"--admin={role}={role.title()}" for role in ROLES]
    thresholds = ["--signature-threshold", "2", "--revocation-threshold", "2"]
    succeeded(run("auto-init", *thresholds, *admins))
    succeeded(run("auto-mk-rotate", "--yes"))
    units = manual_units | units_of(automatic)

    records = signed_records(home.home / "audit.log")
    described = [record["signed"] for record in records]
    assert all(d["kind"] != "opaque" for d in described), described
    commands = Counter(d.get("command") for d in described if "command" in d)
    assert set(commands) == {
        "set attributes",
        "add administrator",
        "remove administrator",
        "generate importer key",
        "import master-key part",
        "commit pending master key",
        "finalize master key",
        "clear current master key",
        "clear pending master key",
        "zeroize",
        "generate random master key",
        "export current master key",
        "export pending master key",
    }
    kinds = Counter(d["kind"] for d in described)
    # One certificate per administrator added: two, then Carol, then three by auto-init; and
    # auto-init probes each of its three keys before it changes anything (§1.8).
    assert (kinds["certificates"], kinds["key-probe"]) == (6, 3)

    thresholds: set[tuple[int, int]] = set()
    for d in described:
        if "command" not in d:
            continue
        assert (d["module"], d["domain"]) in units
        if d["command"] == "add administrator":
            assert (d["administrator"], d["ski"]) == ("Carol", skis["carol"])
        if d["command"] == "remove administrator":
            assert d["ski"] == skis["carol"]
        if d["command"] == "set attributes":
            thresholds.add(
                (d["attributes"]["signature threshold"], d["attributes"]["revocation threshold"])
            )
        assert d["kind"] != "other-commands"
    assert thresholds == {(1, 1), (2, 2)}  # exit-impr, then thrhld-set and auto-init

    # Counters only grow on each unit (every signer of one command signs the same counter).
    seen: dict[tuple[str, int], int] = {}
    for d in described:
        if "counter" in d:
            unit = (d["module"], d["domain"])
            assert d["counter"] >= seen.get(unit, 0)
            seen[unit] = d["counter"]

    tail = home.run("audit", "tail", "-n", "1000").stdout
    module, domain = next((d["module"], d["domain"]) for d in described if d.get("administrator"))
    assert (
        f"add administrator 'Carol' (SKI {skis['carol'][:8]}…) to domain {domain} of module "
        f"{module}, counter "
    ) in tail
    assert "administrator certificate (SHA-512 of its TBSCertificate)" in tail
    assert "signature threshold 2, revocation threshold 2" in tail
