"""EP11 function, command, attribute and permission numbers (TKE-REFERENCE §3.7, §5, §6.3)."""

from __future__ import annotations

from enum import IntEnum, IntFlag

ADMIN_FUNCTION_ID = 0x00010029
XCP_INFO_FUNCTION_ID = 0x00010026
QUERY_BIT = 0x00010000


class CommandId(IntEnum):
    """The ``cmdId`` of an xcpAdminBlk; queries carry bit ``0x00010000`` (§5)."""

    QUERY_DOMAIN_ADMINS = 0x00010002
    QUERY_DEVICE_CERT = 0x00010003
    QUERY_CONTROL_POINTS = 0x00010006
    QUERY_DOMAIN_ATTRIBUTES = 0x0001000A
    ADD_ADMIN = 0x00000002
    REMOVE_ADMIN = 0x00000004
    SET_ATTRIBUTES = 0x00000008
    GENERATE_IMPORTER_KEY = 0x00000009
    GENERATE_RANDOM_WK = 0x0000000A
    EXPORT_WK = 0x0000000B
    IMPORT_WK = 0x0000000C
    COMMIT_WK = 0x0000000D
    FINALIZE_WK = 0x0000000E
    ZEROIZE_DOMAIN = 0x00000010
    ADD_CONTROL_POINTS = 0x00000012
    CLEAR_CURRENT_WK = 0x0000001B
    CLEAR_PENDING_WK = 0x0000001C
    EXPORT_PENDING_WK = 0x00000026

    @property
    def is_query(self) -> bool:
        """True for the unsigned queries, which carry no module id or counter."""
        return bool(self.value & QUERY_BIT)


class XcpInfoSubtype(IntEnum):
    """What a get_xcp_info request asks for (§3.7)."""

    MODULE = 1
    DOMAIN = 3


class AttributeId(IntEnum):
    """Domain attribute ids of Query/Set Domain Attributes (§5)."""

    SIGNATURE_THRESHOLD = 1
    REVOCATION_THRESHOLD = 2
    PERMISSIONS = 3
    MODE = 4
    STANDARDS = 5


class Permission(IntFlag):
    """Domain permission bits and their change-control (CHG) bits (§6.3)."""

    WK_IMPORT = 0x01
    WK_EXPORT = 0x02
    WK_ONE_PART = 0x04
    RANDOM_WK = 0x08
    THRESHOLD_ONE = 0x10
    CONTROL_POINTS_ONE_SIGN = 0x20
    ZEROIZE_ONE_SIGN = 0x40
    NO_IMPRINT = 0x80
    STATE_IMPORT = 0x0100
    STATE_EXPORT = 0x0200
    STATE_ONE_PART = 0x0400
    NO_EPX = 0x0800
    EPX_VM = 0x1000
    DO_NOT_DISTURB = 0x2000
    CHANGE_WK_IMPORT = 0x00010000
    CHANGE_WK_EXPORT = 0x00020000
    CHANGE_WK_ONE_PART = 0x00040000
    CHANGE_RANDOM_WK = 0x00080000
    CHANGE_SIGNATURE_THRESHOLD = 0x00100000
    CHANGE_REVOCATION_THRESHOLD = 0x00200000
    CHANGE_ONE_SIGN = 0x00400000
    CHANGE_CONTROL_POINTS_ONE_SIGN = 0x00800000
    CHANGE_ZEROIZE_ONE_SIGN = 0x01000000
    CHANGE_STATE_IMPORT = 0x02000000
    CHANGE_STATE_EXPORT = 0x04000000
    CHANGE_STATE_ONE_PART = 0x08000000
    CHANGE_DO_NOT_DISTURB = 0x80000000


# §6.1 [EMULATOR POLICY]: the EP11 domain default (WK import, threshold 1, all domain CHG bits).
DEFAULT_PERMISSIONS = 0x81FF0011

# §6.3: which permission bit each change-control bit guards.
GUARDED_BY_CHANGE_BIT: dict[Permission, Permission] = {
    Permission.CHANGE_WK_IMPORT: Permission.WK_IMPORT,
    Permission.CHANGE_WK_EXPORT: Permission.WK_EXPORT,
    Permission.CHANGE_WK_ONE_PART: Permission.WK_ONE_PART,
    Permission.CHANGE_RANDOM_WK: Permission.RANDOM_WK,
    Permission.CHANGE_ONE_SIGN: Permission.THRESHOLD_ONE,
    Permission.CHANGE_CONTROL_POINTS_ONE_SIGN: Permission.CONTROL_POINTS_ONE_SIGN,
    Permission.CHANGE_ZEROIZE_ONE_SIGN: Permission.ZEROIZE_ONE_SIGN,
    Permission.CHANGE_STATE_IMPORT: Permission.STATE_IMPORT,
    Permission.CHANGE_STATE_EXPORT: Permission.STATE_EXPORT,
    Permission.CHANGE_STATE_ONE_PART: Permission.STATE_ONE_PART,
    Permission.CHANGE_DO_NOT_DISTURB: Permission.DO_NOT_DISTURB,
}
