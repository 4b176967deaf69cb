"""Noise measured with a secondary (a second instance of the production build). Pure.

Raw counts are primary vs candidate; noise counts are primary vs secondary, over the
exchanges that had a secondary reply, keyed by (path, kind): a field that changes on every
production call is noise for `changed`, never for `removed`, `added` or `type_changed`.
Diffy's margins stay as a floor under the statistical test of `verdict.classify`:

    raw_rate > noise_rate * (1 + min_relative)   and   raw_rate - noise_rate > min_absolute"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Item = tuple[str, str]  # (path, kind)


@dataclass(frozen=True, slots=True)
class Margins:
    min_relative: float
    min_absolute: float

    @classmethod
    def from_config(cls, cfg: Any) -> Margins:
        return cls(cfg.noise_min_relative, cfg.noise_min_absolute)


def is_regression(raw_rate: float, noise_rate: float, margins: Margins) -> bool:
    return (raw_rate > noise_rate * (1 + margins.min_relative)
            and raw_rate - noise_rate > margins.min_absolute)


def item_counts(groups: Mapping[str, tuple[Sequence[Item], int]]) -> dict[Item, int]:
    """Pairs differing at each (path, kind), from the signature groups (sig -> items, count)."""
    out: dict[Item, int] = {}
    for items, count in groups.values():
        for item in items:
            out[item] = out.get(item, 0) + count
    return out


def effective_mismatches(groups: Mapping[str, tuple[Sequence[Item], int]],
                         counted: set[Item]) -> int:
    """Pairs whose signature holds at least one (path, kind) that is not noise."""
    return sum(count for items, count in groups.values() if counted.intersection(items))
