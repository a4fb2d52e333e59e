"""The service under test: the real binary on a free port against a fresh database, a
service key, and the API calls the login backend and an admin make around the pages."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pyotp
import requests

ROOT = Path(__file__).resolve().parents[2]


class Service:
    def __init__(self, binary: str, env: dict[str, str]):
        self.tmp = tempfile.mkdtemp(prefix="mfa-browser-")
        self.db = f"mfa_browser_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MFA_") and k != "DATABASE_URL"},
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db}",
            "MFA_BIND": "127.0.0.1:0",
            "MFA_DATA_DIR": f"{self.tmp}/data",
            "MFA_WEBHOOK_DELIVERY": "false",
            "MFA_HOUSEKEEPING": "false",
            "MFA_RATE_LIMIT_PER_MINUTE": "100000",
            "RUST_LOG": "info",
            "NO_COLOR": "1",
            **env,
        }
        self.log_path = Path(self.tmp) / "service.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "serve"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        port = None
        for _ in range(600):
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if m:
                port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        if port is None:
            raise RuntimeError(f"the service did not start:\n{self.log_path.read_text()}")
        self.port = port
        # localhost, not 127.0.0.1: the origin WebAuthn and the embed settings name.
        self.base = f"http://localhost:{port}"
        self.api = f"http://127.0.0.1:{port}"
        self.service_key = subprocess.run(
            [binary, "service-keys", "create", "--name", "browser"], env=self.env, check=True, capture_output=True, text=True
        ).stdout.strip()
        self.http = requests.Session()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'],
            check=False, capture_output=True,
        )

    def server_log(self) -> str:
        return self.log_path.read_text()

    # --- the API, as the login backend and an admin call it ---------------------------------
    def call(self, method: str, path: str, token: str | None = None, expect: int | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, self.api + path, headers=headers, timeout=10, **kw)
        if expect is not None and r.status_code != expect:
            raise AssertionError(f"{method} {path}: expected {expect}, got {r.status_code}: {r.text}")
        return r

    def start_login(self, tenant: str, user: str, roles: list[str] | None = None, **extra) -> dict:
        body = {"tenant_id": tenant, "user_id": user, "email": f"{user}@example.com", "display_name": user,
                "identity_provider": "local", "roles": roles or [], "surface": "app", **extra}
        return self.call("POST", "/v1/logins", self.service_key, 201, json=body).json()

    def enrolled_user(self, tenant: str, user: str, roles: list[str] | None = None) -> dict:
        """A user with an active authenticator app, whatever the tenant's policy. The
        confirming code is the previous step's, so the current one is still unused."""
        login = self.start_login(tenant, user, roles)
        if login["status"] == "enrollment_required":
            base = f"/v1/logins/{login['login_id']}/totp-enrollment"
            m = self.call("POST", base, login["mfa_token"], 201, json={}).json()
            totp = pyotp.TOTP(m["secret"])
            done = self.call("POST", base + "/confirm", login["mfa_token"], 200, json={"code": totp.at(time.time() - 30)}).json()
        else:
            token = login["access_token"]
            m = self.call("POST", "/v1/me/totp-enrollment", token, 201, json={}).json()
            totp = pyotp.TOTP(m["secret"])
            done = self.call("POST", "/v1/me/totp-enrollment/confirm", token, 200, json={"code": totp.at(time.time() - 30)}).json()
        return {"user_id": user, "totp": totp, "access_token": done["access_token"], "recovery_codes": done["recovery_codes"]}

    def set_policy(self, tenant: str, admin: dict, changes: dict) -> dict:
        """A policy change; the admin's token is minutes old, so it is its own step-up."""
        path = f"/v1/tenants/{tenant}/policy"
        etag = self.call("GET", path, admin["access_token"], 200).headers["ETag"]
        return self.call("PUT", path, admin["access_token"], 200, json=changes, headers={"If-Match": etag}).json()

    def enforced_tenant(self, tenant: str, **policy) -> dict:
        admin = self.enrolled_user(tenant, f"{tenant}-admin", ["admin"])
        self.set_policy(tenant, admin, {"enforce_mfa": True, **policy})
        return admin
