"""Reading secrets for the CLI: exact content, one line ending removed, no prompt off a terminal."""

from __future__ import annotations

import pytest

from signserv.secret_input import SecretInputError, read_secret


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("token\n", "token"),
        ("token\r\n", "token"),
        ("  pass phrase  \n", "  pass phrase  "),
        ("x", "x"),
    ],
)
def test_only_the_final_line_ending_is_removed(tmp_path, content: str, expected: str) -> None:
    source = tmp_path / "secret"
    source.write_text(content, newline="")
    assert read_secret(str(source), "password").reveal() == expected


def test_empty_and_missing_sources_are_errors_naming_the_secret(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretInputError, match="password is empty"):
        read_secret(str(empty), "password")
    with pytest.raises(SecretInputError, match="cannot read the password file") as missing:
        read_secret(str(tmp_path / "absent"), "password")
    assert "absent" not in str(missing.value)  # the "path" may be the secret itself, pasted


def test_a_secret_pasted_where_its_file_belongs_is_not_echoed() -> None:
    pasted = "s3cr3t-pasted-in-place-of-a-path"
    with pytest.raises(SecretInputError) as refused:
        read_secret(pasted, "token", option="--token-file")
    assert pasted not in str(refused.value)
    assert "the token file given with --token-file" in str(refused.value)


def test_no_prompt_without_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(SecretInputError, match="not a terminal"):
        read_secret(None, "token")


def test_non_utf8_secret_is_refused_without_quoting_its_bytes(tmp_path) -> None:
    source = tmp_path / "secret"
    source.write_bytes(b"pass\xe9word")
    with pytest.raises(SecretInputError) as refused:
        read_secret(str(source), "password")
    assert "not UTF-8 text" in str(refused.value)
    assert "0xe9" not in str(refused.value) and "\\xe9" not in str(refused.value)
