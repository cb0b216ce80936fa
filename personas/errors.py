"""Errors a human can act on: each names the file, row or field at fault and the fix.

They subclass builtins (as skrub's ``RejectColumn(ValueError)`` does) so callers may catch either
the specific class or the builtin.
"""

from __future__ import annotations


class PersonasError(Exception):
    """Base class of every error this package raises on purpose."""


class MappingError(PersonasError, ValueError):
    """A source-mapping YAML file is invalid."""


class ConfigError(PersonasError, ValueError):
    """A project configuration file is invalid."""


class SourceError(PersonasError, ValueError):
    """A source file cannot be read as declared (encoding, delimiter, truncation, ...)."""


class SchemaError(PersonasError, ValueError):
    """Source data does not fit the canonical schema (missing column, unparsable values)."""


class LakeError(PersonasError, RuntimeError):
    """The lake is missing, locked by another process, or inconsistent."""


class LockError(PersonasError, RuntimeError):
    """The workspace is held by another run for longer than the lock timeout."""


class NotEnoughDataError(PersonasError, ValueError):
    """There is too little data to do what was asked (e.g. fewer customers than personas)."""


class RunError(PersonasError, ValueError):
    """A run folder or model file is missing, incomplete or from an incompatible version."""


class ProfilesError(PersonasError, ValueError):
    """profiles.json does not satisfy its schema or the cross-field rules."""


class PublishError(PersonasError, RuntimeError):
    """The run cannot be published (incomplete run, broken history, unsafe output)."""


class SafetyError(PublishError):
    """A file about to be published contains personal data or describes too few customers."""


class DiskFullError(PersonasError, OSError):
    """The device holding the workspace filled up; nothing was left half-written."""
