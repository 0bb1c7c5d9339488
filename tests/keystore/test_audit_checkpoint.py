"""The checkpoint format: C2SP signed notes with tlog-checkpoint bodies, signed and checked.

Known answers come from the Go reference implementation (golang.org/x/mod/sumdb/note, its
PeterNeumann test key and note); hostile notes are parsed or refused with this package's
errors, never another exception.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keystore.audit_checkpoint import (
    SIGNATURE_PREFIX,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    parse_checkpoint_body,
    split_notes,
)
from keystore.errors import CheckpointSignatureInvalid, CheckpointUnreadable, VerifierKeyInvalid

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# golang.org/x/mod/sumdb/note note_test.go: a verifier key, its signer key, and a signed note.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "signserv-audit/test"
SIGNER = CheckpointSigner(ORIGIN, b"\x07" * 32)
OTHER_SIGNER = CheckpointSigner(ORIGIN, b"\x08" * 32)
HEAD = "ab" * 32
CHECKPOINT = Checkpoint(ORIGIN, 42, HEAD, ("time 2026-12-01T10:00:00Z",))


def test_the_verifier_key_of_the_go_reference_seed_is_the_go_vkey() -> None:
    """Key id = SHA-256(name || 0x0A || 0x01 || key)[:4], as the Go implementation derives it."""
    verifier = CheckpointSigner("PeterNeumann", GO_SEED).verifier
    assert verifier.key_id.hex() == "c74f20a3"
    assert verifier.vkey() == GO_VKEY
    assert CheckpointVerifier.from_vkey(GO_VKEY) == verifier


def test_the_go_reference_note_signature_verifies_and_only_its_body_is_refused() -> None:
    """The signature checks out (so the note format is the reference's); the text is no checkpoint."""
    verifier = CheckpointVerifier.from_vkey(GO_VKEY)
    with pytest.raises(CheckpointUnreadable, match="record count"):
        verifier.open(GO_NOTE)
    with pytest.raises(CheckpointSignatureInvalid, match="altered or forged"):
        verifier.open(GO_NOTE.replace("problem is", "problem was"))


def test_a_signed_checkpoint_reads_back_as_itself() -> None:
    note = SIGNER.sign(CHECKPOINT)
    assert note.startswith(f"{ORIGIN}\n42\n{base64.b64encode(bytes.fromhex(HEAD)).decode()}\n")
    assert f"\n\n{SIGNATURE_PREFIX}{ORIGIN} " in note
    opened = SIGNER.verifier.open(note)
    assert opened == CHECKPOINT
    assert opened.time == "2026-12-01T10:00:00Z"
    assert CheckpointVerifier.from_vkey(SIGNER.verifier.vkey()).open(note) == CHECKPOINT


@pytest.mark.parametrize(
    ("forged_note", "message"),
    [
        (lambda note: note.replace("\n42\n", "\n43\n"), "altered or forged"),
        (lambda note: note.replace("time 2026", "time 2025"), "altered or forged"),
        (lambda note: note[:-6] + ("A" if note[-6] != "A" else "B") + note[-5:], "altered"),
        (lambda _note: OTHER_SIGNER.sign(CHECKPOINT), "not signed by the checkpoint key"),
        (lambda note: note.replace(f"\u2014 {ORIGIN} ", "\u2014 someone-else "), "not signed by"),
    ],
    ids=["edited_count", "edited_time", "flipped_signature", "other_key", "renamed_signer"],
)
def test_a_forged_or_altered_checkpoint_is_refused_as_such(forged_note, message: str) -> None:
    with pytest.raises(CheckpointSignatureInvalid, match=message):
        SIGNER.verifier.open(forged_note(SIGNER.sign(CHECKPOINT)))


def test_a_checkpoint_of_another_origin_signed_by_the_same_key_is_refused() -> None:
    """The key name is the origin: a note naming another log does not vouch for this one."""
    renamed = CheckpointSigner("another-log", b"\x07" * 32)
    note = renamed.sign(Checkpoint("another-log", 1, HEAD))
    forged = note.replace("\u2014 another-log ", f"\u2014 {ORIGIN} ")
    with pytest.raises(CheckpointSignatureInvalid):
        SIGNER.verifier.open(forged)


@pytest.mark.parametrize(
    "garbled_note",
    [
        "",
        "\n",
        f"{ORIGIN}\n1\n",
        f"{ORIGIN}\n1\n{'A' * 44}\n",
        f"{ORIGIN}\n1\n{'A' * 44}\n\n",
        f"{ORIGIN}\n1\n{'A' * 44}\n\nno dash here\n",
        f"{ORIGIN}\n1\n{'A' * 44}\n\n\u2014 {ORIGIN} not*base64\n",
        f"{ORIGIN}\n1\n{'A' * 44}\n\n\u2014 {ORIGIN} AAAA\n",
        f"{ORIGIN}\r\n1\n{'A' * 44}\n\n\u2014 {ORIGIN} AAAAAAAA\n",
    ],
    ids=[
        "empty",
        "blank",
        "no_signature_block",
        "no_blank_line",
        "empty_signature_block",
        "signature_without_dash",
        "signature_not_base64",
        "signature_too_short",
        "carriage_return",
    ],
)
def test_a_garbled_note_is_unreadable(garbled_note: str) -> None:
    with pytest.raises(CheckpointUnreadable):
        SIGNER.verifier.open(garbled_note)


@pytest.mark.parametrize(
    "bad_body",
    [
        "origin\n01\nAAAA\n",
        "origin\n-1\n" + "A" * 43 + "=\n",
        "origin\n1\n" + "A" * 40 + "\n",
        "\n1\n" + "A" * 43 + "=\n",
        "origin\n1\n" + "A" * 43 + "=\n\nextension\n",
        "origin\n99999999999999999999\n" + "A" * 43 + "=\n",
    ],
    ids=[
        "leading_zero",
        "negative",
        "short_head",
        "empty_origin",
        "blank_extension",
        "count_out_of_range",
    ],
)
def test_a_bad_checkpoint_body_is_unreadable(bad_body: str) -> None:
    with pytest.raises(CheckpointUnreadable):
        parse_checkpoint_body(bad_body)


@pytest.mark.parametrize(
    "bad_vkey",
    [
        "",
        "name",
        "name+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+AhpcZQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
    ids=[
        "empty",
        "name_only",
        "no_key",
        "wrong_key_id",
        "upper_case_id",
        "wrong_key_type",
        "short_key",
        "space_in_name",
    ],
)
def test_a_bad_verifier_key_is_refused(bad_vkey: str) -> None:
    with pytest.raises(VerifierKeyInvalid):
        CheckpointVerifier.from_vkey(bad_vkey)


def test_an_origin_that_cannot_name_a_key_is_refused() -> None:
    for origin in ("", "with space", "with+plus", "tab\there"):
        with pytest.raises(ValueError, match="origin"):
            CheckpointSigner(origin, b"\x07" * 32)


def test_notes_written_one_after_another_split_back_apart() -> None:
    notes = [SIGNER.sign(Checkpoint(ORIGIN, count, HEAD)) for count in range(3)]
    assert list(split_notes("".join(notes))) == notes
    assert list(split_notes("\n".join(notes) + "\n\n")) == notes
    with pytest.raises(CheckpointUnreadable, match="no signature"):
        list(split_notes(notes[0] + f"{ORIGIN}\n5\n"))


checkpoints = st.builds(
    Checkpoint,
    st.just(ORIGIN),
    st.integers(min_value=0, max_value=2**63 - 1),
    st.binary(min_size=32, max_size=32).map(bytes.hex),
    st.lists(
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20).filter(
            lambda line: "\n" not in line
        ),
        max_size=3,
    ).map(tuple),
)


@FAST
@given(checkpoints)
def test_any_checkpoint_signs_and_reads_back(checkpoint: Checkpoint) -> None:
    assert SIGNER.verifier.open(SIGNER.sign(checkpoint)) == checkpoint


@FAST
@given(
    st.text(max_size=300)
    | st.builds(lambda cut: SIGNER.sign(CHECKPOINT)[:cut], st.integers(0, 300))
)
def test_hostile_notes_open_or_are_refused_with_checkpoint_errors(note: str) -> None:
    with contextlib.suppress(CheckpointUnreadable, CheckpointSignatureInvalid):
        SIGNER.verifier.open(note)


@FAST
@given(st.text(max_size=400))
def test_hostile_text_splits_into_notes_or_is_refused(text: str) -> None:
    try:
        for note in split_notes(text):
            assert note.endswith("\n")
    except CheckpointUnreadable:
        pass


@FAST
@given(st.text(max_size=120))
def test_hostile_verifier_keys_are_read_or_refused(vkey: str) -> None:
    with contextlib.suppress(VerifierKeyInvalid):
        CheckpointVerifier.from_vkey(vkey)


@FAST
@given(st.binary(max_size=200))
def test_a_byte_flip_in_a_signed_checkpoint_never_verifies_as_another(flips: bytes) -> None:
    """Any edit to a signed note either reads back the same checkpoint or is refused."""
    note = bytearray(SIGNER.sign(CHECKPOINT).encode("utf-8"))
    for position, value in zip(flips[::2], flips[1::2], strict=False):
        note[position % len(note)] = value
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        return
    with contextlib.suppress(CheckpointUnreadable, CheckpointSignatureInvalid):
        assert SIGNER.verifier.open(text) == CHECKPOINT


def test_the_example_in_the_documentation_verifies_with_its_verifier_key() -> None:
    document = (Path(__file__).parents[2] / "docs" / "audit-checkpoints.md").read_text()
    note = re.search(r"```text\n(.*?)```", document, flags=re.DOTALL)
    vkey = re.search(r"Its verifier key is `([^`]+)`", document)
    assert note is not None and vkey is not None
    checkpoint = CheckpointVerifier.from_vkey(vkey.group(1)).open(note.group(1))
    assert (checkpoint.records, checkpoint.time) == (1207, "2026-12-01T10:15:00Z")
