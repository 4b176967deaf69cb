"""`diffsvc dashboards export DIR` writes the provisioning tree (Grafana datasource,
dashboards and alert rules; Prometheus config and rules); `diffsvc dashboards push` creates or
updates the folder, dashboards and alert rules of a running Grafana through its HTTP API
(grafana-client), idempotently: a second push updates, it never duplicates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import niquests.exceptions
import yaml
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from diffsvc.errors import GrafanaPushError
from diffsvc.ops import dashgen

PROMETHEUS_CONFIG = "prometheus/prometheus.yml"


REPORT_TOKEN_FILE = "/etc/prometheus/report-token"


def prometheus_config(targets: dict[str, str]) -> dict[str, Any]:
    """Prometheus' config for the compose stack: scrape the report server's /metrics with
    the report server's bearer token (docker-compose.yml puts it in REPORT_TOKEN_FILE)."""
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                            "authorization": {"credentials_file": REPORT_TOKEN_FILE},
                            "static_configs": [{"targets": [target]}]}
                           for job, target in targets.items()],
    }


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def tree(prometheus_url: str = "http://prometheus:9090",
         scrape_targets: dict[str, str] | None = None) -> dict[str, str]:
    """Every generated file: relative path -> text."""
    files = {f"grafana/dashboards/{name}": json.dumps(build(), indent=2) + "\n"
             for name, build in dashgen.DASHBOARDS.items()}
    files["grafana/provisioning/datasources/diffsvc.yaml"] = _yaml(
        dashgen.datasource_provisioning(prometheus_url))
    files["grafana/provisioning/dashboards/diffsvc.yaml"] = _yaml(dashgen.dashboard_provisioning())
    files["grafana/provisioning/alerting/diffsvc.yaml"] = _yaml(
        dashgen.grafana_alert_provisioning())
    files["prometheus/rules/diffsvc.rules.yml"] = _yaml(dashgen.prometheus_rules())
    files[PROMETHEUS_CONFIG] = _yaml(prometheus_config(scrape_targets or {"diffsvc": "report:8081"}))
    return files


def export(directory: str | Path) -> list[Path]:
    """Write the provisioning tree under `directory`; returns the files written."""
    root = Path(directory)
    written = []
    for rel, text in tree().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@dataclass
class PushResult:
    folder: str = ""
    dashboards: list[str] = field(default_factory=list)
    rules_created: list[str] = field(default_factory=list)
    rules_updated: list[str] = field(default_factory=list)


def _exists(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def push(url: str, token: str | None, *, folder_uid: str = dashgen.FOLDER_UID,
         datasource_uid: str = dashgen.DATASOURCE_UID, timeout: float = 10.0) -> PushResult:
    """Create or update the folder, the dashboards and the alert rules in Grafana at `url`."""
    try:
        return _push(url, token, folder_uid, datasource_uid, timeout)
    except GrafanaException as exc:
        refused = getattr(exc, "status_code", None) in (401, 403)
        fix = ": check --token (a service account token) or user:pass in the URL" if refused else ""
        raise GrafanaPushError(f"Grafana at {url}: {exc}{fix}", refused=refused) from exc
    except niquests.exceptions.RequestException as exc:  # connect, TLS, timeout
        raise GrafanaPushError(f"Grafana at {url} unreachable ({_reason(exc)}): is it running, "
                               f"and is --grafana-url right?") from exc


def _reason(exc: BaseException) -> str:
    """The innermost reason of a connection failure: "[Errno 111] Connection refused"."""
    found = re.findall(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    return found[-1] if found else type(exc).__name__


def _push(url: str, token: str | None, folder_uid: str, datasource_uid: str,
          timeout: float) -> PushResult:
    api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout)
    result = PushResult(folder=folder_uid)
    if not _exists(api.folder.get_folder, folder_uid):
        api.folder.create_folder(dashgen.FOLDER_TITLE, uid=folder_uid)
    for build in dashgen.DASHBOARDS.values():
        dashboard = build()
        for var in dashboard["templating"]["list"]:
            if var["type"] == "datasource":
                var["current"] = {"text": "Prometheus", "value": datasource_uid}
        api.dashboard.update_dashboard({"dashboard": {**dashboard, "id": None},
                                        "folderUid": folder_uid, "overwrite": True,
                                        "message": "diffsvc dashboards push"})
        result.dashboards.append(dashboard["uid"])
    for rule in dashgen.grafana_alert_api_rules(folder_uid, datasource_uid):
        if _exists(api.alertingprovisioning.get_alertrule, rule["uid"]):
            api.alertingprovisioning.update_alertrule(rule["uid"], rule)
            result.rules_updated.append(rule["uid"])
        else:
            api.alertingprovisioning.create_alertrule(rule)
            result.rules_created.append(rule["uid"])
    return result
