"""Candidate builds as a dimension of the data: every exchange is stamped with the build that
answered (`Exchange.build`: the candidate's `version_header`, else `candidate_version`), and
each build's comparisons count under their own per-endpoint keys, "<endpoint> @<build>"
(an endpoint name holds no " @": a method, a space and a path). Data without a build keeps
the plain endpoint name, so records written before builds were known read as before.
`keys.BUILDS` orders the builds by when they were first compared: the newest is the default
of the report, the UI, the metrics and the gate; a new build never mixes with the last."""

from __future__ import annotations

from typing import cast

from redis import Redis

from diffsvc.storage import keys

SEP = " @"


def scoped(endpoint: str, build: str) -> str:
    """The name `endpoint`'s counters of `build` are kept under."""
    return f"{endpoint}{SEP}{build}" if build else endpoint


def split(name: str) -> tuple[str, str]:
    """(endpoint, build) of a stored endpoint name ("" when no build was known)."""
    endpoint, _, build = name.partition(SEP)
    return endpoint, build


def known(r: Redis) -> list[str]:
    """The builds compared, newest (first compared last) first."""
    return [b.decode() for b in cast("list[bytes]", r.zrevrange(keys.BUILDS, 0, -1))]


def select(r: Redis, build: str | None) -> str:
    """The build to show: the one asked for, else the newest ("" when none was stamped)."""
    if build is not None:
        return build
    newest = cast("list[bytes]", r.zrevrange(keys.BUILDS, 0, 0))
    return newest[0].decode() if newest else ""


def of_build(names: list[str], build: str) -> dict[str, str]:
    """{endpoint: stored name} of the stored endpoint names that belong to `build`."""
    out = {}
    for name in names:
        endpoint, b = split(name)
        if b == build:
            out[endpoint] = name
    return out
