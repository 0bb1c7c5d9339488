"""DER encodings of the object identifiers the TKE formats use (TKE-REFERENCE §2.2a)."""

from __future__ import annotations

ECDSA_WITH_SHA512 = bytes.fromhex("06082a8648ce3d040304")
SHA512 = bytes.fromhex("0609608648016503040203")
SHA256 = bytes.fromhex("0609608648016503040201")
RSA_ENCRYPTION = bytes.fromhex("06092a864886f70d010101")
EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")
SECP521R1 = bytes.fromhex("06052b81040023")
ORGANIZATIONAL_UNIT_NAME = bytes.fromhex("060355040b")
COMMON_NAME = bytes.fromhex("0603550403")
SUBJECT_KEY_IDENTIFIER = bytes.fromhex("0603551d0e")
DH_SINGLE_PASS_STD_DH_SHA256_KDF = bytes.fromhex("06062b8104010b01")
AES256_WRAP = bytes.fromhex("060960864801650304012d")
