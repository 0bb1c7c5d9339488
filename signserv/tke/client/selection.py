"""Which crypto units later commands target: the plug-in's ``DOMAINS`` workstation file (§3.6).

Units are numbered from 1 in ``GET /hsms`` order. Without a DOMAINS file every unit is
selected, as a fresh plug-in shows them; the file is written atomically with mode 0600.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from foundation import write_private_file
from signserv.tke.client.session import CryptoUnit
from signserv.tke.errors import TKEError

DOMAINS_FILENAME = "DOMAINS"


class SelectionError(TKEError, ValueError):
    """The DOMAINS file or a list of crypto-unit numbers cannot be used."""


def read_selected_ids(directory: Path, units: Sequence[CryptoUnit]) -> set[str]:
    """The ``hsm_id``s selected in ``<directory>/DOMAINS``; all units when there is no file."""
    path = directory / DOMAINS_FILENAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {unit.hsm_id for unit in units}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SelectionError(f"{path} cannot be read: {exc}") from None
    if not isinstance(document, list) or not all(isinstance(entry, dict) for entry in document):
        raise SelectionError(f"{path} must hold a JSON array of crypto-unit objects")
    return {
        entry["hsm_id"]
        for entry in document
        if entry.get("selected") is True and isinstance(entry.get("hsm_id"), str)
    }


def write_selection(directory: Path, units: Sequence[CryptoUnit], selected: set[str]) -> None:
    """Record every unit with its ``selected`` flag, replacing the file atomically."""
    document = [
        {
            "domain_num": unit.location.domain,
            "hsm_id": unit.hsm_id,
            "location": unit.location_text,
            "serial_num": unit.serial_number,
            "type": unit.unit_type,
            "selected": unit.hsm_id in selected,
        }
        for unit in units
    ]
    content = json.dumps(document, indent=2).encode("utf-8")
    write_private_file(directory / DOMAINS_FILENAME, content, replace=True)


def parse_unit_numbers(text: str, count: int) -> list[int]:
    """Crypto-unit numbers separated by spaces or commas, each between 1 and ``count``."""
    words = [word for word in re.split(r"[\s,]+", text.strip()) if word]
    if not words:
        raise SelectionError("no crypto-unit numbers given")
    numbers = []
    for word in words:
        if not word.isdigit() or not 1 <= int(word) <= count:
            raise SelectionError(f"{word!r} is not a crypto-unit number between 1 and {count}")
        numbers.append(int(word))
    return numbers
