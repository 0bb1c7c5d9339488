"""The YAML file ``signserv-tke apply`` reads: Terraform's ``hsm_config`` block (TKE-REFERENCE §7.1).

::

    signature_threshold: 2
    revocation_threshold: 2
    admins:
      - name: admin1            # at most 30 bytes
        key: alice-key          # the signing-service key name
        token_file: alice.token # optional; relative to this file
      - name: admin2
        key: bob-key            # no token here: SIGNSERVKEYS's, else asked for on a terminal

A ``token`` member is accepted as Terraform accepts it, but ``token_file`` keeps secrets out
of the file. Types and members are checked when the file is read, naming the file and the
entry but never echoing a value: a YAML syntax error gives its line, column and kind without
PyYAML's snippet, and a member name that is not a plain word is not shown, since an inline
token may be what is there. Threshold ranges, name lengths and the number of admins are
CheckTransition problems (§7.3 A), reported with the SDK's texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from signserv import contract
from signserv.secret import MASK, Secret
from signserv.tke.errors import TKEError

_TOP_LEVEL = frozenset({"signature_threshold", "revocation_threshold", "admins"})
_ADMIN_MEMBERS = frozenset({"name", "key", "token", "token_file"})
# A member name shown in an error: a plain word, as every real member is; anything else may be a
# misplaced token (``token:SECRET: x`` is a member named ``token:SECRET``).
_SHOWABLE_MEMBER = re.compile(r"[A-Za-z_]{1,30}")
# A quoted part of a PyYAML problem (an alias, a tag, a character); kept only when it is one of
# PyYAML's token kinds (``'<scalar>'``) or a single punctuation character, else masked.
_QUOTED = re.compile(r"(['\"]).*\1", re.DOTALL)
_HARMLESS_QUOTED = re.compile(r"'(<[a-z ]+>|[^\w\s'\\]|\\[a-z])'")


class HsmConfigError(TKEError, ValueError):
    """The configuration file cannot be read or holds a wrong member or type."""


@dataclass(frozen=True)
class AdminEntry:
    """One administrator: its name in the units, its signing-service key, maybe its token."""

    name: str
    key: str
    token: Secret[str] | None = None


@dataclass(frozen=True)
class HsmConfig:
    """The desired thresholds and administrators of every crypto unit of the instance."""

    signature_threshold: int
    revocation_threshold: int
    admins: tuple[AdminEntry, ...]


def _unknown_members(members: Iterable[object], known: frozenset[str], where: str) -> None:
    unknown = [str(member) for member in members if member not in known]
    if not unknown:
        return
    shown = sorted(member for member in unknown if _SHOWABLE_MEMBER.fullmatch(member))
    hidden = len(unknown) - len(shown)
    named = shown + ([f"{hidden} more whose name is not shown"] if hidden else [])
    raise HsmConfigError(f"{where}: unknown member {', '.join(named)}")


def _integer(document: Mapping[str, object], member: str, source: str) -> int:
    value = document.get(member)
    if value is None:
        raise HsmConfigError(f"{source}: {member} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise HsmConfigError(f"{source}: {member} must be an integer")
    return value


def _string(entry: Mapping[str, object], member: str, where: str) -> str | None:
    value = entry.get(member)
    if value is not None and (not isinstance(value, str) or not value):
        raise HsmConfigError(f"{where}: {member} must be a non-empty string")
    return value


def _token(entry: Mapping[str, object], where: str, directory: Path) -> Secret[str] | None:
    inline = _string(entry, "token", where)
    token_file = _string(entry, "token_file", where)
    if inline is not None and token_file is not None:
        raise HsmConfigError(f"{where}: give token or token_file, not both")
    if token_file is None:
        return None if inline is None else Secret(inline)
    path = directory / token_file
    try:
        token = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        # The decoder's message would quote a byte of the token.
        raise HsmConfigError(f"{where}: token_file {path} is not UTF-8 text") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        detail = exc.strerror if isinstance(exc, OSError) else "not a usable path"
        raise HsmConfigError(f"{where}: token_file {path} cannot be read: {detail}") from None
    if not token:
        raise HsmConfigError(f"{where}: token_file {path} is empty")
    return Secret(token)


def _admin(entry: object, where: str, directory: Path) -> AdminEntry:
    if not isinstance(entry, dict):
        raise HsmConfigError(f"{where}: must be a mapping with name and key")
    _unknown_members(entry, _ADMIN_MEMBERS, where)
    name, key = _string(entry, "name", where), _string(entry, "key", where)
    if name is None or key is None:
        raise HsmConfigError(f"{where}: name and key are required")
    try:
        contract.require_key_name(key)
    except contract.InvalidKeyName as exc:
        raise HsmConfigError(f"{where}: key {key!r}: {exc}") from None
    return AdminEntry(name=name, key=key, token=_token(entry, where, directory))


def parse_hsm_config(document: object, *, source: str, directory: Path) -> HsmConfig:
    """Validate a loaded YAML document; token files are read relative to ``directory``."""
    if not isinstance(document, dict):
        raise HsmConfigError(f"{source}: must be a mapping of {', '.join(sorted(_TOP_LEVEL))}")
    _unknown_members(document, _TOP_LEVEL, source)
    admins = document.get("admins")
    if not isinstance(admins, list):
        raise HsmConfigError(f"{source}: admins must be a list of name/key entries")
    return HsmConfig(
        signature_threshold=_integer(document, "signature_threshold", source),
        revocation_threshold=_integer(document, "revocation_threshold", source),
        admins=tuple(
            _admin(entry, f"{source}: admins entry {index + 1}", directory)
            for index, entry in enumerate(admins)
        ),
    )


def load_hsm_config(path: Path) -> HsmConfig:
    """Read and validate the configuration file at ``path``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise HsmConfigError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise HsmConfigError(f"{path} cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise HsmConfigError(f"{path} is not valid YAML{_yaml_error_location(exc)}") from None
    except (ValueError, RecursionError):
        # PyYAML raises plain ValueError for impossible dates (2001-13-45) and recurses on
        # deep nesting; neither message is safe to echo (it may quote a value).
        raise HsmConfigError(f"{path} is not a usable YAML document") from None
    return parse_hsm_config(document, source=str(path), directory=path.parent)


def _yaml_error_location(exc: yaml.YAMLError) -> str:
    """Line, column and kind of a YAML error, without the snippet of the line PyYAML quotes."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return ""
    mark = exc.problem_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})"
    return f"{where}: {_problem_kind(exc.problem)}" if exc.problem else where


def _problem_kind(problem: str) -> str:
    def mask(quoted: re.Match[str]) -> str:
        return quoted[0] if _HARMLESS_QUOTED.fullmatch(quoted[0]) else MASK

    return _QUOTED.sub(mask, problem)
