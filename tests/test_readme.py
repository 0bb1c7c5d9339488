"""The README as a new user reads it: links that resolve, no empty blocks, no private references."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# docs/architecture.md is for the project's developers, who have the design documents.
USER_DOCUMENTS = [
    ROOT / "README.md",
    *sorted(path for path in (ROOT / "docs").glob("*.md") if path.name != "architecture.md"),
]


@pytest.mark.parametrize("document", USER_DOCUMENTS, ids=lambda path: path.name)
def test_relative_links_name_files_of_the_project(document: Path) -> None:
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", document.read_text())
    missing = [target for target in targets if not (document.parent / target).exists()]
    assert missing == []


@pytest.mark.parametrize("document", USER_DOCUMENTS, ids=lambda path: path.name)
def test_no_code_block_is_empty(document: Path) -> None:
    assert not re.search(r"^```\w*\n```$", document.read_text(), flags=re.MULTILINE)


@pytest.mark.parametrize("document", USER_DOCUMENTS, ids=lambda path: path.name)
def test_sections_of_documents_users_do_not_have_are_not_cited(document: Path) -> None:
    """The project's own protocol reference is docs/protocol.md."""
    assert not re.search(r"TKE-REFERENCE\s*§|DESIGN\s*§|§\d+ item", document.read_text())


def test_the_readme_uses_one_spelling_of_the_commands() -> None:
    """Bare `signserv` with the virtual environment active, never `.venv/bin/signserv`."""
    text = (ROOT / "README.md").read_text()
    assert ".venv/bin/signserv" not in text
    assert "every command in this README assumes that environment is active" in text
