"""Steps shared by the tests: what a person does on the pages."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
from urllib.parse import parse_qs, quote, urlsplit

import pyotp


def fragment(login: dict, return_to: str | None) -> str:
    f = f"mfa_token={quote(login['mfa_token'], safe='')}&login_id={login['login_id']}"
    return f + (f"&return_to={quote(return_to, safe='')}" if return_to else "")


def wait_next_step(totp: pyotp.TOTP, used: str) -> str:
    """The next code the app shows, once the current one was used (at most 30 s)."""
    while totp.now() == used:
        time.sleep(0.5)
    return totp.now()


def qr_secret(page) -> pyotp.TOTP:
    """Reads the QR code from a screenshot of the page, as a phone's camera does."""
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        page.locator("img.qr").screenshot(path=f.name)
        out = subprocess.run(["zbarimg", "--quiet", "--raw", f.name], capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("otpauth://totp/"), out
    return pyotp.parse_uri(out)


def returned(page, helper: str) -> dict:
    """Waits for the browser to be sent back to return_to; the values of its fragment."""
    page.wait_for_url(f"{helper}/**", timeout=10000)
    values = {k: v[0] for k, v in parse_qs(urlsplit(page.url).fragment).items()}
    assert values["type"] == "mspbots-mfa:done" and values["status"] == "authenticated", values
    return values


def confirm_if_asked(page, totp: pyotp.TOTP, used: set[str]) -> None:
    """Answers "Confirm it's you" when the page asks (it asks once, then a fresh token from
    docs/API.md §17 covers a few minutes; without §17 each action carries its own code)."""
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    try:
        dialog.wait_for(timeout=3000)
    except Exception:  # noqa: BLE001 - not asked: the earlier confirmation still covers it
        return
    code = totp.now()
    while code in used:
        time.sleep(0.5)
        code = totp.now()
    used.add(code)
    dialog.get_by_label("6-digit code from your authenticator app").fill(code)
    dialog.get_by_role("button", name="Confirm").click()
    dialog.wait_for(state="detached")


class Authenticator:
    """Chromium's virtual authenticator (DevTools WebAuthn domain) in one tab: a platform
    passkey with user verification, not backup-eligible (so its tokens say `hwk`)."""

    OPTIONS = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
               "hasUserVerification": True, "isUserVerified": True}

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": self.OPTIONS})["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def remove(self) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})


def amr(access_token: str) -> list[str]:
    """The `amr` claim of an access token (its payload, read without checking the signature:
    the service's own /v1/me call in the tests checks the token)."""
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["amr"]


def set_up_passkey(tab, svc, helper, tenant: str, user: str, roles: list[str] | None = None, shot: str | None = None) -> dict:
    """A new user of an enforcing tenant who picks a passkey at "Setup MFA": the authenticator
    that holds it, the access token and recovery codes the pages handed out, and the tenant's
    first admin (who has an app). `shot` checks the recovery codes' screen under that name."""
    admin = svc.enforced_tenant(tenant)
    login = svc.start_login(tenant, user, roles)
    assert login["status"] == "enrollment_required"
    page = tab.page
    key = Authenticator(page)
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("button", name="Setup MFA").click()
    page.get_by_role("heading", name="Set Up Authentication").wait_for()
    page.get_by_role("button", name="Use a passkey or security key instead").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    codes = page.locator(".codes li").all_inner_texts()
    if shot:
        tab.check(shot)
    page.get_by_label("I have saved these codes").check()
    page.get_by_role("button", name="Continue").click()
    values = returned(page, helper)
    return {"key": key, "access_token": values["access_token"], "recovery_codes": codes, "admin": admin}


def p256_private_key() -> str:
    """A fresh P-256 key, PKCS#8 DER in base64, as WebAuthn.addCredential takes it."""
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], input=pem, capture_output=True, check=True).stdout
    return base64.b64encode(der).decode()
