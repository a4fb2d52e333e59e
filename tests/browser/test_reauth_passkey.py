""""Confirm it's you" (docs/API.md §17) for someone whose only factor is a passkey: the dialog
offers the passkey first, Chromium's virtual authenticator answers, and the fresh token it
gets carries the sensitive action; a refused passkey is explained and can be tried again."""

from __future__ import annotations

from playwright.sync_api import expect

from flows import Authenticator, amr, p256_private_key, set_up_passkey

SENTENCE = "Your passkey or security key was not accepted. Try again, or use another way to sign in."
REAUTH = "/v1/me/reauthenticate"


def is_reauth(r) -> bool:
    return r.url.endswith(REAUTH) and r.request.method == "POST"


def passkey_first(tab, name: str):
    """The dialog is open and asks for the passkey, not for a code; its passkey button."""
    dialog = tab.page.get_by_role("dialog", name="Confirm it's you")
    dialog.wait_for()
    dialog.get_by_text("Use your passkey or security key to continue.").wait_for()
    expect(dialog.get_by_label("6-digit code from your authenticator app")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Confirm")).to_be_hidden()
    use = dialog.get_by_role("button", name="Use a passkey")
    expect(use).to_be_focused()
    tab.axe(name)
    return dialog, use


def sent_with(tab, path: str) -> str:
    """The bearer token of the last request the page sent to path."""
    [*_, last] = [r for r in tab.requests if r["url"].endswith(path)]
    return last["headers"]["authorization"].removeprefix("Bearer ")


def test_passkey_only_user_confirms_with_the_passkey_and_makes_new_recovery_codes(tab, svc, helper):
    u = set_up_passkey(tab, svc, helper, "t-re-pk", "keyonly")
    page = tab.page
    tab.open(f"access_token={u['access_token']}&view=security")
    page.get_by_role("heading", name="Security", exact=True).wait_for()
    page.get_by_role("button", name="Make new recovery codes").click()
    dialog, use = passkey_first(tab, "confirm-identity-passkey")
    tab.shot("confirm-identity-passkey")
    with page.expect_response(is_reauth) as answer:
        use.click()
    assert answer.value.status == 200
    fresh = answer.value.json()["access_token"]
    assert "hwk" in amr(fresh)
    page.get_by_role("heading", name="New recovery codes").wait_for()
    expect(dialog).to_have_count(0)
    codes = page.locator(".codes li").all_inner_texts()
    assert len(codes) == 10 and not set(codes) & set(u["recovery_codes"])
    # The action went with the fresh token, and took effect: an old code is refused, a new one works.
    assert sent_with(tab, "/v1/me/recovery-codes") == fresh
    svc.call("POST", REAUTH, u["access_token"], 400, json={"recovery_code": u["recovery_codes"][0]})
    svc.call("POST", REAUTH, u["access_token"], 200, json={"recovery_code": codes[0]})


def test_passkey_only_admin_turns_on_two_factor_authentication(tab, svc, helper):
    u = set_up_passkey(tab, svc, helper, "t-re-admin", "keyboss", ["admin"])
    svc.set_policy("t-re-admin", u["admin"], {"enforce_mfa": False})
    page = tab.page
    tab.open(f"access_token={u['access_token']}&view=admin")
    switch = page.get_by_role("switch", name="2-factor Authentication")
    assert switch.get_attribute("aria-checked") == "false"
    switch.click()
    _, use = passkey_first(tab, "confirm-identity-passkey-admin")
    with page.expect_response(is_reauth) as answer:
        use.click()
    assert answer.value.status == 200
    fresh = answer.value.json()["access_token"]
    assert "hwk" in amr(fresh)
    page.get_by_text("2-factor Authentication is on.").wait_for()
    assert page.get_by_role("switch", name="2-factor Authentication").get_attribute("aria-checked") == "true"
    assert sent_with(tab, "/v1/tenants/t-re-admin/policy") == fresh
    assert svc.call("GET", "/v1/tenants/t-re-admin/policy", u["access_token"], 200).json()["enforce_mfa"] is True


def test_a_refused_passkey_in_confirm_its_you_is_explained_and_can_be_tried_again(tab, svc, helper):
    u = set_up_passkey(tab, svc, helper, "t-re-bad", "keyless")
    key = u["key"]
    [cred] = key.credentials()
    page = tab.page
    tab.open(f"access_token={u['access_token']}&view=security")
    page.get_by_role("button", name="Add an authenticator app").click()
    dialog, use = passkey_first(tab, "confirm-identity-passkey-before")
    alert = dialog.get_by_role("alert")

    # The passkey was deleted from the device: the browser refuses, the dialog says so and stays.
    key.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": key.id})
    use.click()
    alert.get_by_text(SENTENCE).wait_for()
    expect(use).to_be_enabled()

    # A clone (same credential id, another private key): the service refuses the signature.
    forged = {**cred, "privateKey": p256_private_key(), "signCount": cred["signCount"] + 1}
    key.cdp.send("WebAuthn.addCredential", {"authenticatorId": key.id, "credential": forged})
    with page.expect_response(is_reauth) as answer:
        use.click()
    assert answer.value.status == 400 and answer.value.json()["code"] == "invalid_credential"
    alert.get_by_text(SENTENCE).wait_for()
    expect(use).to_be_enabled()
    tab.check("confirm-identity-passkey-not-accepted")

    # The real passkey back on the device: the same dialog now lets the user through.
    key.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": key.id})
    key.cdp.send("WebAuthn.addCredential", {"authenticatorId": key.id, "credential": {**cred, "signCount": cred["signCount"] + 2}})
    with page.expect_response(is_reauth) as answer:
        use.click()
    assert answer.value.status == 200
    page.get_by_role("heading", name="Add an authenticator app").wait_for()
    factors = svc.call("GET", "/v1/me/factors", u["access_token"], 200).json()["items"]
    assert sorted((f["type"], f["status"]) for f in factors) == [("totp", "pending"), ("webauthn", "active")]


def test_a_first_passkey_needs_no_confirmation(tab, svc):
    # docs/API.md §16: step-up only when the user already has an active factor.
    login = svc.start_login("t-re-first", "newcomer")
    assert login["status"] == "authenticated"
    page = tab.page
    key = Authenticator(page)
    tab.open(f"access_token={login['access_token']}&view=security")
    page.get_by_text("You have no authenticator yet.").wait_for()
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_role("heading", name="Passkey added").wait_for()
    assert page.get_by_role("dialog", name="Confirm it's you").count() == 0
    assert len(key.credentials()) == 1 and len(page.locator(".codes li").all_inner_texts()) == 10
    factors = svc.call("GET", "/v1/me/factors", login["access_token"], 200).json()["items"]
    assert [(f["type"], f["status"]) for f in factors] == [("webauthn", "active")]
