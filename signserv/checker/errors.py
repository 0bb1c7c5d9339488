"""Errors the conformance checker raises; one subclass per condition the runner acts on."""

from __future__ import annotations

from signserv.errors import SignservError


class CheckerError(SignservError):
    """Base of the checker's errors; the message is evidence a reviewer can read."""


class ServiceUnreachable(CheckerError):
    """The service did not answer (connection, DNS, TLS or timeout); the run stops."""


class RunLimitReached(CheckerError):
    """The run used up its request count or time budget; the run stops."""


class ContractViolation(CheckerError):
    """A response that breaks the signing-service contract; the check fails with it."""


class PrerequisiteMissing(CheckerError):
    """A check needs something an earlier check could not establish; it is skipped."""
