"""``signserv-tke emulator serve`` as a real gunicorn subprocess on 127.0.0.1, for tests."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from ...conftest import free_port, stop_process, wait_until_answering

SIGNSERV_TKE = str(Path(sys.executable).with_name("signserv-tke"))


@dataclass
class RunningEmulatorServer:
    """A served emulator: its base URL, instance id, exported OA root and state file."""

    base_url: str
    instance_id: str
    oa_root: Path
    state: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client_env(self, iam_url: str, api_key: str) -> dict[str, str]:
        """What ``signserv-tke`` needs to administer this instance with an API key."""
        return {
            "SIGNSERV_TKE_API_ENDPOINT": self.base_url,
            "IBMCLOUD_HPCS_INSTANCE_ID": self.instance_id,
            "IBMCLOUD_IAM_API_ENDPOINT": iam_url,
            "IBMCLOUD_API_KEY": api_key,
            "SIGNSERV_TKE_TRUST_OA_ROOT": str(self.oa_root),
        }

    def stop(self) -> None:
        stop_process(self.process)


def start_emulator_server(
    state: Path,
    iam_url: str | None,
    *,
    access_token_file: Path | None = None,
    tls: tuple[Path, Path] | None = None,
    ca_bundle: Path | None = None,
    workers: int = 2,
    timeout: float = 30.0,
    state_option_after_serve: bool = False,
) -> RunningEmulatorServer:
    """Serve ``state`` on a free port; wait until it answers.

    Tokens are checked against ``iam_url``, or must equal the one in ``access_token_file``.
    ``--emulator-state`` goes before ``emulator serve``, or after it.
    """
    port = free_port()
    instance_id = str(uuid.uuid4())
    oa_root = state.with_name(f"oa-root-{port}.json")
    log = state.with_name(f"emulator-serve-{port}.log")
    state_option = ["--emulator-state", str(state)]
    arguments = [
        SIGNSERV_TKE,
        *([] if state_option_after_serve else state_option),
        "emulator",
        "serve",
        *(state_option if state_option_after_serve else []),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--instance-id",
        instance_id,
        "--export-oa-root",
        str(oa_root),
    ]
    if access_token_file is not None:
        arguments += ["--access-token-file", str(access_token_file)]
    elif iam_url is not None:
        arguments += ["--iam-endpoint", iam_url]
    if tls is not None:
        arguments += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
    with log.open("wb") as output:
        process = subprocess.Popen(
            arguments, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    scheme = "https" if tls else "http"
    server = RunningEmulatorServer(
        f"{scheme}://127.0.0.1:{port}", instance_id, oa_root, state, process, log
    )
    verify: bool | str = str(ca_bundle) if ca_bundle else True
    # Unauthenticated: a 401 says the API is up without using a token.
    ready = f"{server.base_url}/v1/tke/{instance_id}/hsms"
    wait_until_answering(process, log, ready, 401, timeout, verify=verify)
    return server
