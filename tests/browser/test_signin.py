"""Sign-in beyond the happy path: wrong and reused codes, the lockout countdown, an expired
sign-in, a recovery code, Set up later inside grace, Remember this browser."""

from __future__ import annotations

import re
import time

import pyotp

from flows import fragment, returned


def sign_in_page(tab, svc, tenant, user, helper=None, **policy):
    admin = svc.enforced_tenant(tenant, **policy)
    u = svc.enrolled_user(tenant, user)
    login = svc.start_login(tenant, user)
    tab.open(fragment(login, helper + "/" if helper else None))
    tab.page.get_by_role("heading", name="Enter the 2FA code from your authenticator app").wait_for()
    return admin, u, login


def wrong_code(totp: pyotp.TOTP) -> str:
    good = {totp.at(time.time() + 30 * k) for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in good)


def test_a_wrong_code_is_explained_and_the_next_right_one_works(tab, svc, helper):
    _, u, _ = sign_in_page(tab, svc, "t-wrong", "wrong", helper)
    page = tab.page
    page.get_by_label("6-digit code").fill(wrong_code(u["totp"]))
    page.get_by_role("button", name="Verify").click()
    alert = page.get_by_role("alert")
    alert.get_by_text("That code is not right").wait_for()
    tab.check("sign-in-wrong-code")
    page.get_by_label("6-digit code").fill(u["totp"].now())
    page.get_by_role("button", name="Verify").click()
    returned(page, helper)


def test_a_reused_code_asks_for_the_next_one(tab, svc):
    _, u, _ = sign_in_page(tab, svc, "t-reuse", "reuser")
    code = u["totp"].now()
    # The same code already signed this user in elsewhere.
    other = svc.start_login("t-reuse", "reuser")
    svc.call("POST", f"/v1/logins/{other['login_id']}/verify", other["mfa_token"], 200, json={"code": code})
    page = tab.page
    page.get_by_label("6-digit code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("alert").get_by_text("That code was already used").wait_for()
    tab.check("sign-in-code-reused")


def test_a_locked_user_sees_a_countdown(tab, svc):
    _, u, _ = sign_in_page(tab, svc, "t-lock", "locked")
    bad = wrong_code(u["totp"])
    other = svc.start_login("t-lock", "locked")
    for _ in range(5):
        svc.call("POST", f"/v1/logins/{other['login_id']}/verify", other["mfa_token"], json={"code": bad})
    page = tab.page
    page.get_by_label("6-digit code").fill(u["totp"].now())
    page.get_by_role("button", name="Verify").click()
    alert = page.get_by_role("alert")
    alert.get_by_text(re.compile(r"Too many attempts\. Try again in \d+ s\.")).wait_for()
    assert page.get_by_role("button", name="Verify").is_disabled()
    first = int(re.search(r"in (\d+) s", alert.inner_text()).group(1))
    assert 0 < first <= 60
    # The countdown moves by itself.
    # (A locator wait: the page's policy forbids the eval behind wait_for_function.)
    lower = "|".join(str(n) for n in range(1, first))
    alert.get_by_text(re.compile(rf"Try again in ({lower}) s\.")).wait_for()
    tab.check("sign-in-locked")


def test_an_expired_sign_in_says_start_again_and_tells_the_parent(tab, svc, helper):
    page = tab.page
    fake = "mfa_token=mfa_expiredexpiredexpired&login_id=8a7c5d2e-0000-4000-8000-000000000000"
    page.goto(f"{helper}/embed?src={svc.base}/ui/%23{fake.replace('&', '%26')}")
    frame = page.frame_locator("#mfa")
    frame.get_by_role("heading", name="This sign-in has expired").wait_for()
    page.wait_for_function("window.messages.length > 0")
    messages = page.evaluate("window.messages")
    assert messages == [{"origin": svc.base, "data": {"type": "mspbots-mfa:error", "code": "expired"}}], messages
    tab.open(fake)
    page.get_by_role("heading", name="This sign-in has expired").wait_for()
    tab.check("sign-in-expired")


def test_a_recovery_code_signs_in(tab, svc, helper):
    _, u, _ = sign_in_page(tab, svc, "t-recover", "rescued", helper)
    page = tab.page
    page.get_by_role("button", name="Use a recovery code").click()
    page.get_by_role("heading", name="Enter a recovery code").wait_for()
    tab.check("sign-in-recovery-code")
    page.get_by_label("Recovery code").fill(u["recovery_codes"][0])
    page.get_by_role("button", name="Verify").click()
    values = returned(page, helper)
    me = svc.call("GET", "/v1/me", values["access_token"], 200).json()
    assert me["mfa"]["recovery_codes_remaining"] == 9


def test_codes_keep_failing_leads_to_the_resync(tab, svc):
    _, u, _ = sign_in_page(tab, svc, "t-resync", "drifty")
    page = tab.page
    page.get_by_role("button", name="Codes keep failing?").click()
    page.get_by_role("heading", name="Resynchronise your authenticator app").wait_for()
    tab.check("sign-in-resync")
    # A phone four minutes fast: two consecutive codes of its clock.
    t = time.time() + 240
    page.get_by_label("First code").fill(u["totp"].at(t))
    page.get_by_label("Next code (wait until the app shows a new one)").fill(u["totp"].at(t + 30))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("heading", name="You are signed in").wait_for()
    tab.check("signed-in")


def test_set_up_later_inside_the_grace_period(tab, svc, helper):
    svc.enforced_tenant("t-grace", enrollment_grace_days=7)
    login = svc.start_login("t-grace", "busy")
    assert login["status"] == "enrollment_required" and login.get("grace_ends_at")
    page = tab.page
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("heading", name="Welcome to MSPbots").wait_for()
    seen = svc.call("GET", f"/v1/logins/{login['login_id']}", login["mfa_token"], 200).json()
    assert seen.get("grace_ends_at"), seen
    page.get_by_text("7 days left to set up 2FA.").wait_for()
    tab.check("welcome-grace")
    page.get_by_role("button", name="Set up later").click()
    values = returned(page, helper)
    assert values["status"] == "authenticated"


def test_remember_this_browser(tab, svc, helper):
    _, u, login = sign_in_page(tab, svc, "t-remember", "homebody", helper, remember_device_days=30)
    page = tab.page
    seen = svc.call("GET", f"/v1/logins/{login['login_id']}", login["mfa_token"], 200).json()
    assert seen.get("remember_device_days") == 30, seen
    page.get_by_label("Remember this browser for 30 days").check()
    tab.check("sign-in-remember")
    page.get_by_label("6-digit code").fill(u["totp"].now())
    page.get_by_role("button", name="Verify").click()
    values = returned(page, helper)
    assert values["device_token"].startswith("dv_") and values["device_expires_at"]
    again = svc.start_login("t-remember", "homebody", device_token=values["device_token"])
    assert again["status"] == "authenticated" and again["mfa"] == "remembered"
