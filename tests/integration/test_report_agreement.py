"""The web API and `diffsvc report --format json` read the same typed report: with
non-default margins and verdict settings they agree on every effective figure."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from redis import Redis

from diffsvc.report import server
from tests.integration.test_report_server import call, ep
from tests.integration.test_secondary import N, run

ITEMS = "GET /items/{id}"
# with min_absolute 0.5 the price (10 of 40 vs 0 of 40 on the secondary) is no regression
STRICT = {"noise_min_relative": 0.1, "noise_min_absolute": 0.5, "verdict_min_evidence": 2}


def test_web_api_and_cli_agree_with_non_default_margins(serve, redis_url: str, r: Redis) -> None:
    cfg = dataclasses.replace(run(serve, redis_url), **STRICT)
    status, api = call(serve(server.build_app(cfg)).url, ep(ITEMS))
    assert status == 200, api
    done = subprocess.run([sys.executable, "-m", "diffsvc", "report", "--format", "json",
                           "--redis-url", redis_url, "--noise-min-relative", "0.1",
                           "--noise-min-absolute", "0.5", "--verdict-min-evidence", "2"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [cli] = json.loads(done.stdout)["endpoints"]
    assert cli["raw"]["mismatches"] == N and cli["mismatches"] == 0  # the margins decided
    for key in ("pairs", "matches", "mismatches", "errors", "mismatch_rate",
                "suppressed_as_noise"):
        assert api["totals"][key] == cli[key], key
    assert api["classification"] == cli["classification"]
    assert api["noise"] == cli["noise"]
    assert api["noise"]["margins"] == {"min_relative": 0.1, "min_absolute": 0.5}
    assert api["criteria"] == json.loads(done.stdout)["criteria"]
    shown = {(f["path"], f["kind"]): (f["classification"], f["regression"], f["effective"])
             for f in api["fields"]}
    assert shown == {(f["path"], f["kind"]): (f["classification"], f["regression"], 0)
                     for f in cli["fields"]}
    assert shown[("$.price", "changed")][1] is False  # default margins would call it one
