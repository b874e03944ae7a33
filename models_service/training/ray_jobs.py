"""Ray's job submission API, spoken over HTTP (the dashboard's REST endpoints), so that the worker
needs no Ray install: submit an entrypoint, read its status and logs, stop it.

Endpoints (Ray's documented jobs REST API): POST /api/jobs/ {entrypoint, submission_id,
runtime_env, metadata}; GET /api/jobs/{id} (status PENDING | RUNNING | STOPPED | SUCCEEDED |
FAILED, message); GET /api/jobs/{id}/logs ({"logs": text}); POST /api/jobs/{id}/stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

FINISHED = ("STOPPED", "SUCCEEDED", "FAILED")


class RayJobError(RuntimeError):
    """The Ray cluster refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class RayJobStatus:
    status: str
    message: str

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class RayJobsClient:
    address: str  # the dashboard, e.g. http://ray-head:8265
    timeout: float = 30.0

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.address.rstrip('/')}{path}"
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as error:
            message = f"Ray at {self.address} did not answer {method} {path}: {error}"
            raise RayJobError(message) from error
        if response.status_code >= 400:
            raise RayJobError(
                f"Ray at {self.address} answered {response.status_code} to {method} {path}: "
                f"{response.text[:500]}"
            )
        return response.json() if response.content else {}

    def submit(
        self,
        *,
        entrypoint: str,
        submission_id: str,
        env_vars: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "entrypoint": entrypoint,
            "submission_id": submission_id,
            "metadata": metadata or {},
        }
        if env_vars:
            body["runtime_env"] = {"env_vars": env_vars}
        return str(self._call("POST", "/api/jobs/", json=body)["submission_id"])

    def status(self, submission_id: str) -> RayJobStatus:
        info = self._call("GET", f"/api/jobs/{submission_id}")
        return RayJobStatus(str(info.get("status", "")), str(info.get("message") or ""))

    def logs(self, submission_id: str) -> str:
        return str(self._call("GET", f"/api/jobs/{submission_id}/logs").get("logs", ""))

    def stop(self, submission_id: str) -> bool:
        return bool(self._call("POST", f"/api/jobs/{submission_id}/stop").get("stopped"))
