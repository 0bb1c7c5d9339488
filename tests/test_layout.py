"""The import graph keeps the layout's promises: no cycle, and arrows that only point down.

docs/architecture.md draws the packages and the direction of their imports; these tests read every
module's imports with ``ast`` (imports under ``if TYPE_CHECKING:`` excluded, since they never run)
and hold the code to that drawing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("foundation", "keystore", "signserv")
HTTP_SERVER_MODULES = ("flask", "werkzeug", "gunicorn")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}


def _is_type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs, at any depth, skipping ``if TYPE_CHECKING:`` bodies."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.stmt) and _is_type_checking_block(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _runtime_imports(node)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> set[str]:
    """Modules that ``module`` imports when it runs; ``from pkg import sub`` counts as ``pkg.sub``."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found: set[str] = set()
    for node in _runtime_imports(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        source = _resolve(module, node)
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            found.add(submodule if submodule in MODULES else source)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def _importers_of(prefixes: tuple[str, ...], targets: tuple[str, ...]) -> dict[str, set[str]]:
    """Modules under ``prefixes`` that import anything under ``targets``, and what."""
    offenders: dict[str, set[str]] = {}
    for module, imported in GRAPH.items():
        if not any(module == prefix or module.startswith(f"{prefix}.") for prefix in prefixes):
            continue
        bad = {
            name
            for name in imported
            if any(name == target or name.startswith(f"{target}.") for target in targets)
        }
        if bad:
            offenders[module] = bad
    return offenders


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(GRAPH[module] & MODULES.keys()):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    return components


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles() == []


def test_foundation_imports_neither_keystore_nor_signserv() -> None:
    assert _importers_of(("foundation",), ("keystore", "signserv")) == {}


def test_keystore_imports_nothing_from_signserv() -> None:
    assert _importers_of(("keystore",), ("signserv",)) == {}


@pytest.mark.parametrize(
    "side",
    [
        "signserv.contract",
        "signserv.der",
        "signserv.client",
        "signserv.checker",
        "signserv.tke",
    ],
)
def test_contract_client_checker_and_tke_do_not_import_the_keystore(side: str) -> None:
    assert _importers_of((side,), ("keystore",)) == {}


@pytest.mark.parametrize(
    "base",
    [
        "signserv.contract",
        "signserv.der",
        "signserv.secret",
        "signserv.errors",
        "signserv.secret_input",
        "signserv.tke_http",
        "signserv.client",
        "signserv.checker",
    ],
)
def test_the_shared_base_imports_no_http_server(base: str) -> None:
    assert _importers_of((base,), (*HTTP_SERVER_MODULES, "signserv.server")) == {}


def test_only_the_two_http_servers_import_flask_gunicorn_or_their_shared_runner() -> None:
    """``signserv/gunicorn_application.py`` is the one base module that needs Flask and gunicorn,
    so only the service and the emulator's HTTP front may import it or them."""
    servers = ("signserv.server", "signserv.tke.emulator", "signserv.gunicorn_application")
    importers = _importers_of(PACKAGES, (*HTTP_SERVER_MODULES, "signserv.gunicorn_application"))
    assert {
        module
        for module in importers
        if not any(module == server or module.startswith(f"{server}.") for server in servers)
    } == set()


def test_the_wire_formats_import_no_client_cli_or_emulator() -> None:
    sides = ("signserv.tke.client", "signserv.tke.cli", "signserv.tke.emulator")
    assert _importers_of(("signserv.tke.wire",), sides) == {}


def test_the_tke_client_imports_neither_the_server_nor_the_emulator() -> None:
    forbidden = ("signserv.server", "signserv.host", "signserv.tke.emulator", "signserv.tke.cli")
    assert _importers_of(("signserv.tke.client",), forbidden) == {}


def test_the_emulator_imports_no_client_and_no_signing_service() -> None:
    forbidden = ("signserv.tke.client", "signserv.tke.cli", "signserv.server", "signserv.client")
    assert _importers_of(("signserv.tke.emulator",), forbidden) == {}


@pytest.mark.parametrize("entry", ["signserv.tke.cli.main", "signserv.client", "signserv.checker"])
def test_client_tools_start_without_flask_or_gunicorn(entry: str) -> None:
    """What a fresh interpreter loads for the client tools: no HTTP server framework, no keystore."""
    probe = (
        f"import sys, {entry}; "
        f"print(sorted(m for m in {(*HTTP_SERVER_MODULES, 'keystore')!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
