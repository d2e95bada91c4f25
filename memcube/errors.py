"""The one error family. No HTTP here: the API maps each class to a status in one place."""

from __future__ import annotations

from typing import Any


class MemCubeError(Exception):
    """Base of every error MemCube raises on purpose."""

    code = "error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(MemCubeError):
    """The request is well-formed but its values are not acceptable."""

    code = "invalid_input"


class Malformed(MemCubeError):
    """The request body could not be parsed at all."""

    code = "malformed"


class TooLarge(MemCubeError):
    """A documented size limit was exceeded; the message names it."""

    code = "too_large"


class NotFound(MemCubeError):
    """The thing does not exist in the caller's tenant."""

    code = "not_found"


class Conflict(MemCubeError):
    """The change contradicts the current state (for example fusing a superseded cube)."""

    code = "conflict"


class StaleVersion(MemCubeError):
    """`If-Match` named a version that is no longer current."""

    code = "stale_version"


class Unauthorized(MemCubeError):
    """No valid credentials."""

    code = "unauthorized"


class Forbidden(MemCubeError):
    """Valid credentials without the needed scope."""

    code = "forbidden"


class Unavailable(MemCubeError):
    """A dependency (database, Redis, embedder, LLM) cannot be reached right now."""

    code = "unavailable"


class ConfigError(MemCubeError):
    """The configuration or the database state does not allow start-up."""

    code = "config_error"


class MigrationError(ConfigError):
    """A migration file or the migration history is inconsistent."""

    code = "migration_error"
