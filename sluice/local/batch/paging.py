"""nextToken / maxResults pagination shared by the Describe* and List* operations."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from sluice.local.batch.errors import ClientException

T = TypeVar("T")


def paginate(
    items: Sequence[T], max_results: int | None, next_token: str | None, *, default: int, limit: int
) -> tuple[Sequence[T], str | None]:
    """One page of `items` and the token for the next page (None on the last page).

    Tokens are opaque offsets into the caller's ordering, which is creation order everywhere,
    so pages stay stable while new items are appended.
    """
    if max_results is None:
        max_results = default
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise ClientException(f"maxResults must be between 1 and {limit}")
    start = _decode(next_token) if next_token else 0
    end = start + max_results
    return items[start:end], (_encode(end) if end < len(items) else None)


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sluice:{offset}".encode()).decode()


def _decode(token: str) -> int:
    try:
        prefix, _, offset = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "sluice":
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ClientException("Invalid nextToken") from None
