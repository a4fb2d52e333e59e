"""What must not happen: the mfa token leaking, framing by a stranger, a mouse being needed."""

from __future__ import annotations

from flows import fragment, qr_secret, returned


def test_framing_by_an_origin_not_allowed_is_refused(tab, svc, helper):
    page = tab.page
    stranger = helper.replace("localhost", "127.0.0.1")  # another origin, same server
    refused = []
    page.on("console", lambda m: "frame-ancestors" in m.text and refused.append(m.text))
    page.goto(f"{stranger}/embed?src={svc.base}/ui/")
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#mfa")
    assert frame.get_by_role("heading", name="MSPbots two-factor authentication").count() == 0
    assert refused, "Chromium did not report the frame-ancestors refusal"
    # It is the policy that refused it: the console line is the expected outcome here.
    tab.console[:] = [c for c in tab.console if "frame-ancestors" not in c]
    page.goto(f"{helper}/embed?src={svc.base}/ui/")
    frame.get_by_role("heading", name="MSPbots two-factor authentication").wait_for()


def test_a_framed_sign_in_posts_the_result_to_the_parent_only(tab, svc, helper):
    svc.enforced_tenant("t-frame")
    u = svc.enrolled_user("t-frame", "framed")
    login = svc.start_login("t-frame", "framed")
    page = tab.page
    src = f"{svc.base}/ui/#{fragment(login, None)}".replace("#", "%23").replace("&", "%26")
    page.goto(f"{helper}/embed?src={src}")
    frame = page.frame_locator("#mfa")
    frame.get_by_label("6-digit code").fill(u["totp"].now())
    frame.get_by_role("button", name="Verify").click()
    page.wait_for_function("window.messages.length > 0")
    [m] = page.evaluate("window.messages")
    assert m["origin"] == svc.base and m["data"]["type"] == "mspbots-mfa:done"
    assert svc.call("GET", "/v1/me", m["data"]["access_token"], 200).json()["user_id"] == "framed"


def test_enrollment_and_sign_in_with_the_keyboard_alone(tab, svc, helper):
    svc.enforced_tenant("t-keys")
    login = svc.start_login("t-keys", "typist")
    page = tab.page
    kb = page.keyboard
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("heading", name="Welcome to MSPbots").wait_for()

    def tab_to(name: str) -> None:
        for _ in range(20):
            kb.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == name:
                return
        raise AssertionError(f"Tab never reached {name}")

    tab_to("Setup MFA")
    kb.press("Enter")
    page.locator("img.qr").wait_for()
    totp = qr_secret(page)
    tab_to("Next")
    kb.press("Enter")
    page.get_by_label("Enter the 6-digit code from your authenticator app").wait_for()
    assert page.evaluate("document.activeElement.getAttribute('autocomplete')") == "one-time-code"
    kb.type(totp.now())
    kb.press("Enter")
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    for _ in range(20):
        kb.press("Tab")
        if page.evaluate("document.activeElement.type") == "checkbox":
            break
    kb.press("Space")
    tab_to("Continue")
    kb.press("Enter")
    returned(page, helper)
    used = totp.now()

    # A later sign-in, keyboard only: the code field has focus when the page opens.
    login = svc.start_login("t-keys", "typist")
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("heading", name="Enter the 2FA code from your authenticator app").wait_for()
    from flows import wait_next_step
    kb.type(wait_next_step(totp, used))
    kb.press("Enter")
    returned(page, helper)


def test_the_mfa_token_never_leaks(tab, svc, helper):
    svc.enforced_tenant("t-leak")
    u = svc.enrolled_user("t-leak", "quiet")
    login = svc.start_login("t-leak", "quiet")
    page = tab.page
    tab.open(fragment(login, helper + "/"))
    page.get_by_role("heading", name="Enter the 2FA code from your authenticator app").wait_for()
    token = login["mfa_token"]
    assert token not in page.url
    assert page.evaluate("history.length") >= 1 and token not in page.evaluate("location.href")
    assert page.evaluate("JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage))") == "{}{}"
    page.get_by_label("6-digit code").fill(u["totp"].now())
    page.get_by_role("button", name="Verify").click()
    returned(page, helper)
    for r in tab.requests:
        assert token not in r["url"], r["url"]
        assert token not in r["headers"].get("referer", ""), r
        assert "referer" not in r["headers"] or "mfa_" not in r["headers"]["referer"]
    assert token not in svc.server_log()
