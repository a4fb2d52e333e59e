"""The Security page (view=security): rename, add, remove with re-authentication, revoke."""

from __future__ import annotations

import time

from flows import confirm_if_asked, qr_secret, wait_next_step


def test_security_page_rename_add_remove_and_revoke(tab, svc):
    svc.enforced_tenant("t-sec", remember_device_days=30)
    u = svc.enrolled_user("t-sec", "careful")
    # A remembered browser, from a sign-in elsewhere.
    login = svc.start_login("t-sec", "careful")
    code = u["totp"].now()
    svc.call("POST", f"/v1/logins/{login['login_id']}/verify", login["mfa_token"], 200,
             json={"code": code, "remember_device": True, "device_name": "Laptop Chrome"})
    page = tab.page
    tab.open(f"access_token={u['access_token']}&view=security")
    page.get_by_role("heading", name="Security", exact=True).wait_for()
    page.get_by_text("Laptop Chrome").wait_for()
    tab.check("security")

    # Revoke first: removing a factor (below) ends every remembered browser anyway.
    page.get_by_role("button", name="Revoke Laptop Chrome").click()
    page.get_by_text("No browser is remembered.").wait_for()
    assert svc.call("GET", "/v1/me/devices", u["access_token"], 200).json()["items"] == []

    page.get_by_role("button", name="Rename Authenticator").click()
    page.get_by_label("New name for Authenticator").fill("Work phone")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("cell", name="Work phone").wait_for()

    # Add a second app: "Confirm it's you" first, then the QR code of the new one.
    page.get_by_role("button", name="Add an authenticator app").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    dialog.get_by_label("6-digit code from your authenticator app").fill(wait_next_step(u["totp"], code))
    dialog.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Add an authenticator app").wait_for()
    second = qr_secret(page)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Enter the 6-digit code from your authenticator app").fill(second.now())
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("cell", name="Authenticator", exact=True).wait_for()

    # Remove it: the confirmation above still covers this.
    page.get_by_role("button", name="Remove Authenticator", exact=True).click()
    page.get_by_text("Authenticator was removed.").wait_for()
    factors = svc.call("GET", "/v1/me/factors", u["access_token"], 200).json()["items"]
    assert [f["name"] for f in factors] == ["Work phone"]

    tab.check("security-after")

    # New recovery codes: the old ones stop working.
    page.get_by_role("button", name="Make new recovery codes").click()
    confirm_if_asked(page, u["totp"], {code})
    page.get_by_role("heading", name="New recovery codes").wait_for()
    fresh = page.locator(".codes li").all_inner_texts()
    assert len(fresh) == 10 and u["recovery_codes"][0] not in fresh
    tab.check("security-new-recovery-codes")
    page.get_by_label("I have saved these codes").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_text("10 unused recovery codes left.").wait_for()
