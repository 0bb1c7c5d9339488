"""OA trust anchors: the IBM roots by default, and roots a user explicitly chose to trust (§3.9).

A crypto unit's OA certificate chain must end at one of these keys. The IBM roots are the
values the SDK hard-codes; an emulator's root is trusted only when its file is named.
"""

from __future__ import annotations

import json
from pathlib import Path

from foundation import write_private_file
from signserv.contract import PointNotOnCurve, PublicPoint
from signserv.tke.errors import TKEError

# TKE-REFERENCE §3.9, as hard-coded in the SDK: signer SKI -> (X, Y) of the root key.
_IBM_ROOTS = {
    "5f4717480b75b8bcbc224c62dfbd7a3b8987e54193d40a1a664fa221e5387123": (  # CEX6 (4768)
        "018bd55521ae1d52a07630d04cd1adeb82f22fea54da7ccf5d4e33e0c5ff075519f4d9d902a6800d47dc2c0e5fd4f6ebe63096f37fadf9717b8a679d0fb1d5957cdc",
        "0116f34a637240bf0abcef0528cb8eb4cdde17154010d10692c753fdadebcfb452130fa664bc8546c1bd72211297ad0038836a4e55182530d6ccb10ffa2004f7f9cd",
    ),
    "b23884d4dea35eaabab109e0a6c400b2f5bea652f14ab23d2a47220696eb0e6b": (  # CEX7 (4769)
        "0112ec7b6c304f2ded0dcbc0d8ec3c43ee2fb377052a46517747bfe5ad35e68f50016644a438cc6c20c4d1b25085eea9c83a99514d9b39b6e3d60f472237ac894d81",
        "002b53cdf6a39ca67e258a0e714d6609d7ea3f687aa0b3bf8b69f92e7dcf539792abb8b063be8f9393124c10271d4c569626cb6e8ea79f502670c201848e328041a7",
    ),
    "96c87ef655f67918b4f38c612ed9e492fe152555a63cd5fe2b719ee77b3277f6": (  # CEX8 (4770) ECC
        "01b6de79e40847a31b10ed5e2458d70b5acb8f2e3c1a78875a99cdee110cdd27020174485b0e71deb3668e574181443eb3801d0d2060b90ce8f2c09bf0fb346c3657",
        "018f9caef6a395b32b03f3327993f55b96e0a3c5fab1dc640e033ceaede78b41d27400f611494f227c5695abd40d8facdbb30a0a4a63e62bb2867805e85768cbcd33",
    ),
}
IBM_ROOTS: dict[bytes, PublicPoint] = {
    bytes.fromhex(ski): PublicPoint(x=int(x, 16), y=int(y, 16))
    for ski, (x, y) in _IBM_ROOTS.items()
}

# The CEX5 root has no SKI: the SDK uses it for a CEX5 chain whose last certificate's name
# marks it as root-signed (§3.9).
CEX5_ROOT = PublicPoint(
    x=int(
        "01CF9238348503B59D5FE207467DDA6ED13E6593BE42376523BF2CD65FC3772966FD90F210D4B96046927418037C85340D6E98D97551656E89F8650F9DEC54D57C2D",
        16,
    ),
    y=int(
        "00DDFC3D77761BD913C9165534534904C36835DCDADA6DD8C8FD6A226E7EE36398DF81EC4C534996993EBD6EF421410EFABB09286BB2212CEAD62CFA1D0E5D6F26E7",
        16,
    ),
)


class TrustAnchorFileError(TKEError, ValueError):
    """A trust-anchor file that cannot be read or does not hold an SKI and a P-521 point."""


def write_trust_anchor(path: Path, ski: bytes, point: PublicPoint) -> None:
    """Export an OA root as JSON ``{"signer_ski", "public_point"}`` (hex), e.g. the emulator's."""
    document = {"signer_ski": ski.hex(), "public_point": point.uncompressed().hex()}
    write_private_file(path, (json.dumps(document, indent=2) + "\n").encode(), replace=True)


def read_trust_anchor(path: Path) -> tuple[bytes, PublicPoint]:
    """An OA root exported by :func:`write_trust_anchor`; its point is checked to be on P-521."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrustAnchorFileError(f"cannot read trust anchor {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TrustAnchorFileError(f"trust anchor {path} is not JSON") from None
    try:
        ski = bytes.fromhex(document["signer_ski"])
        point_bytes = bytes.fromhex(document["public_point"])
    except (TypeError, KeyError, ValueError):
        raise TrustAnchorFileError(
            f"trust anchor {path} must hold hex members signer_ski and public_point"
        ) from None
    try:
        if len(ski) != 32:
            raise ValueError(ski)
        point = PublicPoint.from_uncompressed(point_bytes)
    except ValueError:
        raise TrustAnchorFileError(
            f"trust anchor {path}: signer_ski must be 32 bytes and public_point an "
            "uncompressed 133-byte P-521 point"
        ) from None
    try:
        point.verifying_key()
    except PointNotOnCurve:
        raise TrustAnchorFileError(f"trust anchor {path}: the point is not on P-521") from None
    return ski, point


def trust_anchors(extra_files: tuple[Path, ...]) -> dict[bytes, PublicPoint]:
    """The IBM roots, plus the roots in ``extra_files`` the user chose to trust."""
    anchors = dict(IBM_ROOTS)
    anchors.update(read_trust_anchor(path) for path in extra_files)
    return anchors
