"""Passkeys (docs/API.md §16) in Chromium, through its virtual authenticator: "Setup MFA" with
a passkey instead of an app, a later sign-in with it, the Security page, and a passkey that is
not accepted."""

from __future__ import annotations

from flows import Authenticator, amr, confirm_if_asked, fragment, p256_private_key, returned, set_up_passkey

SENTENCE = "Your passkey or security key was not accepted. Try again, or use another way to sign in."


def test_new_user_sets_up_a_passkey_then_signs_in_with_it(tab, svc, helper):
    u = set_up_passkey(tab, svc, helper, "t-pk", "keyholder", shot="passkey-recovery-codes")
    page = tab.page
    assert len(u["key"].credentials()) == 1
    assert len(u["recovery_codes"]) == 10
    # A virtual authenticator is not backup-eligible: a hardware key (RFC 8176 hwk).
    assert amr(u["access_token"]) == ["pwd", "hwk", "mfa"]
    me = svc.call("GET", "/v1/me", u["access_token"], 200).json()
    assert me["user_id"] == "keyholder" and me["mfa"]["enrolled"] is True
    factors = svc.call("GET", "/v1/me/factors", u["access_token"], 200).json()["items"]
    assert [(f["type"], f["status"], f["backup_eligible"]) for f in factors] == [("webauthn", "active", False)]

    # A later sign-in: the user has only a passkey, so the page asks for it, not for a code.
    later = svc.start_login("t-pk", "keyholder")
    assert later["status"] == "verification_required" and later["factor_types"] == ["webauthn"]
    tab.open(fragment(later, helper + "/"))
    page.get_by_role("heading", name="Sign in with your passkey").wait_for()
    assert page.get_by_label("6-digit code").count() == 0
    tab.check("sign-in-passkey")
    page.get_by_role("button", name="Use a passkey").click()
    values = returned(page, helper)
    assert amr(values["access_token"]) == ["pwd", "hwk", "mfa"]
    assert later["mfa_token"] not in svc.server_log()


def test_a_passkey_that_is_not_accepted_is_explained(tab, svc, helper):
    key = set_up_passkey(tab, svc, helper, "t-pk-bad", "unlucky")["key"]
    [cred] = key.credentials()
    login = svc.start_login("t-pk-bad", "unlucky")
    page = tab.page
    tab.open(fragment(login, helper + "/"))
    use = page.get_by_role("button", name="Use a passkey")

    # The passkey was deleted from the device: the browser refuses, and the page says so.
    key.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": key.id})
    use.click()
    alert = page.get_by_role("alert")
    alert.get_by_text(SENTENCE).wait_for()
    left = svc.call("GET", f"/v1/logins/{login['login_id']}", login["mfa_token"], 200).json()["attempts_left"]

    # A key that answers for the same credential id with another private key (a clone): the
    # service refuses the signature (invalid_credential, counted as a wrong code).
    forged = {**cred, "privateKey": p256_private_key(), "signCount": cred["signCount"] + 1}
    key.cdp.send("WebAuthn.addCredential", {"authenticatorId": key.id, "credential": forged})
    with page.expect_response(lambda r: r.url.endswith("/webauthn") and r.request.method == "POST") as answer:
        use.click()
    assert answer.value.status == 400 and answer.value.json()["code"] == "invalid_credential"
    alert.get_by_text(SENTENCE).wait_for()
    tab.check("sign-in-passkey-not-accepted")
    now = svc.call("GET", f"/v1/logins/{login['login_id']}", login["mfa_token"], 200).json()["attempts_left"]
    assert now == left - 1


def test_security_page_adds_a_passkey_beside_an_app_and_removes_it(tab, svc):
    svc.enforced_tenant("t-pk-sec")
    u = svc.enrolled_user("t-pk-sec", "both")
    page = tab.page
    key = Authenticator(page)
    tab.open(f"access_token={u['access_token']}&view=security")
    page.get_by_role("heading", name="Security", exact=True).wait_for()
    page.get_by_role("button", name="Add a passkey").click()
    # "Confirm it's you" with the app's code, then the browser creates the passkey.
    confirm_if_asked(page, u["totp"], set())
    page.get_by_text("Passkey added.").wait_for()
    page.get_by_role("cell", name="Passkey or security key").wait_for()
    assert len(key.credentials()) == 1
    factors = svc.call("GET", "/v1/me/factors", u["access_token"], 200).json()["items"]
    assert sorted((f["type"], f["name"], f["status"]) for f in factors) == [
        ("totp", "Authenticator", "active"), ("webauthn", "Passkey", "active")]
    tab.check("security-passkey")

    # Remove it: the confirmation above still covers this.
    page.get_by_role("button", name="Remove Passkey", exact=True).click()
    page.get_by_text("Passkey was removed.").wait_for()
    factors = svc.call("GET", "/v1/me/factors", u["access_token"], 200).json()["items"]
    assert [f["type"] for f in factors] == ["totp"]
    assert page.get_by_role("cell", name="Passkey or security key").count() == 0
