"""The OpenAPI 3.1 document of the report API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from diffsvc import __version__

WINDOW_PARAMS: list[dict[str, Any]] = [
    {"name": "window", "in": "query", "schema": {"type": "string", "example": "15m"},
     "description": "length of the window ending at `until` (e.g. 15m, 1h, 24h; default 1h)"},
    {"name": "since", "in": "query", "schema": {"type": "string"},
     "description": "start: epoch seconds or ISO 8601 (instead of `window`)"},
    {"name": "until", "in": "query", "schema": {"type": "string"},
     "description": "end: epoch seconds or ISO 8601 (default: now)"},
    {"name": "build", "in": "query", "schema": {"type": "string"},
     "description": "the candidate build shown (default: the newest one compared)"},
]
NUM = {"type": "number"}
INT = {"type": "integer"}
NULLABLE_NUM = {"type": ["number", "null"]}
PERCENTILES = {"type": "object", "properties": {"p50": NULLABLE_NUM, "p99": NULLABLE_NUM}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}, "parameter": {"type": "string"}}},
    "Window": {"type": "object", "properties": {"since": NUM, "until": NUM, "seconds": NUM}},
    "EndpointSummary": {"type": "object", "properties": {
        "endpoint": {"type": "string", "example": "GET /api/users/{id}"},
        "pairs": INT, "matches": INT, "errors": INT,
        "mismatches": {"type": "integer", "description": "effective: pairs holding a "
                       "difference that is not noise, as the report counts them"},
        "raw_mismatches": {"type": "integer", "description": "every mismatching pair"},
        "mismatch_rate": {"type": "number", "description": "mismatches / (matches + mismatches)"},
        "noise": {"type": "integer", "description": "mismatches also seen between primary and "
                                                    "secondary (0 without a secondary)"},
        "latency_ms": {"type": "object", "properties": {"primary": PERCENTILES,
                                                        "candidate": PERCENTILES}},
        "spark": {"type": "array", "items": NULLABLE_NUM,
                  "description": "mismatch rate over the window, oldest first (null: no traffic)"},
    }},
    "Summary": {"type": "object", "properties": {
        "window": {"$ref": "#/components/schemas/Window"},
        "totals": {"type": "object"},
        "endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/EndpointSummary"}},
    }},
    "Field": {"type": "object", "properties": {
        "path": {"type": "string", "example": "$.items[*].price"},
        "raw": INT, "noise": INT, "effective": INT, "rate": NUM,
        "ignored": {"type": "boolean", "description": "an active UI rule ignores it now"}}},
    "EndpointDetail": {"type": "object", "properties": {
        "endpoint": {"type": "string"}, "window": {"$ref": "#/components/schemas/Window"},
        "summary": {"$ref": "#/components/schemas/EndpointSummary"},
        "totals": {"type": "object", "description": "since data was last cleared"},
        "fields": {"type": "array", "items": {"$ref": "#/components/schemas/Field"}},
        "groups": {"type": "array", "items": {"type": "object"},
                   "description": "mismatch groups (signatures) with counts"},
        "samples": {"type": "array", "items": {"type": "object"}},
        "rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}}},
    "Body": {"type": "object", "properties": {
        "encoding": {"enum": ["json", "text", "base64", "undecodable"]},
        "json": {}, "text": {"type": ["string", "null"]}, "size": INT,
        "truncated": {"type": "boolean"}}},
    "Response": {"type": "object", "properties": {
        "status": INT, "headers": {"type": "array"}, "elapsed_ms": NUM,
        "error": {"type": ["string", "null"]}, "body": {"$ref": "#/components/schemas/Body"}}},
    "Exchange": {"type": "object", "properties": {
        "id": {"type": "string"}, "endpoint": {"type": ["string", "null"]},
        "captured_at": NUM,
        "request": {"type": "object", "properties": {
            "method": {"type": "string"}, "target": {"type": "string"},
            "headers": {"type": "array"}, "body": {"$ref": "#/components/schemas/Body"},
            "curl": {"type": "string"}}},
        "responses": {"type": "object", "additionalProperties":
                      {"$ref": "#/components/schemas/Response"}},
        "comparison": {"type": ["object", "null"], "properties": {
            "verdict": {"enum": ["match", "mismatch", "error"]},
            "diffs": {"type": "array", "items": {"type": "object", "properties": {
                "path": {"type": "string"}, "location": {"type": "string"},
                "kind": {"type": "string"}, "primary": {}, "candidate": {}}}}}}}},
    "Gate": {"type": "object", "properties": {
        "verdict": {"enum": ["pass", "fail", "inconclusive"]}, "reason": {"type": "string"},
        "pairs": INT, "mismatches": INT, "errors": INT, "rate": NUM,
        "wilson_upper": {"type": "number", "description": "upper bound of the mismatch rate "
                                                          "at `confidence`"},
        "window": {"type": "string"}, "max_mismatch_rate": NUM, "min_pairs": INT,
        "confidence": NUM, "endpoint": {"type": ["string", "null"]},
        "endpoints": {"type": "array", "items": {"type": "object"}}}},
    "Rule": {"type": "object", "properties": {
        "id": {"type": "string"}, "path": {"type": "string"},
        "endpoint": {"type": "string", "description": "endpoint name or * for all"},
        "note": {"type": "string"}, "created_at": NUM}},
    "NewRule": {"type": "object", "required": ["path"], "properties": {
        "path": {"type": "string", "example": "$.price",
                 "description": "a JSONPath, or header.<name> for a header"},
        "endpoint": {"type": "string", "example": "GET /api/products/{id}"},
        "note": {"type": "string"}}},
}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema}"}}}}


ERR = {"description": "bad parameter (named in `parameter`)", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
NOT_FOUND = {"description": "not found", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "endpoint name, URL-encoded (e.g. GET%20%2Fapi%2Fusers%2F%7Bid%7D)"}
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "diffsvc report API", "version": __version__,
                 "description": "Shadow-diff results: endpoints, differing fields, exchanges "
                                "and the ignore rules added from the UI."},
        "servers": [{"url": "/api/v1"}],
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "required when report.token is set"}}},
        "security": [{}, {"bearer": []}],
        "paths": {
            "/summary": {"get": {"summary": "endpoints over a time window, by mismatch rate",
                                 "parameters": WINDOW_PARAMS,
                                 "responses": {"200": _ok("Summary"), "400": ERR}}},
            "/endpoints/{name}": {
                "get": {"summary": "one endpoint: fields (raw/noise/effective), groups, samples",
                        "parameters": [NAME, *WINDOW_PARAMS],
                        "responses": {"200": _ok("EndpointDetail"), "404": NOT_FOUND}},
                "delete": {"summary": "clear the counters and samples of one endpoint",
                           "parameters": [NAME], "responses": {"200": {"description": "OK"}}}},
            "/data": {"delete": {"summary": "clear all stored data (ignore rules are kept)",
                                 "responses": {"200": {"description": "OK"}}}},
            "/exchanges/{id}": {"get": {
                "summary": "one exchange: request, each upstream's response, the diff",
                "parameters": [ID],
                "responses": {"200": _ok("Exchange"), "404": NOT_FOUND}}},
            "/rules": {
                "get": {"summary": "ignore rules added from the UI (format=yaml: as config)",
                        "parameters": [{"name": "format", "in": "query",
                                        "schema": {"enum": ["json", "yaml"]}}],
                        "responses": {"200": {"description": "OK"}}},
                "post": {"summary": "add an ignore rule; workers apply it from their next batch",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/NewRule"}}}},
                         "responses": {"201": _ok("Rule", "created"), "400": ERR}}},
            "/rules/{id}": {"delete": {"summary": "remove an ignore rule", "parameters": [ID],
                                       "responses": {"200": {"description": "OK"},
                                                     "404": NOT_FOUND}}},
            "/gate": {
                "get": {"summary": "canary gate: pass (200), fail (412), inconclusive (425 unless "
                                   "`inconclusive=pass|fail`); see docs/canary.md",
                        "parameters": [
                            {"name": n, "in": "query", "schema": sch} for n, sch in (
                                ("endpoint", {"type": "string"}),
                                ("window", {"type": "string", "example": "5m"}),
                                ("max_mismatch_rate", NUM), ("min_pairs", INT),
                                ("confidence", NUM),
                                ("inconclusive", {"enum": ["hold", "pass", "fail"]}),
                                ("build", {"type": "string"}))],
                        "responses": {"200": _ok("Gate", "pass"), "412": _ok("Gate", "fail"),
                                      "425": _ok("Gate", "inconclusive"), "400": ERR}},
                "post": {"summary": "the same, from Flagger's webhook payload (parameters in "
                                    "`metadata`)",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"type": "object", "properties": {
                                 "name": {"type": "string"}, "namespace": {"type": "string"},
                                 "phase": {"type": "string"},
                                 "metadata": {"type": "object"}}}}}},
                         "responses": {"200": _ok("Gate", "pass"), "412": _ok("Gate", "fail"),
                                       "425": _ok("Gate", "inconclusive"), "400": ERR}}},
            "/openapi.json": {"get": {"summary": "this document",
                                      "responses": {"200": {"description": "OK"}}}},
        },
    }
