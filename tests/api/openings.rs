//! The openings many tests share (a user with an app enrolled, a sign-in at each of its
//! states, a policy change that must be accepted), so that each test starts where its
//! story does. Everything here goes through the HTTP API and asserts what it relies on.

use serde_json::{json, Value};

use crate::helpers::{code_at, items, login_of, Enrolled, Resp, TestApp, User};

impl TestApp {
    /// A new app with `id` of `tenant`, who has enrolled an app through `/v1/me`.
    pub async fn with_enrolled(tenant: &str, id: &str) -> (Self, User, Enrolled) {
        let app = Self::spawn().await;
        let (u, e) = app.enrolled(tenant, id).await;
        (app, u, e)
    }

    /// A new app whose `tenant` enforces 2FA, and `id`'s first sign-in there, which must
    /// enroll a factor: `(app, user, (login_id, mfa_token))`.
    pub async fn with_enrollment_login(tenant: &str, id: &str) -> (Self, User, (String, String)) {
        let (app, _, _) = Self::with_enforced_tenant(tenant).await;
        let u = User::new(tenant, id);
        let login = app.enrollment_login(&u).await;
        (app, u, login)
    }

    /// A new app whose `tenant` has the policy `body`, set by its admin (which must be
    /// accepted): the app and the answer.
    pub async fn with_policy(tenant: &str, body: Value) -> (Self, Resp) {
        let (app, _, admin) = Self::with_admin(tenant).await;
        let r = app.set_policy(tenant, &admin.access_token, body).await;
        (app, r)
    }

    /// `id` of `tenant`, who has enrolled an app through `/v1/me` (a fresh `otp` token).
    pub async fn enrolled(&self, tenant: &str, id: &str) -> (User, Enrolled) {
        let u = User::new(tenant, id);
        let e = self.enroll_via_me(&u).await;
        (u, e)
    }

    /// Starts a sign-in that must enroll a factor first: `(login_id, mfa_token)`.
    pub async fn enrollment_login(&self, u: &User) -> (String, String) {
        self.login_in_state(u, "enrollment_required").await
    }

    /// Starts a sign-in and asserts its `status` (`201`): `(login_id, mfa_token)`.
    pub async fn login_in_state(&self, u: &User, status: &str) -> (String, String) {
        let started = self.start_login(u).await;
        assert_eq!(started.status, 201, "{}", started.text);
        assert_eq!(started.body["status"], status, "{}", started.text);
        login_of(&started)
    }

    /// A sign-in the policy lets through on the password alone: the start's answer, whose
    /// `status` is asserted to be `authenticated`.
    pub async fn password_login(&self, u: &User) -> Resp {
        let started = self.start_login(u).await;
        assert_eq!(started.body["status"], "authenticated", "{}", started.text);
        started
    }

    /// The access token of a sign-in on the password alone ([`Self::password_login`]).
    pub async fn password_token(&self, u: &User) -> String {
        let started = self.password_login(u).await;
        started.body["access_token"].as_str().unwrap().to_owned()
    }

    /// A sign-in with a recovery code: the answer (asserted `200`).
    pub async fn recovery_sign_in(&self, u: &User, code: &str) -> Resp {
        let (login_id, token) = self.challenge(u).await;
        let r = self.recover_code(&login_id, &token, code).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// Signs in with a code (one step later, so the code is fresh) asking to remember the
    /// browser, optionally under `name`: the answer (asserted `200`).
    pub async fn verify_remembering(&self, u: &User, secret: &str, name: Option<&str>) -> Resp {
        self.advance(30);
        let (login_id, token) = self.challenge(u).await;
        let mut body = json!({"code": code_at(secret, self.now()), "remember_device": true});
        if let Some(n) = name {
            body["device_name"] = json!(n);
        }
        let r = self.login_post(&login_id, &token, "verify", body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// A remembered browser's device token ([`Self::verify_remembering`]; asserts one was
    /// issued).
    pub async fn remember_browser(&self, u: &User, secret: &str) -> String {
        let r = self.verify_remembering(u, secret, None).await;
        r.body["device_token"]
            .as_str()
            .unwrap_or_else(|| panic!("a device token: {}", r.text))
            .to_owned()
    }

    /// `GET /v1/logins/{login_id}` with the login's mfa token.
    pub async fn login_view(&self, login_id: &str, token: &str) -> Resp {
        self.get(&format!("/v1/logins/{login_id}"), Some(token))
            .await
    }

    /// A policy change by the tenant's admin that must be accepted (`200`): the answer.
    pub async fn set_policy(&self, tenant: &str, admin_token: &str, body: Value) -> Resp {
        let r = self.enforce(tenant, admin_token, body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// `POST /v1/me/factors` with `body`, as the holder of `token`.
    pub async fn add_factor(&self, token: &str, body: Value) -> Resp {
        self.post("/v1/me/factors", Some(token), body).await
    }

    /// A user's factors as the tenant's admin lists them (asserted `200`).
    pub async fn user_factors(&self, tenant: &str, user: &str, token: &str) -> Vec<Value> {
        let path = format!("/v1/tenants/{tenant}/users/{user}/factors");
        items(&self.get(&path, Some(token)).await)
    }

    /// `POST /v1/me/factors/{id}/confirm` with `body` (the code or the credential).
    pub async fn confirm_factor(&self, token: &str, id: &str, body: Value) -> Resp {
        let path = format!("/v1/me/factors/{id}/confirm");
        self.post(&path, Some(token), body).await
    }

    /// How many `totp_factors` rows a user id has (every tenant, every status).
    pub async fn factor_rows(&self, user: &str) -> i64 {
        self.sql_count(&format!(
            "SELECT count(*) AS n FROM totp_factors WHERE user_id = '{user}'"
        ))
        .await
    }

    /// `GET path` that must answer `200`: the body.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let r = self.get(path, Some(token)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }
}
