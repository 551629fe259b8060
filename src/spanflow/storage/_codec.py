"""The text form of snapshots in the SQL stores: compact, ASCII-only JSON.

ASCII-only (non-ASCII characters escaped as ``\\uXXXX``) so a snapshot round-trips exactly
whatever the database encoding, lone surrogates included; ``NaN`` and infinities are refused
because they are not JSON and other readers of the database could not parse them.
"""

from __future__ import annotations

import json
from typing import Any

from spanflow.errors import StorageError

__all__ = ["decode_snapshot", "encode_snapshot"]

_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def encode_snapshot(run_id: str, snapshot: dict[str, Any]) -> str:
    """Encode a snapshot, or raise `StorageError` naming the run if it is not plain JSON data."""
    try:
        return _ENCODER.encode(snapshot)
    except (TypeError, ValueError, RecursionError) as err:
        raise StorageError(
            f"cannot store run {run_id!r}: its snapshot is not JSON data ({err}); a snapshot "
            "may hold only dicts with str keys, lists, str, int, finite float, bool and None"
        ) from err


def decode_snapshot(run_id: str, text: str, *, where: str) -> dict[str, Any]:
    """Decode a stored snapshot, or raise `StorageError` naming the run and the store."""
    try:
        value = _DECODER.decode(text)
    except (TypeError, ValueError) as err:
        raise StorageError(
            f"the snapshot of run {run_id!r} in {where} is not valid JSON ({err}); "
            "the database is damaged: restore it from a backup or delete the run"
        ) from err
    if not isinstance(value, dict):
        raise StorageError(
            f"the snapshot of run {run_id!r} in {where} is a JSON {type(value).__name__}, "
            "not an object; the database is damaged: restore it from a backup or delete the run"
        )
    return value
