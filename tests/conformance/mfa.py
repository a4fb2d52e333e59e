"""A tiny client of mspbots-mfa that signs people in the way the real callers do.

Used by the conformance run (`.ci/conformance.sh`) twice:

* `python mfa.py` prepares the fixtures once and prints them as JSON: tenant
  `conformance-logins` gets an admin with an authenticator app and 2FA enforced with a 7-day
  enrollment grace and 30-day remembered devices, so any new user of it signs in as
  `enrollment_required` (and may skip it) and a code may remember the browser. Nothing in the run can change that tenant's
  policy (the hooks point every `{tenant_id}` at `conformance`).
* `hooks.py` mints fresh credentials per test case with the functions below, so every case
  reaches the handler with a live credential (mfa tokens die after 5 wrong codes, users
  lock, factors get removed: sharing one credential would test mostly 401s and 429s).

Codes are computed with pyotp from the secret the API returns, as an authenticator app does.
Environment: MFA_BASE_URL (http://127.0.0.1:PORT) and MFA_SERVICE_KEY.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pyotp
import requests

BASE = os.environ["MFA_BASE_URL"]
SERVICE_KEY = os.environ["MFA_SERVICE_KEY"]
ADMIN_TENANT = "conformance"  # every {tenant_id} of the run; its policy may change
LOGIN_TENANT = "conformance-logins"  # 2FA enforced once, never changed
_http = requests.Session()


def call(method: str, path: str, token: str, expect: int, **kw) -> requests.Response:
    r = _http.request(method, BASE + path, headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})}, timeout=10, **kw)
    if r.status_code != expect:
        raise RuntimeError(f"{method} {path}: expected {expect}, got {r.status_code}: {r.text}")
    return r


def start_login(tenant: str, user: str | None = None, roles: list[str] | None = None) -> dict:
    """`POST /v1/logins` for a local user (a new one unless `user` is given)."""
    user = user or f"u-{uuid.uuid4().hex[:12]}"
    body = {"tenant_id": tenant, "user_id": user, "email": f"{user}@example.com", "identity_provider": "local", "roles": roles or [], "surface": "app"}
    return call("POST", "/v1/logins", SERVICE_KEY, 201, json=body).json() | {"user_id": user}


def enrollment(login: dict) -> pyotp.TOTP:
    """Starts the enrollment of an `enrollment_required` login; returns its authenticator."""
    m = call("POST", f"/v1/logins/{login['login_id']}/totp-enrollment", login["mfa_token"], 201).json()
    return pyotp.TOTP(m["secret"])


def enrolled_user(tenant: str, roles: list[str] | None = None) -> dict:
    """A new user with an active authenticator app: `{user_id, access_token, totp, recovery_codes}`.

    Works whatever the tenant's policy is now (enforced: enroll during sign-in; not enforced
    or exempt: sign in, then enroll voluntarily).
    """
    login = start_login(tenant, roles=roles)
    if login["status"] == "enrollment_required":
        totp = enrollment(login)
        path, token = f"/v1/logins/{login['login_id']}/totp-enrollment/confirm", login["mfa_token"]
    else:
        m = call("POST", "/v1/me/totp-enrollment", login["access_token"], 201).json()
        totp = pyotp.TOTP(m["secret"])
        path, token = "/v1/me/totp-enrollment/confirm", login["access_token"]
    done = call("POST", path, token, 200, json={"code": totp.now()}).json()
    return {"user_id": login["user_id"], "access_token": done["access_token"], "totp": totp, "recovery_codes": done["recovery_codes"]}


def remembered_device(tenant: str) -> dict:
    """A new enrolled user who signed in again ticking "remember this browser":
    `{user_id, access_token, device_token}` (the tenant must remember devices)."""
    user = enrolled_user(tenant)
    login = start_login(tenant, user["user_id"])  # verification_required
    body = {"code": next_code(user["totp"]), "remember_device": True, "device_name": "Conformance"}
    done = call("POST", f"/v1/logins/{login['login_id']}/verify", login["mfa_token"], 200, json=body).json()
    return {"user_id": user["user_id"], "access_token": done["access_token"], "device_token": done["device_token"]}


def add_factor(access_token: str, confirm: bool = True, tenant: str = ADMIN_TENANT) -> dict:
    """One more authenticator for an admin of `tenant` whose token is fresh (§10):
    `{factor_id, totp}`, confirmed unless `confirm` is false (then it stays pending).

    The run's own policy updates may have set the tenant's `max_factors_per_user` to 1; then
    the limit (a 409 `factor_limit`, as documented) is raised back to the default first."""
    body = {"name": f"Tablet {uuid.uuid4().hex[:6]}"}
    r = _http.post(BASE + "/v1/me/factors", headers={"Authorization": f"Bearer {access_token}"}, json=body, timeout=10)
    if r.status_code == 409 and r.json().get("code") == "factor_limit":
        set_policy(tenant, access_token, max_factors_per_user=5)
        r = call("POST", "/v1/me/factors", access_token, 201, json=body)
    elif r.status_code != 201:
        raise RuntimeError(f"POST /v1/me/factors: expected 201, got {r.status_code}: {r.text}")
    m = r.json()
    totp = pyotp.TOTP(m["secret"])
    if confirm:
        call("POST", f"/v1/me/factors/{m['factor_id']}/confirm", access_token, 200, json={"code": totp.now()})
    return {"factor_id": m["factor_id"], "totp": totp}


def consecutive_codes(totp: pyotp.TOTP) -> dict:
    """Two codes of consecutive steps later than any used yet, for a resync (§11)."""
    now = time.time()
    return {"code1": totp.at(now + totp.interval), "code2": totp.at(now + 2 * totp.interval)}


def next_code(totp: pyotp.TOTP) -> str:
    """A code of the next time step: valid (skew 1) and never the step just used."""
    return totp.at(time.time() + totp.interval)


def set_policy(tenant: str, admin_token: str, **fields) -> dict:
    """`PUT` the tenant policy fields given (If-Match with the current ETag)."""
    etag = call("GET", f"/v1/tenants/{tenant}/policy", SERVICE_KEY, 200).headers["ETag"]
    return call("PUT", f"/v1/tenants/{tenant}/policy", admin_token, 200, headers={"If-Match": etag}, json=fields).json()


def enforce(tenant: str, admin_token: str, **more) -> dict:
    """Turns 2FA on for the tenant, with `more` policy fields."""
    return set_policy(tenant, admin_token, enforce_mfa=True, **more)


def webhook(tenant: str, admin_token: str) -> dict:
    """A new webhook of the tenant with a test delivery: `{webhook_id, delivery_id}`.

    The conformance run starts the service with MFA_WEBHOOK_DELIVERY=false: nothing is sent
    anywhere, the delivery stays pending (so it can be retried). A tenant keeps at most 20
    webhooks (§20): at the limit the oldest is deleted first (the admin token is fresh, so
    recent enough for that step-up). `/test` is once per 10 s per webhook, so once here."""
    base = f"/v1/tenants/{tenant}/webhooks"
    body = {"url": "https://hooks.example.invalid/mfa"}
    r = _http.post(BASE + base, headers={"Authorization": f"Bearer {admin_token}"}, json=body, timeout=10)
    if r.status_code == 409 and r.json().get("code") == "webhook_limit":
        oldest = call("GET", f"{base}?limit=1", admin_token, 200).json()["items"][0]
        call("DELETE", f"{base}/{oldest['webhook_id']}", admin_token, 204)
        r = _http.post(BASE + base, headers={"Authorization": f"Bearer {admin_token}"}, json=body, timeout=10)
    if r.status_code != 201:
        raise RuntimeError(f"POST {base}: expected 201, got {r.status_code}: {r.text}")
    hook = r.json()
    delivery = call("POST", f"{base}/{hook['webhook_id']}/test", admin_token, 202).json()
    return {"webhook_id": hook["webhook_id"], "delivery_id": delivery["delivery_id"]}


def prepare() -> dict:
    """The fixtures: both tenants exist, `conformance-logins` enforces 2FA, and each kind of
    sign-in the hooks mint is reachable (a failure here is a setup error, not a finding)."""
    for tenant in (ADMIN_TENANT, LOGIN_TENANT):
        admin = enrolled_user(tenant, roles=["admin"])
    policy = enforce(LOGIN_TENANT, admin["access_token"], enrollment_grace_days=7, remember_device_days=30)
    first = start_login(LOGIN_TENANT)
    assert first["status"] == "enrollment_required" and "grace_ends_at" in first
    assert start_login(LOGIN_TENANT, admin["user_id"])["status"] == "verification_required"
    return {"admin_tenant": ADMIN_TENANT, "login_tenant": LOGIN_TENANT, "login_policy_version": policy["version"]}


if __name__ == "__main__":
    print(json.dumps(prepare()))
