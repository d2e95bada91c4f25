"""One exception per kind of failure, each carrying the service's `code`, `message`, `details` and `request_id`."""

from __future__ import annotations

from typing import Any

import httpx


class MemCubeError(Exception):
    """Any failure of a MemCube call."""

    status: int | None = None

    def __init__(self, message: str, *, code: str = "error", details: Any = None, status: int | None = None,
                 response: httpx.Response | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
        self.status = status if status is not None else self.status
        self.response = response
        # The service's id of the request (its X-Request-ID): quote it when reporting a problem.
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" if self.status else self.message


class APIConnectionError(MemCubeError):
    """The service could not be reached, or the connection broke (after the retries)."""


class APITimeoutError(APIConnectionError):
    """The service did not answer within the timeout (after the retries)."""


class APIStatusError(MemCubeError):
    """The service answered with an error status."""


class BadRequest(APIStatusError):
    status = 400


class AuthenticationError(APIStatusError):
    status = 401


class PermissionDenied(APIStatusError):
    status = 403


class NotFound(APIStatusError):
    status = 404


class Conflict(APIStatusError):
    status = 409


class StaleVersion(APIStatusError):
    """`If-Match` named a version that is no longer current; `details["current_version"]` is."""

    status = 412


class TooLarge(APIStatusError):
    status = 413


class UnsupportedMediaType(APIStatusError):
    status = 415


class InvalidInput(APIStatusError):
    status = 422


class RateLimited(APIStatusError):
    status = 429


class ServerError(APIStatusError):
    status = 500


class Unavailable(ServerError):
    status = 503


BY_STATUS: dict[int, type[APIStatusError]] = {
    cls.status: cls for cls in (BadRequest, AuthenticationError, PermissionDenied, NotFound, Conflict, StaleVersion,
                                TooLarge, UnsupportedMediaType, InvalidInput, RateLimited, Unavailable)
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """Return the exception for an error answer, from its `{"error": {"code", "message", "details", "request_id"}}`
    body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message, details = str(error.get("code", "error")), str(error.get("message", "")), error.get("details")
    else:
        code, message, details = "error", response.text[:500] or response.reason_phrase, None
    cls = BY_STATUS.get(response.status_code) or (ServerError if response.status_code >= 500 else APIStatusError)
    request_id = (error.get("request_id") if isinstance(error, dict) else None) or response.headers.get("x-request-id")
    return cls(message, code=code, details=details, status=response.status_code, response=response,
               request_id=request_id)
