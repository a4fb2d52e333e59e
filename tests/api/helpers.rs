#![allow(dead_code)] // shared by test modules; not every module uses every helper
//! `TestApp`: the real application on port 0, on its own database cloned from a migrated
//! template, with a clock the test moves. Codes are computed from the secret the API
//! returned, the way an authenticator app does (HMAC-SHA1 written here, not the service's code).

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use mspbots_mfa::config::Settings;
use mspbots_mfa::domain::clock::FixedClock;
use mspbots_mfa::startup::Application;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

pub const PG: &str = "postgres://postgres@127.0.0.1:5432";

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The migrated template database, built once per migration set (advisory-locked, so
/// parallel test processes build it once).
///
/// It is a cache, kept between runs on purpose: `mfa_test_tpl_<hash of migrations/*/up.sql>`,
/// so a schema change makes a new one. Its comment records when a run last used it; at
/// start, templates of other hashes unused for a day are dropped (another checkout may be
/// testing another schema on the same server right now, so a recent one is left alone).
async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let mut hasher = Sha256::new();
            let mut dirs: Vec<_> =
                std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                    .expect("migrations dir")
                    .map(|e| e.expect("entry").path())
                    .collect();
            dirs.sort();
            for d in dirs {
                hasher.update(std::fs::read(d.join("up.sql")).unwrap_or_default());
            }
            // `migrate` applies these after the migrations.
            for (_, file) in mspbots_mfa::db::functions::FILES {
                hasher.update(file);
            }
            let hash = hex(&hasher.finalize()[..6]);
            let name = format!("mfa_test_tpl_{hash}");
            let mut admin = AsyncPgConnection::establish(&format!("{PG}/postgres"))
                .await
                .expect("postgres is running");
            admin
                .batch_execute("SELECT pg_advisory_lock(4242)")
                .await
                .expect("lock");
            let ready: Vec<Ready> = diesel_async::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT datname FROM pg_database WHERE datname = $1 AND datistemplate",
                )
                .bind::<diesel::sql_types::Text, _>(&name),
                &mut admin,
            )
            .await
            .expect("query");
            if ready.is_empty() {
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                    .await
                    .expect("drop");
                let url = format!("{PG}/{name}");
                mspbots_mfa::db::create_database(&url, None)
                    .await
                    .expect("create template");
                mspbots_mfa::db::migrate(&url)
                    .await
                    .expect("migrate template");
                admin
                    .batch_execute(&format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
                    .await
                    .expect("mark");
            }
            admin
                .batch_execute(&format!(
                    "COMMENT ON DATABASE \"{name}\" IS 'mspbots-mfa test template, used {}'",
                    Utc::now().to_rfc3339()
                ))
                .await
                .expect("mark as used");
            drop_stale_templates(&mut admin, &name).await;
            admin
                .batch_execute("SELECT pg_advisory_unlock(4242)")
                .await
                .expect("unlock");
            name
        })
        .await
        .clone()
}

/// How long a template of another migration set may sit unused before a run drops it.
const STALE_TEMPLATE_HOURS: i64 = 24;

/// Drops templates of other migration sets last used over a day ago (by their comment;
/// by the database directory's age when a template predates the comment). Best effort:
/// a template someone is cloning right now refuses the drop, and stays.
pub async fn drop_stale_templates(admin: &mut AsyncPgConnection, current: &str) {
    #[derive(diesel::QueryableByName)]
    struct Stale {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let found: Result<Vec<Stale>, _> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT datname FROM ( \
               SELECT datname, COALESCE( \
                 substring(shobj_description(oid, 'pg_database') FROM 'used (.*)$')::timestamptz, \
                 (pg_stat_file('base/' || oid)).modification) AS used \
               FROM pg_database WHERE datname LIKE 'mfa\\_test\\_tpl\\_%' AND datname <> $1) t \
             WHERE used < now() - make_interval(hours => $2)",
        )
        .bind::<diesel::sql_types::Text, _>(current)
        .bind::<diesel::sql_types::Integer, _>(STALE_TEMPLATE_HOURS as i32),
        admin,
    )
    .await;
    for Stale { datname } in found.unwrap_or_default() {
        // DROP DATABASE cannot share a statement batch (an implicit transaction).
        let _ = admin
            .batch_execute(&format!("ALTER DATABASE \"{datname}\" IS_TEMPLATE false"))
            .await;
        if admin
            .batch_execute(&format!("DROP DATABASE \"{datname}\""))
            .await
            .is_err()
        {
            let _ = admin
                .batch_execute(&format!("ALTER DATABASE \"{datname}\" IS_TEMPLATE true"))
                .await;
        }
    }
}

#[derive(diesel::QueryableByName)]
#[allow(dead_code)]
struct Ready {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A fresh database cloned from the template; dropped with the guard.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// Dropped with the guard; false for a database another `TestApp` owns.
    pub owned: bool,
}

impl TestDb {
    pub async fn new() -> Self {
        let tpl = template().await;
        let name = format!("mfa_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{PG}/{name}");
        let mut tries = 0;
        loop {
            match mspbots_mfa::db::create_database(&url, Some(&tpl)).await {
                Ok(()) => break,
                // Two clones of one template at the same instant can collide; retry.
                Err(e) if tries < 20 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
                    if tries == 20 {
                        panic!("creating test database: {e:#}");
                    }
                }
                Err(e) => panic!("creating test database: {e:#}"),
            }
        }
        Self {
            name,
            url,
            owned: true,
        }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to test db")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            rt.block_on(async {
                if let Ok(mut c) = AsyncPgConnection::establish(&format!("{PG}/postgres")).await {
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub clock: FixedClock,
    pub db: TestDb,
    pub state: actix_web::web::Data<mspbots_mfa::state::AppState>,
    /// A service key for every tenant.
    pub service_key: String,
    /// `MFA_DATA_DIR` of this app: its development keys (`encryption-keys`, `hash-key`).
    pub data_dir: std::path::PathBuf,
    _dir: TempDir,
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!("mfa-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("tempdir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A time 5 s into a TOTP step, near the real time (so tokens verified by external
/// libraries against the wall clock are not expired).
pub fn start_time() -> DateTime<Utc> {
    let now = Utc::now().timestamp();
    Utc.timestamp_opt(now - now.rem_euclid(30) + 5, 0).unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_in(TestDb::new().await, configure).await
    }

    /// `production`: the keys given (made here), none of development's defaults (no
    /// WebAuthn RP ID unless `configure` sets one), then `configure`.
    pub async fn spawn_production(configure: impl FnOnce(&mut Settings)) -> Self {
        use mspbots_mfa::crypto::{hashing::HashKey, jwt, keyring::KeyRing};
        use secrecy::SecretString;
        Self::spawn_with(|s| {
            let pem = s.data_dir.join("signing.pem");
            std::fs::write(&pem, jwt::generate_pem()).unwrap();
            s.environment = mspbots_mfa::config::Environment::Production;
            s.encryption_keys = Some(SecretString::from(KeyRing::generate_spec("p1")));
            s.hash_key = Some(SecretString::from(HashKey::generate_b64()));
            s.signing_keys = vec![pem];
            configure(s);
        })
        .await
    }

    /// A second instance on an existing database (which this app does not drop);
    /// `configure` typically sets the keys the first instance used.
    pub async fn spawn_on(db_url: &str, configure: impl FnOnce(&mut Settings)) -> Self {
        let name = db_url.rsplit('/').next().unwrap_or_default().to_owned();
        let db = TestDb {
            name,
            url: db_url.to_owned(),
            owned: false,
        };
        Self::spawn_in(db, configure).await
    }

    /// Another instance on this app's database, with its keys (the same data folder), then
    /// `configure`.
    pub async fn second_instance(&self, configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = self.data_dir.clone();
        Self::spawn_on(&self.db.url, |s| {
            s.data_dir = dir;
            configure(s);
        })
        .await
    }

    /// Two instances on one database with the same keys, both configured by `configure`.
    pub async fn two_instances(configure: impl Fn(&mut Settings)) -> (Self, Self) {
        let app = Self::spawn_with(&configure).await;
        let app2 = app.second_instance(&configure).await;
        (app, app2)
    }

    async fn spawn_in(db: TestDb, configure: impl FnOnce(&mut Settings)) -> Self {
        let dir = TempDir::new();
        let mut settings = Settings::defaults();
        settings.database_url = db.url.clone();
        settings.bind = "127.0.0.1:0".into();
        settings.data_dir = dir.0.clone();
        settings.db_pool_size = 4;
        // Tests run webhook deliveries themselves, on the injected clock.
        settings.webhook_delivery = false;
        // And housekeeping (`services::housekeeping::sweep`).
        settings.housekeeping = false;
        configure(&mut settings);
        let clock = FixedClock::new(start_time());
        let app = Application::build_with_clock(settings, Arc::new(clock.clone()))
            .await
            .expect("app builds");
        let port = app.port();
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        let service_key = {
            let mut conn = db.connect().await;
            mspbots_mfa::services::service_keys::create(
                &mut conn,
                &state.keys.hash_key,
                "test",
                &[],
            )
            .await
            .expect("service key")
            .1
        };
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::new(),
            clock,
            db,
            state,
            service_key,
            data_dir: dir.0.clone(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn now(&self) -> DateTime<Utc> {
        use mspbots_mfa::domain::clock::Clock;
        self.clock.now()
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(Duration::seconds(secs));
    }

    pub async fn scoped_key(&self, tenants: &[&str]) -> String {
        let tenants: Vec<_> = tenants
            .iter()
            .map(|t| mspbots_mfa::domain::ids::TenantId::parse(t).unwrap())
            .collect();
        let mut conn = self.db.connect().await;
        mspbots_mfa::services::service_keys::create(
            &mut conn,
            &self.state.keys.hash_key,
            "scoped",
            &tenants,
        )
        .await
        .unwrap()
        .1
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut r = self.client.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        Resp::from(r.send().await.expect("request")).await
    }

    /// `DELETE path`, no body.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(reqwest::Method::DELETE, path, token, None, &[])
            .await
    }

    /// `PATCH path` with a JSON body.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(reqwest::Method::POST, path, token, Some(body), &[])
            .await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut r = self.client.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        Resp::from(r.send().await.expect("request")).await
    }

    /// `POST /v1/logins` with the all-tenant service key.
    pub async fn start_login(&self, u: &User) -> Resp {
        self.post("/v1/logins", Some(&self.service_key), u.login_body())
            .await
    }

    /// Sign-in with enrollment from start to finish; the user must be required to enroll.
    pub async fn enroll_at_login(&self, u: &User) -> Enrolled {
        let (login_id, token) = self.enrollment_login(u).await;
        let material = self.enrollment_started(&login_id, &token, "totp").await;
        let secret = material.body["secret"].as_str().unwrap().to_owned();
        let done = self
            .confirm_at_login(&login_id, &token, &code_at(&secret, self.now()))
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        Enrolled::from(secret, &done)
    }

    /// A user who has no factor enrolls voluntarily through `/v1/me` (e.g. an admin before
    /// turning 2FA on); returns the secret and the new `otp` token.
    pub async fn enroll_via_me(&self, u: &User) -> Enrolled {
        let token = self.password_token(u).await;
        self.enroll_with_token(&token).await
    }

    /// `POST /v1/me/totp-enrollment` and its confirmation with the app's code, as the
    /// holder of `token`: the secret, the new `otp` token and the recovery codes.
    pub async fn enroll_with_token(&self, token: &str) -> Enrolled {
        let material = self.me_enroll_start(token).await;
        assert_eq!(material.status, 201, "{}", material.body);
        let secret = material.body["secret"].as_str().unwrap().to_owned();
        let done = self
            .me_enroll_confirm(token, &code_at(&secret, self.now()))
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        Enrolled::from(secret, &done)
    }

    /// Signs in with a TOTP code (moving the clock one step first so the code is fresh).
    pub async fn sign_in_with_code(&self, u: &User, secret: &str) -> String {
        self.advance(30);
        let r = self.signs_in_now(u, secret).await;
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// A new sign-in that `secret`'s code of now completes: the verify's answer (`200`).
    pub async fn signs_in_now(&self, u: &User, secret: &str) -> Resp {
        let (login_id, token) = self.challenge(u).await;
        let r = self.verify_now(&login_id, &token, secret).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    /// A new app with an admin of `tenant` who has a factor (2FA not turned on).
    pub async fn with_admin(tenant: &str) -> (Self, User, Enrolled) {
        let app = Self::spawn().await;
        let (u, e) = app.admin(tenant).await;
        (app, u, e)
    }

    /// A new app whose `tenant` enforces 2FA ([`Self::enforced_tenant`]), with its admin.
    pub async fn with_enforced_tenant(tenant: &str) -> (Self, User, Enrolled) {
        let app = Self::spawn().await;
        let (u, e) = app.enforced_tenant(tenant).await;
        (app, u, e)
    }

    /// An admin of `tenant` with an active factor and a fresh `otp` token.
    pub async fn admin(&self, tenant: &str) -> (User, Enrolled) {
        let u = User::first_admin(tenant);
        let e = self.enroll_via_me(&u).await;
        (u, e)
    }

    /// `admin`, after it has turned 2FA on for the tenant: where most sign-in tests start.
    pub async fn enforced_tenant(&self, tenant: &str) -> (User, Enrolled) {
        let (u, admin) = self.admin(tenant).await;
        self.enforce(tenant, &admin.access_token, json!({"enforce_mfa": true}))
            .await
            .enforced();
        (u, admin)
    }

    /// `admin`, after it has set the tenant's policy to `body` (which must be accepted).
    pub async fn admin_with_policy(&self, tenant: &str, body: Value) -> Enrolled {
        let (_, admin) = self.admin(tenant).await;
        self.set_policy(tenant, &admin.access_token, body).await;
        admin
    }

    /// Twenty sign-ins of `u` started at once, alternately on `app` and `app2` (whose clock
    /// follows `app`'s): `(instance, login_id, mfa token)`.
    pub async fn alternating_challenges<'a>(
        &'a self,
        app2: &'a TestApp,
        u: &User,
    ) -> Vec<(&'a TestApp, String, String)> {
        app2.clock.set(self.now());
        let mut logins = vec![];
        for i in 0..20 {
            let inst = if i % 2 == 0 { self } else { app2 };
            let (id, token) = inst.challenge(u).await;
            logins.push((inst, id, token));
        }
        logins
    }

    /// Turns 2FA on for the tenant as its admin (fresh `otp` token, so no code needed).
    /// The answer must be looked at: `.enforced()` when it is expected to work.
    #[must_use = "assert the answer, e.g. with .enforced()"]
    pub async fn enforce(&self, tenant: &str, admin_token: &str, body: Value) -> Resp {
        let p = self
            .get(&format!("/v1/tenants/{tenant}/policy"), Some(admin_token))
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        let etag = p.headers.get("etag").unwrap().to_str().unwrap().to_owned();
        self.send(
            reqwest::Method::PUT,
            &format!("/v1/tenants/{tenant}/policy"),
            Some(admin_token),
            Some(body),
            &[("If-Match", &etag)],
        )
        .await
    }

    pub async fn sql_count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = self.db.connect().await;
        let r: N = diesel_async::RunQueryDsl::get_result(diesel::sql_query(sql), &mut c)
            .await
            .expect(sql);
        r.n
    }

    /// Audit event types of a tenant, oldest first.
    pub async fn audit_types(&self, tenant: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            r#type: String,
        }
        let mut c = self.db.connect().await;
        let rows: Vec<T> = diesel_async::RunQueryDsl::load(
            diesel::sql_query("SELECT type FROM audit_events WHERE tenant_id = $1 ORDER BY id")
                .bind::<diesel::sql_types::Text, _>(tenant),
            &mut c,
        )
        .await
        .unwrap();
        rows.into_iter().map(|r| r.r#type).collect()
    }
}

pub struct Enrolled {
    pub secret: String,
    pub access_token: String,
    pub recovery_codes: Vec<String>,
}

impl Enrolled {
    /// The secret and the answer of a confirmed enrollment.
    pub fn from(secret: String, done: &Resp) -> Self {
        Enrolled {
            secret,
            access_token: done.body["access_token"].as_str().unwrap().to_owned(),
            recovery_codes: strings(&done.body["recovery_codes"]),
        }
    }
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// A user as the primary login describes them.
#[derive(Clone)]
pub struct User {
    pub tenant: String,
    pub id: String,
    pub email: String,
    pub idp: String,
    pub surface: String,
    pub roles: Vec<String>,
}

impl User {
    pub fn new(tenant: &str, id: &str) -> Self {
        Self {
            tenant: tenant.into(),
            id: id.into(),
            email: format!("{id}@{tenant}.example"),
            idp: "local".into(),
            surface: "app".into(),
            roles: vec![],
        }
    }
    /// The tenant's first admin, `admin-1` (the one [`TestApp::admin`] enrolls).
    pub fn first_admin(tenant: &str) -> Self {
        Self::new(tenant, "admin-1").roles(&["admin"])
    }
    pub fn microsoft(mut self) -> Self {
        self.idp = "microsoft".into();
        self
    }
    pub fn portal(mut self) -> Self {
        self.surface = "portal".into();
        self
    }
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self
    }
    pub fn login_body(&self) -> Value {
        json!({"tenant_id": self.tenant, "user_id": self.id, "email": self.email, "display_name": "Test User",
               "identity_provider": self.idp, "roles": self.roles, "surface": self.surface})
    }
}

/// A response read whole.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// Asserts the answer of a policy change that turned 2FA on (`TestApp::enforce`).
    #[track_caller]
    pub fn enforced(&self) -> &Self {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.body["enforce_mfa"], true, "{}", self.text);
        self
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["type"], format!("urn:mspbots:mfa:{code}"));
        assert_eq!(self.body["status"], status);
        let ct = self.headers.get("content-type").unwrap().to_str().unwrap();
        assert_eq!(ct, "application/problem+json");
        assert!(self.headers.contains_key("x-request-id"));
    }
}

/// Of the answers to one code sent to many sign-ins at once: how many signed in (`200`) and
/// how many were refused as `code_reused`.
pub fn ok_and_reused(results: &[Resp]) -> (usize, usize) {
    let ok = results.iter().filter(|r| r.status == 200).count();
    let reused = results
        .iter()
        .filter(|r| r.status == 400 && r.body["code"] == "code_reused")
        .count();
    (ok, reused)
}

/// The `items` of a list answer (asserted `200`).
#[track_caller]
pub fn items(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {}", r.text))
        .clone()
}

/// The item of a list answer whose `key` is `value`.
#[track_caller]
pub fn item(r: &Resp, key: &str, value: &str) -> Value {
    items(r)
        .into_iter()
        .find(|i| i[key] == value)
        .unwrap_or_else(|| panic!("no {key} {value} in {}", r.text))
}

pub fn login_of(r: &Resp) -> (String, String) {
    (
        r.body["login_id"].as_str().unwrap().to_owned(),
        r.body["mfa_token"].as_str().unwrap().to_owned(),
    )
}

/// RFC 4648 base32 (upper case, no padding), written here so that a mistake in the
/// service's decoder cannot be shared by the tests.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .expect("base32 secret") as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits) from RFC 4226 dynamic truncation, written
/// independently of the service (no totp-lite) so a shared mistake cannot pass both.
pub fn totp_sha1(key: &[u8], unix: u64, digits: u32) -> String {
    use hmac::{Mac, SimpleHmac};
    let mut mac = SimpleHmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    mac.update(&(unix / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:0width$}", n % 10u32.pow(digits), width = digits as usize)
}

/// What an authenticator app shows at `at` for a base32 secret.
pub fn code_at(secret_b32: &str, at: DateTime<Utc>) -> String {
    totp_sha1(&base32_decode(secret_b32), at.timestamp() as u64, 6)
}

/// A six-digit code that is not valid now (nor one step either side).
pub fn wrong_code(secret_b32: &str, at: DateTime<Utc>) -> String {
    let valid: Vec<String> = (-3..=3)
        .map(|s| code_at(secret_b32, at + Duration::seconds(30 * s)))
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !valid.contains(c))
        .unwrap()
}

impl TestApp {
    /// A connection to the maintenance database (to create or drop databases).
    pub async fn db_admin(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&format!("{PG}/postgres"))
            .await
            .expect("connect")
    }
}

impl TestApp {
    /// The text column `s` of every row `sql` returns.
    pub async fn sql_strings(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct S {
            #[diesel(sql_type = diesel::sql_types::Text)]
            s: String,
        }
        let mut c = self.db.connect().await;
        let rows: Vec<S> = diesel_async::RunQueryDsl::load(diesel::sql_query(sql), &mut c)
            .await
            .expect(sql);
        rows.into_iter().map(|r| r.s).collect()
    }

    /// A request with an access token and an optional `X-MFA-Code` (step-up).
    pub async fn with_code(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        code: Option<&str>,
    ) -> Resp {
        let headers: Vec<(&str, &str)> = code.map(|c| ("X-MFA-Code", c)).into_iter().collect();
        self.send(method, path, Some(token), None, &headers).await
    }

    /// `POST /v1/me/recovery-codes` as `token`, with `code` as `X-MFA-Code` when given.
    pub async fn new_recovery_codes(&self, token: &str, code: Option<&str>) -> Resp {
        let path = "/v1/me/recovery-codes";
        self.with_code(reqwest::Method::POST, path, token, code)
            .await
    }

    /// `POST /v1/me/totp-enrollment` as `token`, with `code` as `X-MFA-Code` when given.
    pub async fn re_enroll(&self, token: &str, code: Option<&str>) -> Resp {
        let path = "/v1/me/totp-enrollment";
        self.with_code(reqwest::Method::POST, path, token, code)
            .await
    }
}

/// The claims of a JWT, read without checking anything (what a client would see).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.as_bytes())
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

// Sign-in helpers (signin.rs, replay_lockout.rs).
impl TestApp {
    /// Starts a sign-in that must ask for a code: `(login_id, mfa_token)`.
    pub async fn challenge(&self, u: &User) -> (String, String) {
        self.login_in_state(u, "verification_required").await
    }

    /// `POST /v1/logins/{login_id}/{action}` with the login's mfa token.
    pub async fn login_post(&self, login_id: &str, token: &str, action: &str, body: Value) -> Resp {
        self.post(
            &format!("/v1/logins/{login_id}/{action}"),
            Some(token),
            body,
        )
        .await
    }

    /// `POST /v1/logins/{login_id}/{kind}-enrollment` (`totp` or `webauthn`): an enrollment
    /// started at sign-in, asserted `201`.
    pub async fn enrollment_started(&self, login_id: &str, token: &str, kind: &str) -> Resp {
        let action = format!("{kind}-enrollment");
        let r = self.login_post(login_id, token, &action, json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        r
    }

    /// `POST /v1/logins/{login_id}/verify` with `code`.
    pub async fn verify_code(&self, login_id: &str, token: &str, code: &str) -> Resp {
        self.login_post(login_id, token, "verify", json!({ "code": code }))
            .await
    }

    /// `POST /v1/logins/{login_id}/verify` with the code of `secret` now (the test's clock).
    pub async fn verify_now(&self, login_id: &str, token: &str, secret: &str) -> Resp {
        self.verify_code(login_id, token, &code_at(secret, self.now()))
            .await
    }

    /// `verify` with a code `secret` does not give now: refused, `400 invalid_code` (counted).
    pub async fn verify_wrong(&self, login_id: &str, token: &str, secret: &str) {
        self.verify_code(login_id, token, &wrong_code(secret, self.now()))
            .await
            .problem(400, "invalid_code");
    }

    /// `POST /v1/logins/{login_id}/recover` with a recovery code.
    pub async fn recover_code(&self, login_id: &str, token: &str, code: &str) -> Resp {
        self.login_post(login_id, token, "recover", json!({ "recovery_code": code }))
            .await
    }

    /// `POST /v1/logins/{login_id}/totp-enrollment/confirm` with `code`.
    pub async fn confirm_at_login(&self, login_id: &str, token: &str, code: &str) -> Resp {
        let body = json!({ "code": code });
        self.login_post(login_id, token, "totp-enrollment/confirm", body)
            .await
    }

    /// `POST /v1/me/totp-enrollment` (no name) as the holder of `token`.
    pub async fn me_enroll_start(&self, token: &str) -> Resp {
        self.post("/v1/me/totp-enrollment", Some(token), json!({}))
            .await
    }

    /// `POST /v1/me/totp-enrollment/confirm` with `code`.
    pub async fn me_enroll_confirm(&self, token: &str, code: &str) -> Resp {
        let body = json!({ "code": code });
        self.post("/v1/me/totp-enrollment/confirm", Some(token), body)
            .await
    }

    /// `attempts_left` of a live login (asserts the token still works).
    pub async fn attempts_left(&self, login_id: &str, token: &str) -> i64 {
        let r = self.login_view(login_id, token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["attempts_left"].as_i64().expect("attempts_left")
    }

    /// The user's consecutive wrong codes as stored (the lockout counter).
    pub async fn user_failures(&self, tenant: &str, user: &str) -> i64 {
        self.sql_count(&format!(
            "SELECT failed_attempts::bigint AS n FROM users WHERE tenant_id = '{tenant}' AND user_id = '{user}'"
        ))
        .await
    }

    /// How many audit events of this type the tenant has.
    pub async fn audit_count(&self, tenant: &str, kind: &str) -> usize {
        self.audit_types(tenant)
            .await
            .iter()
            .filter(|t| *t == kind)
            .count()
    }
}

/// The `Retry-After` of a response, in seconds.
#[track_caller]
pub fn retry_after(r: &Resp) -> u64 {
    r.headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}
