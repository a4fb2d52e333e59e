"""The user's guide's three procedures, in Chromium against the real binary."""

from __future__ import annotations

import time

from flows import fragment, qr_secret, returned, wait_next_step


def test_admin_turns_on_two_factor_authentication(tab, svc):
    admin = svc.enrolled_user("t-admin", "boss", ["admin"])
    page = tab.page
    tab.open(f"access_token={admin['access_token']}&view=admin")
    page.get_by_role("heading", name="Security").wait_for()
    switch = page.get_by_role("switch", name="2-factor Authentication")
    assert switch.get_attribute("aria-checked") == "false"
    tab.check("admin-settings")
    switch.click()
    # Re-authentication first, as the guide says: the code from the authenticator app.
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    dialog.wait_for()
    tab.check("confirm-identity")
    dialog.get_by_label("6-digit code from your authenticator app").fill(admin["totp"].now())
    dialog.get_by_role("button", name="Confirm").click()
    page.get_by_text("2-factor Authentication is on.").wait_for()
    switch = page.get_by_role("switch", name="2-factor Authentication")
    assert switch.get_attribute("aria-checked") == "true"
    # It turns green.
    color = switch.evaluate("e => getComputedStyle(e).backgroundColor")
    assert color == "rgb(27, 122, 53)", color
    assert svc.call("GET", "/v1/tenants/t-admin/policy", admin["access_token"], 200).json()["enforce_mfa"] is True
    tab.check("admin-settings-on")


def test_new_user_sets_up_mfa_and_lands_back_with_an_access_token(tab, svc, helper):
    svc.enforced_tenant("t-new")
    login = svc.start_login("t-new", "newbie")
    assert login["status"] == "enrollment_required"
    page = tab.page
    tab.open(fragment(login, helper + "/"))
    # The mfa token left the address bar at once.
    assert "mfa_" not in page.url and page.url.endswith("/ui/")
    page.get_by_role("heading", name="Welcome to MSPbots").wait_for()
    tab.check("welcome")
    page.get_by_role("button", name="Setup MFA").click()
    page.get_by_role("heading", name="Set Up Authentication").wait_for()
    page.locator("img.qr").wait_for()
    tab.check("setup-qr")
    totp = qr_secret(page)
    page.get_by_role("button", name="Can't scan it?").click()
    shown = page.locator(".secret").inner_text()
    assert shown.replace(" ", "") == totp.secret and all(len(g) == 4 for g in shown.split()[:-1])
    tab.check("setup-qr-key")
    page.get_by_role("button", name="Next").click()
    code = page.get_by_label("Enter the 6-digit code from your authenticator app")
    assert code.get_attribute("inputmode") == "numeric" and code.get_attribute("autocomplete") == "one-time-code"
    tab.check("setup-code")
    code.fill(totp.now())
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    codes = page.locator(".codes li").all_inner_texts()
    assert len(codes) == 10
    tab.check("recovery-codes")
    cont = page.get_by_role("button", name="Continue")
    assert cont.is_disabled()
    page.get_by_role("button", name="Copy codes").click()
    assert "".join(codes[0].split()) in page.evaluate("navigator.clipboard.readText()").replace(" ", "")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download codes").click()
    assert codes[0] in open(dl.value.path()).read()
    page.get_by_label("I have saved these codes").check()
    cont.click()
    values = returned(page, helper)
    me = svc.call("GET", "/v1/me", values["access_token"], 200).json()
    assert me["user_id"] == "newbie" and me["mfa"]["enrolled"] is True
    # No token in storage, nor in any Referer the browser sent.
    for t in (login["mfa_token"], values["access_token"]):
        for r in tab.requests:
            assert t not in r["headers"].get("referer", ""), r
    tab.requests.clear()


def test_later_sign_in_with_a_code(tab, svc, helper):
    svc.enforced_tenant("t-later")
    user = svc.enrolled_user("t-later", "regular")
    login = svc.start_login("t-later", "regular")
    assert login["status"] == "verification_required"
    page = tab.page
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("heading", name="Enter the 2FA code from your authenticator app").wait_for()
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    tab.check("sign-in")
    page.get_by_label("6-digit code").fill(user["totp"].now())
    page.get_by_role("button", name="Verify").click()
    values = returned(page, helper)
    assert svc.call("GET", "/v1/me", values["access_token"], 200).json()["user_id"] == "regular"
    assert login["mfa_token"] not in svc.server_log()
