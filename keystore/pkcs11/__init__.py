"""Keys in a PKCS#11 HSM (python-pkcs11): generated and used inside it, gated by each key's token.

Importing this package needs the optional dependency python-pkcs11 (``pip install
'signserv[pkcs11]'``); nothing else in the keystore imports it.
"""

from keystore.pkcs11.backend import Pkcs11KeyBackend, Pkcs11SigningKey
from keystore.pkcs11.token import TokenConnection, TokenSelector, UserPinSource

__all__ = [
    "Pkcs11KeyBackend",
    "Pkcs11SigningKey",
    "TokenConnection",
    "TokenSelector",
    "UserPinSource",
]
