"""Mismatch signatures: the set of (path, kind) an exchange differs in. A thousand
mismatches with one cause share one signature, so they read as one line. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson

from diffsvc.core.models import FieldDiff

SAMPLES_PER_GROUP = 5


def signature(diffs: Iterable[FieldDiff]) -> list[tuple[str, str]]:
    """Sorted, de-duplicated (folded path, kind) pairs."""
    return sorted({(d.path, d.kind) for d in diffs})


def signature_id(sig: list[tuple[str, str]]) -> str:
    return hashlib.sha1(signature_json(sig)).hexdigest()[:12]


def signature_json(sig: list[tuple[str, str]]) -> bytes:
    return orjson.dumps([list(item) for item in sig])


def from_json(raw: bytes | str) -> list[dict[str, str]]:
    return [{"path": path, "kind": kind} for path, kind in orjson.loads(raw)]
