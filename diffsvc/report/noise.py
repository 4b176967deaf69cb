"""Noise measured with a secondary (a second instance of the production build). Pure.

Raw counts are primary vs candidate; noise counts are primary vs secondary, over the
exchanges that had a secondary reply. A field is a regression only when its raw rate
exceeds its noise rate by both margins:

    raw_rate > noise_rate * (1 + min_relative)   and   raw_rate - noise_rate > min_absolute

Without noise data (no secondary), every raw difference counts: effective == raw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Margins:
    min_relative: float = 0.25
    min_absolute: float = 0.01

    @classmethod
    def from_config(cls, cfg: Any) -> Margins:
        return cls(cfg.noise_min_relative, cfg.noise_min_absolute)


def _rate(n: int, of: int) -> float:
    return round(n / of, 6) if of else 0.0


def is_regression(raw_rate: float, noise_rate: float, margins: Margins) -> bool:
    return (raw_rate > noise_rate * (1 + margins.min_relative)
            and raw_rate - noise_rate > margins.min_absolute)


def field_table(raw: dict[str, int], compared: int, noise: dict[str, int], noise_pairs: int,
                margins: Margins) -> dict[str, dict[str, Any]]:
    """Per field path: raw and noise counts and rates, and whether it is a regression."""
    out = {}
    for path, n in raw.items():
        raw_rate = _rate(n, compared)
        noise_n = noise.get(path, 0)
        noise_rate = _rate(noise_n, noise_pairs)
        regression = is_regression(raw_rate, noise_rate, margins) if noise_pairs else n > 0
        out[path] = {"raw": n, "raw_rate": raw_rate, "noise": noise_n, "noise_rate": noise_rate,
                     "regression": regression}
    return out


def effective_mismatches(groups: dict[str, tuple[list[str], int]],
                         regressions: set[str]) -> int:
    """Exchanges whose signature holds at least one regression field.

    `groups` maps a signature id to (its paths, its count)."""
    return sum(count for paths, count in groups.values() if regressions.intersection(paths))
