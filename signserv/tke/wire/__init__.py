"""The TKE wire formats both sides share: HTP, CPRB, admin blocks, certificates, SignerInfo."""

from __future__ import annotations

from signserv.tke.errors import (
    AdministratorNameTooLong,
    CryptoUnitRefused,
    EmulatorStateError,
    HTPResponseError,
    InvalidLocation,
    MalformedAdminCertificate,
    MalformedHTPMessage,
    MalformedSignerInfo,
    MalformedTKEMessage,
    TKEError,
    UnknownCryptoUnit,
)
from signserv.tke.wire.admin_cert import (
    AdminCertificate,
    assemble_admin_certificate,
    build_admin_tbs,
    encode_admin_name,
    parse_admin_certificate,
)
from signserv.tke.wire.admin_messages import (
    AdminBlock,
    AdminRequest,
    AdminResponse,
    AdminResponseBlock,
    decode_admin_block,
    decode_admin_request,
    decode_admin_response,
    decode_admin_response_block,
    domain_id,
)
from signserv.tke.wire.attributes import decode_attribute_pairs, encode_attribute_pairs
from signserv.tke.wire.commands import (
    DEFAULT_PERMISSIONS,
    AttributeId,
    CommandId,
    Permission,
    XcpInfoSubtype,
)
from signserv.tke.wire.counter import increment_counter
from signserv.tke.wire.cprb import Cprb, decode_cprb
from signserv.tke.wire.htp import (
    HTPError,
    HTPRequest,
    decode_htp_request,
    decode_htp_response,
    encode_htp_response,
)
from signserv.tke.wire.kph import build_kph_certificate, parse_kph_certificate
from signserv.tke.wire.location import Location, parse_location
from signserv.tke.wire.oa_certificate import (
    OACertificate,
    build_oa2_certificate,
    parse_oa2_certificate,
)
from signserv.tke.wire.parameter_map import (
    ParameterEntry,
    ParameterTag,
    decode_parameter_map,
    encode_parameter_map,
    export_request_parameters,
    find_parameter,
)
from signserv.tke.wire.recipient_info import RecipientInfo, parse_recipient_info
from signserv.tke.wire.return_codes import Reason, ReturnCode, describe_refusal, refusal
from signserv.tke.wire.signer_info import SignerInfo, encode_signer_infos, parse_signer_infos
from signserv.tke.wire.spki import encode_p521_spki, parse_p521_spki
from signserv.tke.wire.verification_pattern import calc_vp, same_master_key
from signserv.tke.wire.xcp_info import (
    DomainFlag,
    DomainInfo,
    XcpInfoRequest,
    XcpInfoResponse,
    decode_domain_info,
    decode_xcp_info_request,
    decode_xcp_info_response,
)

__all__ = [
    "DEFAULT_PERMISSIONS",
    "AdminBlock",
    "AdminCertificate",
    "AdminRequest",
    "AdminResponse",
    "AdminResponseBlock",
    "AdministratorNameTooLong",
    "AttributeId",
    "CommandId",
    "Cprb",
    "CryptoUnitRefused",
    "DomainFlag",
    "DomainInfo",
    "EmulatorStateError",
    "HTPError",
    "HTPRequest",
    "HTPResponseError",
    "InvalidLocation",
    "Location",
    "MalformedAdminCertificate",
    "MalformedHTPMessage",
    "MalformedSignerInfo",
    "MalformedTKEMessage",
    "OACertificate",
    "ParameterEntry",
    "ParameterTag",
    "Permission",
    "Reason",
    "RecipientInfo",
    "ReturnCode",
    "SignerInfo",
    "TKEError",
    "UnknownCryptoUnit",
    "XcpInfoRequest",
    "XcpInfoResponse",
    "XcpInfoSubtype",
    "assemble_admin_certificate",
    "build_admin_tbs",
    "build_kph_certificate",
    "build_oa2_certificate",
    "calc_vp",
    "decode_admin_block",
    "decode_admin_request",
    "decode_admin_response",
    "decode_admin_response_block",
    "decode_attribute_pairs",
    "decode_cprb",
    "decode_domain_info",
    "decode_htp_request",
    "decode_htp_response",
    "decode_parameter_map",
    "decode_xcp_info_request",
    "decode_xcp_info_response",
    "describe_refusal",
    "domain_id",
    "encode_admin_name",
    "encode_attribute_pairs",
    "encode_htp_response",
    "encode_p521_spki",
    "encode_parameter_map",
    "encode_signer_infos",
    "export_request_parameters",
    "find_parameter",
    "increment_counter",
    "parse_admin_certificate",
    "parse_kph_certificate",
    "parse_location",
    "parse_oa2_certificate",
    "parse_p521_spki",
    "parse_recipient_info",
    "parse_signer_infos",
    "refusal",
    "same_master_key",
]
