"""The errors a caller can act on, each carrying its contract code.

    DomainError                      (code)
    ├── Unauthenticated              UNAUTHENTICATED
    ├── Forbidden                    FORBIDDEN
    ├── NotFound                     NOT_FOUND
    ├── BadUserInput                 BAD_USER_INPUT
    ├── Conflict                     CONFLICT
    ├── RateLimited                  RATE_LIMITED
    ├── QueryTooComplex              QUERY_TOO_COMPLEX
    └── Unavailable                  UNAVAILABLE

Transports (GraphQL, OAuth, workers) map these to their own shape in one place;
anything else is an internal error whose details are logged, never shown.
"""

from __future__ import annotations


class DomainError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class NotFound(DomainError):
    code = "NOT_FOUND"


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class Conflict(DomainError):
    code = "CONFLICT"


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class QueryTooComplex(DomainError):
    code = "QUERY_TOO_COMPLEX"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
