"""The secrets the README's flows create in a checkout stay out of git and the Docker context."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
GIT = shutil.which("git")
# What the README's flows leave in a checkout: tokens, SIGNSERVKEYS, key parts and their
# passwords, the emulator's state, a home, a backup; the emulator server's access token and TLS
# key, and an apply file with inline tokens.
SECRETS = [
    "tke-files/SIGNSERVKEYS",
    "tke-files/mkpart-0123456789abcdef.json",
    "tke-files/signserv-tke-emulator.json",
    "SIGNSERVKEYS",
    "admin1.token",
    "part1.password",
    "part2.hex",
    "mkpart-0123456789abcdef.json",
    "var/signserv/master.key",
    "var/signserv/keystore.db",
    "master.key.old",
    "keys.backup",
    "token.txt",
    "tls.key",
    "tke-files/tls.key",
    "hsm_config.yaml",
]
SOURCES = ["signserv/cli/main.py", "README.md", "setup.cfg", "docs/protocol.md"]


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore line as a regex over context-relative paths (Go filepath.Match plus **)."""
    parts = re.split(r"(\*\*/|\*|\?)", pattern)
    wildcards = {"**/": "(?:.*/)?", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def _docker_ignores(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (or a directory above it) out of the build context."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [_docker_pattern(line) for line in lines if line and not line.startswith("#")]
    prefixes = ["/".join(path.split("/")[:end]) for end in range(1, path.count("/") + 2)]
    return any(pattern.fullmatch(prefix) for pattern in patterns for prefix in prefixes)


@pytest.mark.skipif(GIT is None, reason="needs git")
@pytest.mark.parametrize("path", SECRETS + SOURCES)
def test_git_ignores_the_secrets_and_nothing_of_the_source(path: str) -> None:
    ignored = subprocess.run(
        [str(GIT), "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == (0 if path in SECRETS else 1)


@pytest.mark.parametrize("path", SECRETS + SOURCES)
def test_the_docker_context_excludes_the_secrets_and_nothing_of_the_source(path: str) -> None:
    assert _docker_ignores(path) is (path in SECRETS)
