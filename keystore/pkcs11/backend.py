"""P-521 keys that never leave an HSM in clear, still gated by each key's token (DESIGN §3).

Each key gets its own AES-256 wrapping key in the token: a persistent object, sensitive and not
extractable, allowed to wrap and unwrap and nothing else, identified by the record id
(``CKA_ID``). The P-521 key is generated in the HSM as a session object, wrapped out under it
with ``CKM_AES_KEY_WRAP_PAD`` and destroyed; the wrapped blob is then sealed in the record by
the token envelope (:mod:`keystore.crypto`). Signing therefore takes the key's token (to open
the seal) AND this HSM (to unwrap): a cold request unwraps the blob into a sensitive,
non-extractable session object that signs with ``CKM_ECDSA`` over the service's SHA-512 digest,
and the unlock cache keeps that object, never a scalar nor the wrapped blob. Deleting a key
destroys its wrapping key, which makes every copy of its record (backups included) useless.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import cast

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from keystore.crypto import P521_SCALAR_BYTES, p521_scalar
from keystore.errors import HsmFull, KeyBackendUnavailable, SigningKeyLost, WrappingKeyMissing
from keystore.pkcs11.token import (
    CONNECTION_LOST,
    MODULE_CALLS,
    HeldSession,
    TokenConnection,
    translate,
)
from keystore.records import PKCS11_KIND
from keystore.signing_key import HeldKey, uncompressed_point

WRAPPING_KEY_LABEL = "signserv wrapping key"
_WRAP = Mechanism.AES_KEY_WRAP_PAD
# What a token answers when it cannot store a new object.
_STORING_FAILED = (p11.DeviceMemory, p11.FunctionFailed, p11.GeneralError)
_P521_PARAMETERS = encode_named_curve_parameters("secp521r1")
_POINT_BYTES = 1 + 2 * P521_SCALAR_BYTES
# CKA_EC_POINT is DER: OCTET STRING (04), long form length 0x85, then the 133-byte point.
_DER_POINT_PREFIX = bytes((0x04, 0x81, _POINT_BYTES))
# python-pkcs11 fills every capability attribute into an unwrap template; a private key has no
# ENCRYPT, WRAP or VERIFY attribute, so those are left out (DEFAULT drops an attribute).
_NOT_PRIVATE_KEY_ATTRIBUTES = {
    Attribute.ENCRYPT: pkcs11.DEFAULT,
    Attribute.WRAP: pkcs11.DEFAULT,
    Attribute.VERIFY: pkcs11.DEFAULT,
}
_SIGNING_ONLY_PRIVATE_KEY = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.PRIVATE: True,
    **_NOT_PRIVATE_KEY_ATTRIBUTES,
}
# Extractable only for the one wrap that follows its creation; destroyed right after.
_TO_BE_WRAPPED_PRIVATE_KEY = {
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: True,
    Attribute.PRIVATE: True,
    Attribute.SIGN: True,
}


def _point_from_attribute(encoded: bytes) -> bytes:
    """The X9.62 point in a ``CKA_EC_POINT`` (DER-wrapped, or raw as some modules return it)."""
    if len(encoded) == _POINT_BYTES and encoded[0] == 0x04:
        return encoded
    if encoded.startswith(_DER_POINT_PREFIX) and len(encoded) == len(_DER_POINT_PREFIX) + 133:
        return encoded[len(_DER_POINT_PREFIX) :]
    raise KeyBackendUnavailable("the HSM returned a public key that is not a P-521 point")


def _der_signature(raw: bytes) -> bytes:
    """``CKM_ECDSA``'s raw ``r || s`` (66 bytes each) as DER ``SEQUENCE{r, s}``, minimal INTEGERs."""
    if len(raw) != 2 * P521_SCALAR_BYTES:
        raise KeyBackendUnavailable(f"the HSM returned a {len(raw)}-byte P-521 signature")
    return encode_dss_signature(
        int.from_bytes(raw[:P521_SCALAR_BYTES], "big"),
        int.from_bytes(raw[P521_SCALAR_BYTES:], "big"),
    )


def _wrapping_key(
    held: HeldSession, connection: TokenConnection, record_id: bytes
) -> pkcs11.UnwrapMixin:
    """The wrapping key of ``record_id``; :class:`WrappingKeyMissing` if the token has none."""
    template = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: record_id}
    found = list(held.session.get_objects(template))
    if len(found) > 1:
        raise KeyBackendUnavailable(
            f"the HSM holds {len(found)} wrapping keys with id {record_id.hex()}"
        )
    if found:
        return cast("pkcs11.UnwrapMixin", found[0])
    # Nothing found: either the login is gone (the module was reset; a search from a session
    # without it sees no private object) or the key really is. Only the first is retried.
    held.close()
    connection.check_login_session()
    raise WrappingKeyMissing(
        f"the {connection.location} holds no wrapping key for this key (label "
        f"{WRAPPING_KEY_LABEL!r}, CKA_ID {record_id.hex()}): it was destroyed, or this is not "
        "the token the key was made in. Retrying will not help: point the 'pkcs11' settings at "
        "the token that holds it (or restore that token), or delete the key and create a new one"
    )


class Pkcs11SigningKey:
    """A :class:`keystore.SigningKey` whose private key is a session object in the HSM.

    It holds the session that holds the unwrapped, sensitive and non-extractable object, and
    nothing else of the key: not the wrapped blob, so nothing in this process can unwrap it
    again without the key's token. When the connection is renewed (session lost, token back
    after removal) the object is gone and :meth:`sign_digest` raises :class:`SigningKeyLost`:
    the caller unlocks the key again, with its token.
    """

    def __init__(
        self, held: HeldSession, private_key: pkcs11.SignMixin, public_point: bytes
    ) -> None:
        self._held = held
        self._private_key = private_key
        self._public_point = public_point
        # Closing the session destroys the session object: when this key is dropped from the
        # cache, the HSM forgets it too.
        self._close_session = weakref.finalize(self, held.close)

    @property
    def public_point(self) -> bytes:
        return self._public_point

    def sign_digest(self, sha512_digest: bytes) -> bytes:
        with MODULE_CALLS:
            if not self._held.current:
                raise SigningKeyLost("the HSM connection was renewed: unlock the key again")
            try:
                raw: bytes = self._private_key.sign(sha512_digest, mechanism=Mechanism.ECDSA)
            except p11.PKCS11Error as exc:
                if not isinstance(exc, CONNECTION_LOST):
                    raise translate(exc, "sign") from exc
                self._close_session()
                raise SigningKeyLost(
                    f"the HSM lost the unlocked key ({type(exc).__name__}): unlock it again"
                ) from exc
        return _der_signature(raw)

    def __repr__(self) -> str:
        return f"Pkcs11SigningKey(public_point={self._public_point[:9].hex()}…)"


class Pkcs11KeyBackend:
    """:class:`keystore.signing_key.KeyBackend` for one PKCS#11 token."""

    kind = PKCS11_KIND

    def __init__(self, connection: TokenConnection) -> None:
        self._connection = connection

    @property
    def location(self) -> str:
        return self._connection.location

    def check_ready(self) -> None:
        self._connection.check()

    def generate(self, record_id: bytes) -> HeldKey:
        return self._connection.run(
            "generate a key in the HSM",
            lambda session: self._wrap_out(session, self.location, record_id, self._generated_pair),
        )

    def take(self, record_id: bytes, private_key: ec.EllipticCurvePrivateKey) -> HeldKey:
        def imported(session: pkcs11.Session) -> tuple[bytes, pkcs11.Key]:
            private_object = session.create_object(  # a private key by its CLASS
                {
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.KEY_TYPE: KeyType.EC,
                    Attribute.EC_PARAMS: _P521_PARAMETERS,
                    Attribute.VALUE: p521_scalar(private_key),
                    Attribute.TOKEN: False,
                    **_TO_BE_WRAPPED_PRIVATE_KEY,
                }
            )
            return uncompressed_point(private_key.public_key()), cast("pkcs11.Key", private_object)

        return self._connection.run(
            "import a key into the HSM",
            lambda session: self._wrap_out(session, self.location, record_id, imported),
        )

    @staticmethod
    def _generated_pair(session: pkcs11.Session) -> tuple[bytes, pkcs11.Key]:
        public_object, private_object = session.generate_keypair(
            KeyType.EC,
            store=False,
            public_template={Attribute.EC_PARAMS: _P521_PARAMETERS, Attribute.VERIFY: True},
            private_template=_TO_BE_WRAPPED_PRIVATE_KEY,
        )
        try:
            return _point_from_attribute(public_object[Attribute.EC_POINT]), private_object
        finally:
            public_object.destroy()

    @staticmethod
    def _wrap_out(
        session: pkcs11.Session,
        location: str,
        record_id: bytes,
        make_private_key: Callable[[pkcs11.Session], tuple[bytes, pkcs11.Key]],
    ) -> HeldKey:
        """A new wrapping key for ``record_id``, and the new private key wrapped under it."""
        try:
            wrapping_key = cast(
                "pkcs11.WrapMixin",
                session.generate_key(
                    KeyType.AES,
                    256,
                    id=record_id,
                    label=WRAPPING_KEY_LABEL,
                    store=True,
                    capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                    template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.PRIVATE: True,
                    },
                ),
            )
        except _STORING_FAILED as exc:
            # CKR_DEVICE_MEMORY is "full"; SoftHSM2 answers a full disk with CKR_FUNCTION_FAILED.
            raise HsmFull(
                f"the {location} cannot store another object ({type(exc).__name__}): the token "
                "is full or its storage cannot be written; make room in it (delete keys no "
                "longer used) and try again"
            ) from exc
        try:
            public_point, private_object = make_private_key(session)
            try:
                wrapped = wrapping_key.wrap_key(private_object, mechanism=_WRAP)
            finally:
                private_object.destroy()
        except BaseException:
            wrapping_key.destroy()
            raise
        return HeldKey(public_point=public_point, wrapped_key=wrapped)

    def signing_key(
        self, record_id: bytes, wrapped_key: bytes, public_point: bytes
    ) -> Pkcs11SigningKey:
        """Unwrap ``wrapped_key`` now into a session object; the blob is not kept."""

        def unwrap(held: HeldSession) -> pkcs11.SignMixin:
            return cast(
                "pkcs11.SignMixin",
                _wrapping_key(held, self._connection, record_id).unwrap_key(
                    ObjectClass.PRIVATE_KEY,
                    KeyType.EC,
                    wrapped_key,
                    mechanism=_WRAP,
                    store=False,
                    capabilities=MechanismFlag.SIGN,
                    template=_SIGNING_ONLY_PRIVATE_KEY,
                ),
            )

        held, private_key = self._connection.run_held("unwrap a key in the HSM", unwrap)
        return Pkcs11SigningKey(held, private_key, public_point)

    def destroy(self, record_id: bytes) -> None:
        def destroy_wrapping_keys(session: pkcs11.Session) -> None:
            for found in list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: record_id}
                )
            ):
                found.destroy()

        self._connection.run("destroy a wrapping key in the HSM", destroy_wrapping_keys)
