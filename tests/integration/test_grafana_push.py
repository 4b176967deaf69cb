"""`diffsvc dashboards push` against an HTTP server implementing the Grafana API routes that
grafana-client calls (folders, dashboards/db, provisioning alert-rules), checking the bodies
it receives like Grafana does, and idempotency: a second push updates, never duplicates."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from diffsvc import cli
from diffsvc.ops import dashgen, grafana

TOKEN = "glsa_test_token"
RULE_KEYS = {"uid", "title", "condition", "data", "folderUID", "ruleGroup", "noDataState",
             "execErrState", "for", "labels", "annotations", "orgID"}


class FakeGrafana:
    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_get("/api/folders/{uid}", self.get_folder)
        app.router.add_post("/api/folders", self.create_folder)
        app.router.add_post("/api/dashboards/db", self.post_dashboard)
        app.router.add_get("/api/v1/provisioning/alert-rules/{uid}", self.get_rule)
        app.router.add_post("/api/v1/provisioning/alert-rules", self.create_rule)
        app.router.add_put("/api/v1/provisioning/alert-rules/{uid}", self.update_rule)
        return app

    async def get_folder(self, request: web.Request) -> web.Response:
        folder = self.folders.get(request.match_info["uid"])
        if folder is None:
            return web.json_response({"message": "folder not found"}, status=404)
        return web.json_response(folder)

    async def create_folder(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("title") or not body.get("uid"):
            return web.json_response({"message": "title and uid required"}, status=400)
        if body["uid"] in self.folders:
            return web.json_response({"message": "a folder with that uid exists"}, status=409)
        self.folders[body["uid"]] = {"id": len(self.folders) + 1, "uid": body["uid"],
                                     "title": body["title"]}
        return web.json_response(self.folders[body["uid"]])

    async def post_dashboard(self, request: web.Request) -> web.Response:
        body = await request.json()
        dash = body.get("dashboard") or {}
        if not dash.get("uid") or not dash.get("title") or not dash.get("panels"):
            return web.json_response({"message": "dashboard needs uid, title, panels"}, status=400)
        if body.get("folderUid") not in self.folders:
            return web.json_response({"message": "folder not found"}, status=400)
        existing = self.dashboards.get(dash["uid"])
        if existing and not body.get("overwrite"):
            return web.json_response({"status": "version-mismatch"}, status=412)
        version = existing["version"] + 1 if existing else 1
        self.dashboards[dash["uid"]] = {"dashboard": dash, "folderUid": body["folderUid"],
                                        "version": version}
        return web.json_response({"id": 1, "uid": dash["uid"], "status": "success",
                                  "version": version, "url": f"/d/{dash['uid']}"})

    def _check_rule(self, body: dict[str, Any]) -> str | None:
        missing = RULE_KEYS - set(body)
        if missing:
            return f"missing {sorted(missing)}"
        if body["folderUID"] not in self.folders:
            return "folder not found"
        refs = [d["refId"] for d in body["data"]]
        if body["condition"] not in refs:
            return "condition is not a query"
        for d in body["data"]:
            if d["datasourceUid"] not in ("__expr__", dashgen.DATASOURCE_UID, "other-prom"):
                return f"datasource {d['datasourceUid']} not found"
        return None

    async def get_rule(self, request: web.Request) -> web.Response:
        rule = self.rules.get(request.match_info["uid"])
        if rule is None:
            return web.Response(status=404)
        return web.json_response(rule)

    async def create_rule(self, request: web.Request) -> web.Response:
        body = await request.json()
        problem = self._check_rule(body)
        if problem:
            return web.json_response({"message": problem}, status=400)
        if body["uid"] in self.rules:
            return web.json_response({"message": "rule uid exists"}, status=409)
        self.rules[body["uid"]] = body
        return web.json_response(body, status=201)

    async def update_rule(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        body = await request.json()
        problem = self._check_rule(body)
        if problem or uid not in self.rules or body["uid"] != uid:
            return web.json_response({"message": problem or "no such rule"}, status=400)
        self.rules[uid] = body
        return web.json_response(body)


def test_push_creates_then_updates_without_duplicates(serve):
    fake = FakeGrafana()
    url = serve(fake.app()).url
    assert cli.main(["dashboards", "push", "--grafana-url", url, "--token", TOKEN]) == 0
    assert list(fake.folders) == ["diffsvc"] and fake.folders["diffsvc"]["title"] == "diffsvc"
    assert list(fake.dashboards) == ["diffsvc-overview"]
    stored = fake.dashboards["diffsvc-overview"]
    assert stored["dashboard"]["panels"] == dashgen.overview()["panels"]
    assert stored["dashboard"]["id"] is None and stored["folderUid"] == "diffsvc"
    assert sorted(fake.rules) == sorted(a["uid"] for a in dashgen.ALERTS)
    mismatch = fake.rules["diffsvc-mismatch-rate"]
    assert mismatch["data"][0]["model"]["expr"] == dashgen.ALERTS[0]["value"]
    assert mismatch["data"][2]["model"]["conditions"][0]["evaluator"] == {
        "type": "gt", "params": [dashgen.MISMATCH_THRESHOLD]}
    assert mismatch["ruleGroup"] == "diffsvc" and mismatch["for"] == "5m"

    fake.calls.clear()
    result = grafana.push(url, TOKEN)  # again: updates
    assert result.rules_created == [] and len(result.rules_updated) == len(dashgen.ALERTS) == 4
    assert len(fake.folders) == 1 and len(fake.dashboards) == 1 and len(fake.rules) == 4
    assert fake.dashboards["diffsvc-overview"]["version"] == 2
    assert ("POST", "/api/folders") not in fake.calls
    assert ("POST", "/api/v1/provisioning/alert-rules") not in fake.calls
    assert fake.calls.count(("POST", "/api/dashboards/db")) == 1


def test_push_uses_the_given_datasource_and_folder(serve):
    fake = FakeGrafana()
    url = serve(fake.app()).url
    grafana.push(url, TOKEN, folder_uid="canary", datasource_uid="other-prom")
    assert list(fake.folders) == ["canary"]
    assert all(r["folderUID"] == "canary" and r["data"][0]["datasourceUid"] == "other-prom"
               for r in fake.rules.values())
    [var] = [v for v in fake.dashboards["diffsvc-overview"]["dashboard"]["templating"]["list"]
             if v["type"] == "datasource"]
    assert var["current"]["value"] == "other-prom"


def test_push_with_a_wrong_token_fails_naming_the_status(serve):
    url = serve(FakeGrafana().app()).url
    with pytest.raises(grafana.GrafanaPushError, match="Unauthorized"):
        grafana.push(url, "wrong")
    assert cli.main(["dashboards", "push", "--grafana-url", url, "--token", "wrong"]) == 78


def test_export_writes_the_provisioning_tree(tmp_path):
    assert cli.main(["dashboards", "export", str(tmp_path)]) == 0
    for rel in grafana.tree():
        assert (tmp_path / rel).is_file()
