"""Moving a master key into a crypto unit through the real protocol (TKE-REFERENCE §4.5, §6.5).

A unit only ever receives a key wrapped for its own importer key: either exported by another
unit (Export WK with a KPH certificate) or wrapped here from key parts (ECDH, X9.63 KDF, AES
key wrap, as the exporting unit would). Each step names itself, so a failure half-way says
which unit and step stopped, and the caller can resume from the registers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

from signserv.contract import PublicPoint
from signserv.errors import SignservError
from signserv.secret import Secret
from signserv.tke.client.session import CommandSigner, CryptoUnitSession
from signserv.tke.errors import TKEError
from signserv.tke.wire.admin_messages import AdminBlock, AdminRequest
from signserv.tke.wire.commands import CommandId
from signserv.tke.wire.counter import increment_counter
from signserv.tke.wire.fields import encode_u32

# A pure crypto helper of the emulator package: the same wrapping an exporting unit applies.
from signserv.tke.wire.key_transport import wrap_key_for
from signserv.tke.wire.kph import build_kph_certificate
from signserv.tke.wire.parameter_map import (
    ParameterTag,
    decode_parameter_map,
    encode_parameter_map,
    export_request_parameters,
    find_parameter,
)
from signserv.tke.wire.signer_info import SignerInfo, encode_signer_infos
from signserv.tke.wire.spki import parse_p521_spki

P521_IMPORTER_KEY_TYPE = 3

ChooseSigners = Callable[[CryptoUnitSession, int], Sequence[CommandSigner]]
"""The signers for ``count`` signatures on a unit: installed administrators only."""


class UnitStepFailed(TKEError):
    """A step failed on one crypto unit; units are left as they are and a re-run resumes."""

    def __init__(self, location: str, step: str, cause: Exception) -> None:
        super().__init__(
            f"crypto unit {location}: {step} failed: {cause}. The crypto units are left as "
            "they are; run the command again to continue from their state"
        )
        self.location = location
        self.step = step


@contextlib.contextmanager
def unit_step(session: CryptoUnitSession, step: str) -> Iterator[None]:
    """Name the unit and the step in any failure inside the block."""
    try:
        yield
    except UnitStepFailed:
        raise
    except SignservError as exc:
        raise UnitStepFailed(session.unit.location_text, step, exc) from exc


def generate_importer_key(session: CryptoUnitSession, signer: CommandSigner) -> PublicPoint:
    """A fresh P-521 importer key in the unit; its public point (OA-authenticated answer)."""
    spki = session.run_signed(
        CommandId.GENERATE_IMPORTER_KEY, encode_u32(P521_IMPORTER_KEY_TYPE), [signer]
    )
    return parse_p521_spki(spki)


def export_master_key(
    source: CryptoUnitSession,
    importer: PublicPoint,
    signers: Sequence[CommandSigner],
    *,
    pending: bool,
) -> bytes:
    """The source's current (or pending) key as a RecipientInfo for ``importer`` (§6.5)."""
    parameters = encode_parameter_map(export_request_parameters(build_kph_certificate(importer)))
    command = CommandId.EXPORT_PENDING_WK if pending else CommandId.EXPORT_WK
    output = source.run_signed(command, parameters, signers)
    return find_parameter(decode_parameter_map(output), ParameterTag.ENCRYPTED_KEY_PART, 0)


def wrap_key_parts(importer: PublicPoint, parts: Sequence[Secret[bytes]]) -> list[bytes]:
    """One RecipientInfo per key part, each readable only with the importer's private key."""
    return [wrap_key_for(importer, part.reveal()).encode() for part in parts]


def import_key_parts(
    session: CryptoUnitSession, recipient_infos: Sequence[bytes], signer: CommandSigner
) -> None:
    """Import WK (§4.5): an unsigned outer request carrying one signed inner request per part.

    Every block carries the counter the outer command will carry: the current one plus 1.
    """
    context = session.query(CommandId.QUERY_DOMAIN_ATTRIBUTES)
    counter = increment_counter(context.counter)
    inner_requests = []
    for recipient_info in recipient_infos:
        inner = AdminBlock(
            CommandId.IMPORT_WK, context.domain_id, context.module_id, counter, recipient_info
        ).encode()
        signature = SignerInfo(ski=signer.ski, signature=signer.sign(inner))
        inner_requests.append(
            AdminRequest(
                domain=session.unit.location.domain,
                block=inner,
                signer_infos=encode_signer_infos([signature]),
            ).encode()
        )
    session.run_signed(CommandId.IMPORT_WK, b"".join(inner_requests), [])


def commit_pending_key(session: CryptoUnitSession, signers: Sequence[CommandSigner]) -> None:
    """Full Uncommitted → Full Committed; the input is the pending register's VP."""
    pending_vp = session.domain_info().pending_vp
    session.run_signed(CommandId.COMMIT_WK, pending_vp, signers)


def finalize_pending_key(session: CryptoUnitSession, signer: CommandSigner) -> None:
    """Move the committed pending key into the current register (``cryptounit-mk-setimm``)."""
    pending_vp = session.domain_info().pending_vp
    session.run_signed(CommandId.FINALIZE_WK, pending_vp, [signer])
