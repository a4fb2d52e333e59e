"""Schemathesis hooks of the conformance run: a real credential for every test case.

The kind of credential comes from the operation's own `security` in the spec (its first
alternative): `service_key`, `mfa_token` or `access_token`. Each case gets a fresh one,
minted through the API by `mfa.py` (an auth provider, so schemathesis knows the credential
is real and its `ignored_auth` check can take it away). With it come the real values an
authenticated call needs: the `login_id` of that mfa token, the admin's `tenant_id` and
`user_id`, a listing `cursor`, the current `If-Match`, a step-up code, a TOTP or recovery
code in the body, a `factor_id` of the admin's (a pending one to confirm, a second active one
to rename, resynchronise or remove) and two consecutive codes for a resync. `before_call` puts them in just before the request is sent (codes and
ETags go stale between generation and sending), and only over values that were generated
as *valid* input: negative parts are sent as generated, so the service is still tested on
them. Loaded through SCHEMATHESIS_HOOKS.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import pyotp
import schemathesis
from schemathesis.core.parameters import ParameterLocation

import mfa

PATH, HEADER, QUERY, BODY = (ParameterLocation.PATH, ParameterLocation.HEADER, ParameterLocation.QUERY, ParameterLocation.BODY)
REAL: dict[str, dict] = {}  # case id -> the real values that go with its credential, by location


def mfa_login(op: str) -> dict:
    """A sign-in in the state the operation needs, and the code a valid body would carry."""
    # remember_device may be generated: allowed on verify and recover
    if op in ("verifyLogin", "recoverLogin", "resyncLogin"):
        user = mfa.enrolled_user(mfa.LOGIN_TENANT)
        login = mfa.start_login(mfa.LOGIN_TENANT, user["user_id"])  # verification_required
        body = {"code": lambda: mfa.next_code(user["totp"]), "recovery_code": user["recovery_codes"][0]}
        if op == "resyncLogin":
            codes = lambda: mfa.consecutive_codes(user["totp"])  # noqa: E731
            body |= {"code1": lambda: codes()["code1"], "code2": lambda: codes()["code2"]}
    else:
        login = mfa.start_login(mfa.LOGIN_TENANT)  # enrollment_required
        body = {}
        if op == "confirmLoginEnrollment":
            body["code"] = mfa.enrollment(login).now
    return {"token": login["mfa_token"], PATH: {"login_id": login["login_id"]}, BODY: body}


def device_owner(op: str) -> dict:
    """A user of the logins tenant (which remembers devices) with one remembered browser."""
    owner = mfa.remembered_device(mfa.LOGIN_TENANT)
    token = owner["access_token"]
    devices = mfa.call("GET", "/v1/me/devices", token, 200).json()["items"]
    return {"token": token, PATH: {"device_id": devices[0]["device_id"]}, HEADER: {}, QUERY: {}, BODY: {}}


DEVICE_OPS = ("listMyDevices", "revokeMyDevice", "revokeAllMyDevices")


def admin(op: str) -> dict:
    """A new tenant admin who just signed in with 2FA (so step-up passes without a code)."""
    if op in DEVICE_OPS:
        return device_owner(op)
    user = mfa.enrolled_user(mfa.ADMIN_TENANT, roles=["admin"])
    token, tenant = user["access_token"], mfa.ADMIN_TENANT
    headers, query, body = {"X-MFA-Code": user["recovery_codes"][0]}, {}, {}
    if op == "confirmMyEnrollment":  # needs a pending (re-)enrollment
        material = mfa.call("POST", "/v1/me/totp-enrollment", token, 201).json()
        body["code"] = pyotp.TOTP(material["secret"]).now
    if op == "updatePolicy":
        headers["If-Match"] = lambda: mfa.call("GET", f"/v1/tenants/{tenant}/policy", mfa.SERVICE_KEY, 200).headers["ETag"]
        # Apps stay allowed: every credential of the run is minted through a TOTP enrollment,
        # which a tenant allowing only `webauthn` refuses (409 factor_type_not_allowed).
        body["allowed_factor_types"] = ["totp", "webauthn"]
    if op in ("listUsers", "listAuditEvents"):  # a cursor is valid only if the API made it
        listing = "users" if op == "listUsers" else "audit-events"
        page = mfa.call("GET", f"/v1/tenants/{tenant}/{listing}?limit=1", mfa.SERVICE_KEY, 200).json()
        query["cursor"] = page["next_cursor"]
    path = {"tenant_id": tenant, "user_id": user["user_id"]}
    if op == "confirmMyFactor":  # a pending factor and its code
        factor = mfa.add_factor(token, confirm=False)
        path["factor_id"], body["code"] = factor["factor_id"], factor["totp"].now
    elif op in FACTOR_OPS:  # a second, active factor (so removing it is allowed)
        factor = mfa.add_factor(token)
        path["factor_id"] = factor["factor_id"]
        if op == "resyncMyFactor":
            body["code1"] = lambda: mfa.consecutive_codes(factor["totp"])["code1"]
            body["code2"] = lambda: mfa.consecutive_codes(factor["totp"])["code2"]
    if op in WEBHOOK_OPS:  # a live webhook of the tenant, with two deliveries
        hook = mfa.webhook(tenant, token)
        path |= {"webhook_id": hook["webhook_id"], "delivery_id": hook["delivery_id"]}
        if op in ("listWebhooks", "listWebhookDeliveries"):
            listing = "webhooks" if op == "listWebhooks" else f"webhooks/{hook['webhook_id']}/deliveries"
            page = mfa.call("GET", f"/v1/tenants/{tenant}/{listing}?limit=1", mfa.SERVICE_KEY, 200).json()
            if page.get("next_cursor"):
                query["cursor"] = page["next_cursor"]
    return {"token": token, PATH: path, HEADER: headers, QUERY: query, BODY: body}


# Operations on one active factor of the admin (§10, §11).
FACTOR_OPS = ("renameMyFactor", "removeMyFactorById", "resyncMyFactor", "removeUserFactor")


def service(op: str) -> dict:
    """The run's service key; a user to offboard for `deleteUser`; for `startLogin`, a user
    of the logins tenant with a live remembered browser, so a valid body signs in by it."""
    path, body = {}, {}
    if op == "deleteUser":
        path = {"tenant_id": mfa.ADMIN_TENANT, "user_id": mfa.start_login(mfa.ADMIN_TENANT)["user_id"]}
    if op == "startLogin":
        owner = mfa.remembered_device(mfa.LOGIN_TENANT)
        body = {"tenant_id": mfa.LOGIN_TENANT, "user_id": owner["user_id"], "surface": "app", "device_token": owner["device_token"]}
    return {"token": mfa.SERVICE_KEY, PATH: path, BODY: body}


WEBHOOK_OPS = {"createWebhook", "listWebhooks", "getWebhook", "updateWebhook", "deleteWebhook", "rotateWebhookSecret",
               "testWebhook", "listWebhookDeliveries", "retryWebhookDelivery"}

MINT = {"mfa_token": mfa_login, "access_token": admin, "service_key": service}


@schemathesis.auth(refresh_interval=None)
class Credentials:
    def get(self, case, ctx):
        op = ctx.operation.definition.raw
        scheme = next(iter((op.get("security") or [{}])[0]), None)
        return MINT[scheme](op["operationId"]) if scheme else None

    def set(self, case, real, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {real['token']}"}
        REAL[case.id] = real


@schemathesis.hook
def before_call(context, case, kwargs):
    real = REAL.get(case.id, {})
    for location in (PATH, HEADER, QUERY, BODY):
        container = case.get_container(location)
        negative = case.meta is not None and case.meta.is_negative_at(location)
        if not isinstance(container, MutableMapping) or negative:
            continue
        for name, value in real.get(location, {}).items():
            if name in container:
                container[name] = value() if callable(value) else value
