"""Reads of diff quality: noise counts (primary vs secondary), signature groups, candidate
errors by kind, and the per-minute counts by signature (written by `store.record_comparisons`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis import Redis

from diffsvc.storage import keys
from diffsvc.storage.store import ints

ERROR_FIELD = "error:"  # counter hashes count candidate errors by kind as error:<kind>
SIG_FIELD = "sig:"      # per-minute hashes count mismatches by signature as sig:<id>


def quality_stats(r: Redis, endpoints: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per endpoint: noise_pairs, noise_mismatches, noise fields {path: n}, noise kinds
    {(path, kind): n}, groups {signature id: (signature JSON, count)}, candidate errors
    (`cand_errors`) and their kinds {kind: n}."""
    with r.pipeline(transaction=False) as pipe:
        for name in endpoints:
            pipe.hgetall(keys.totals(name))
            pipe.hgetall(keys.noise_fields(name))
            pipe.hgetall(keys.noise_kinds(name))
            pipe.hgetall(keys.groups(name))
            pipe.hgetall(keys.group_signatures(name))
        replies = pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(endpoints):
        totals, noise, noise_kinds, counts = (ints(h) for h in replies[5 * i: 5 * i + 4])
        sig_text = {k.decode(): v for k, v in replies[5 * i + 4].items()}
        out[name] = {
            "noise_pairs": totals.get("noise_pairs", 0),
            "noise_mismatches": totals.get("noise_mismatches", 0),
            "noise_fields": noise,
            "noise_kinds": {tuple(reversed(k.split(" ", 1))): n for k, n in noise_kinds.items()},
            "groups": {sig: (sig_text.get(sig, b"[]"), n) for sig, n in counts.items()},
            "cand_errors": totals.get("cand_errors", 0),
            "error_kinds": error_kinds(totals),
        }
    return out


def error_kinds(counts: Mapping[str, int]) -> dict[str, int]:
    """Candidate errors by kind from a counter hash (its fields `error:<kind>`)."""
    return {k[len(ERROR_FIELD):]: n for k, n in counts.items() if k.startswith(ERROR_FIELD)}


def signature_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Mismatches by signature id from a per-minute counter hash (fields `sig:<id>`)."""
    return {k[len(SIG_FIELD):]: n for k, n in counts.items() if k.startswith(SIG_FIELD)}


def error_samples(r: Redis, endpoint: str, n: int = 5) -> list[str]:
    """Ids of the newest exchanges whose candidate call failed where primary answered."""
    return [x.decode() for x in cast("list[bytes]", r.lrange(keys.error_samples(endpoint),
                                                            0, n - 1))]


def group_samples(r: Redis, endpoint: str, sig: str, n: int = 5) -> list[str]:
    return [x.decode() for x in cast("list[bytes]", r.lrange(keys.group_samples(endpoint, sig),
                                                            0, n - 1))]
