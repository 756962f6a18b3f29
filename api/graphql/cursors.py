"""Opaque cursors for every connection: base64url of "<kind>:<position>".

One implementation, so every list refuses a foreign or malformed cursor the same
way (BAD_USER_INPUT naming the list), and no position can overflow into a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from ..domain.errors import BadUserInput

T = TypeVar("T")
INT64_MAX = 2**63 - 1


def encode(kind: str, position: object) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode()


def decode(cursor: str | None, kind: str, parse: Callable[[str], T], what: str) -> T | None:
    """The position in a cursor of `kind`, None for no cursor; BAD_USER_INPUT otherwise."""
    if cursor is None:
        return None
    try:
        found, _, position = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if found != kind:
            raise ValueError(found)
        return parse(position)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput(f"after is not a cursor of {what}") from None


def sequence(position: str) -> int:
    """A bigint position: digits only, within PostgreSQL's int8."""
    if not position.isdigit() or int(position) > INT64_MAX:
        raise ValueError(position)
    return int(position)


def uuid(position: str) -> UUID:
    return UUID(position)
