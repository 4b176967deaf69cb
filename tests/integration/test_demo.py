"""`diffsvc demo`, run as a new user would: the regression with its path, no volatile field."""

from __future__ import annotations

import os
import subprocess
import sys

VOLATILE = ("request_id", "generated_at", "updated_at", "took_ms")


def report_section(out: str) -> list[str]:
    """The report table: from the ENDPOINT header to the summary line."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ENDPOINT"))
    end = next(i for i in range(start, len(lines)) if " endpoints, " in lines[i])
    return lines[start:end + 1]


def endpoint_block(table: list[str], endpoint: str) -> list[str]:
    """The endpoint's row and the indented lines under it."""
    start = next(i for i, line in enumerate(table) if line.startswith(endpoint + " "))
    block = [table[start]]
    for line in table[start + 1:]:
        if not line.startswith(" "):
            break
        block.append(line)
    return block


def test_demo_shows_the_regression_and_no_volatile_field() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFSVC_")}
    done = subprocess.run([sys.executable, "-m", "diffsvc", "demo", "--duration", "4"],
                          capture_output=True, text=True, timeout=180, env=env,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    table = report_section(done.stdout)
    header = table[0].split()

    def column(endpoint: str, name: str) -> int:
        row = endpoint_block(table, endpoint)[0].split()
        return int(row[len(endpoint.split()) + header.index(name) - 1])

    products = endpoint_block(table, "GET /api/products/{id}")
    pairs = column("GET /api/products/{id}", "PAIRS")
    mismatches = column("GET /api/products/{id}", "MISMATCH")
    assert pairs > 0 and 0 < mismatches < pairs  # only the discounted products regress
    assert any(line.split()[0] == "$.price" for line in products[1:]), products
    # users carry request ids and timestamps on every call: all ignored, so no mismatch
    assert column("GET /api/users/{id}", "PAIRS") > 0
    assert column("GET /api/users/{id}", "MISMATCH") == 0
    assert column("GET /api/products/{id}", "ERRORS") == 0
    shown = "\n".join(table)
    for name in VOLATILE:
        assert name not in shown, f"volatile field {name} reported:\n{shown}"
