"""Settings > System > Security beyond the switch: the users listing with its filters,
unlock and reset, and the audit trail."""

from __future__ import annotations

from playwright.sync_api import expect

from flows import confirm_if_asked


def test_admin_filters_users_unlocks_one_and_resets_another(tab, svc):
    admin = svc.enforced_tenant("t-users")
    svc.enrolled_user("t-users", "alice")
    svc.enrolled_user("t-users", "bob")
    locked = svc.start_login("t-users", "bob")
    for _ in range(5):
        svc.call("POST", f"/v1/logins/{locked['login_id']}/verify", locked["mfa_token"], json={"code": "000000"})
    svc.start_login("t-users", "carol")  # asked to enroll, has not yet
    page = tab.page
    tab.open(f"access_token={admin['access_token']}&view=admin")
    page.get_by_role("heading", name="Users").wait_for()
    assert page.get_by_role("cell", name="carol@example.com", exact=True).count() == 1

    page.get_by_label("Show", exact=True).select_option("not_enrolled")
    # Waits for the filtered listing (carol was already on the unfiltered one).
    expect(page.get_by_role("cell", name="alice@example.com", exact=True)).to_have_count(0)
    page.get_by_role("cell", name="carol@example.com", exact=True).wait_for()
    page.get_by_label("Show", exact=True).select_option("")
    page.get_by_role("cell", name="alice@example.com", exact=True).wait_for()

    used: set[str] = set()
    page.get_by_role("button", name="Unlock for bob@example.com").click()
    confirm_if_asked(page, admin["totp"], used)
    page.get_by_text("bob@example.com was unlocked.").wait_for()
    assert page.get_by_role("button", name="Unlock for bob@example.com").count() == 0

    page.get_by_role("button", name="Reset 2FA for alice@example.com").click()
    confirm_if_asked(page, admin["totp"], used)
    page.get_by_text("2FA of alice@example.com was reset.").wait_for()
    users = svc.call("GET", "/v1/tenants/t-users/users?mfa=enrolled", admin["access_token"], 200).json()["items"]
    assert sorted(u["user_id"] for u in users) == ["bob", "t-users-admin"]
    page.locator(".audit").get_by_text("user.unlocked").wait_for()
    tab.check("admin-users")


def test_admin_loads_the_next_pages_of_users_and_of_the_audit_trail(tab, svc):
    admin = svc.enforced_tenant("t-many")
    for i in range(55):
        svc.start_login("t-many", f"user{i:02}")  # asked to enroll: listed, and audited
    page = tab.page
    tab.open(f"access_token={admin['access_token']}&view=admin")
    page.get_by_role("heading", name="Users").wait_for()
    rows = page.get_by_role("region", name="Users and their 2FA").locator("tbody tr")
    assert rows.count() == 50
    page.get_by_role("button", name="Load more users").click()
    page.get_by_text("56 users shown.").wait_for()
    emails = rows.locator("td:first-child").all_inner_texts()
    assert len(emails) == 56 and len(set(emails)) == 56
    # The last page reached: no more button, and the keyboard stays where the list ends.
    assert page.get_by_role("button", name="Load more users").count() == 0
    assert page.evaluate("document.activeElement.textContent") == "56 users shown."

    events = page.locator(".audit li")
    assert events.count() == 20
    page.get_by_role("button", name="Load more events").click()
    page.get_by_text("40 events shown, more to load.").wait_for()
    assert events.count() == 40
    tab.axe("admin-load-more")
