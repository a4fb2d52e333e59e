//! The typed schema and the database agree, and the sign-in path's statements reach their
//! rows through whole unique keys whatever the planner knows (no statistics, generic plans).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::sql_types::{Bool, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use mspbots_mfa::db;
use mspbots_mfa::domain::ids::{
    FactorStatus, IdentityProvider, LoginId, LoginStatus, Surface, TenantId, UserId,
};
use mspbots_mfa::domain::lockout::LockoutState;

use crate::helpers::TestDb;

/// `table (pk, …) { column -> Type, … }` blocks of `src/db/schema.rs`, as
/// `table → (primary key, column → type)`.
type Tables = BTreeMap<String, (Vec<String>, BTreeMap<String, String>)>;

fn declared_tables() -> Tables {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/schema.rs"))
        .expect("schema.rs");
    let mut tables = Tables::new();
    let mut current: Option<String> = None;
    let mut sql_name: Option<String> = None;
    for line in src.lines().map(str::trim) {
        if let Some(rest) = line.strip_suffix('{').map(str::trim) {
            if let Some((name, pk)) = rest.split_once('(') {
                let pk = pk
                    .trim_end_matches(')')
                    .split(',')
                    .map(|c| c.trim().to_owned());
                let name = name.trim().to_owned();
                tables.insert(name.clone(), (pk.collect(), BTreeMap::new()));
                current = Some(name);
            }
            continue;
        }
        if line.starts_with('}') {
            current = None;
            continue;
        }
        if let Some(n) = line.strip_prefix("#[sql_name = \"") {
            sql_name = Some(n.trim_end_matches("\"]").to_owned());
            continue;
        }
        if let (Some(t), Some((col, ty))) = (&current, line.split_once("->")) {
            let col = sql_name.take().unwrap_or_else(|| col.trim().to_owned());
            let ty = ty.trim().trim_end_matches(',').to_owned();
            tables.get_mut(t).unwrap().1.insert(col, ty);
        }
    }
    tables
}

/// The Diesel type a catalog column must be declared with.
fn diesel_type(udt: &str, nullable: bool) -> String {
    let base = match udt {
        "text" => "Text",
        "bool" => "Bool",
        "int4" => "Int4",
        "int8" => "Int8",
        "timestamptz" => "Timestamptz",
        "uuid" => "Uuid",
        "bytea" => "Bytea",
        "jsonb" => "Jsonb",
        "_text" => "Array<Text>",
        other => panic!("no Diesel type known for {other}"),
    };
    if nullable {
        format!("Nullable<{base}>")
    } else {
        base.to_owned()
    }
}

#[derive(QueryableByName)]
struct CatalogColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
    #[diesel(sql_type = Bool)]
    in_pk: bool,
}

#[tokio::test]
async fn schema_rs_matches_the_migrated_catalog() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let cols: Vec<CatalogColumn> = diesel::sql_query(
        "SELECT c.table_name::text, c.column_name::text, c.udt_name::text, \
           c.is_nullable = 'YES' AS nullable, \
           EXISTS (SELECT 1 FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) \
             WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_name = c.table_name \
               AND k.column_name = c.column_name) AS in_pk \
         FROM information_schema.columns c \
         WHERE c.table_schema = 'public' AND c.table_name <> '__diesel_schema_migrations' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let mut catalog = Tables::new();
    for c in cols {
        let t = catalog.entry(c.table_name).or_default();
        if c.in_pk {
            t.0.push(c.column_name.clone());
        }
        t.1.insert(c.column_name, diesel_type(&c.udt_name, c.nullable));
    }
    let mut declared = declared_tables();
    // Key order in schema.rs is the key's order; compare as sets.
    for t in declared.values_mut().chain(catalog.values_mut()) {
        t.0.sort();
    }
    assert_eq!(declared.len(), 12, "schema.rs was parsed: {declared:?}");
    assert_eq!(
        declared, catalog,
        "src/db/schema.rs differs from the migrations"
    );
}

/// `src/db/functions/*.sql`, by file name without `.sql`.
fn function_files() -> BTreeMap<String, String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/db/functions");
    std::fs::read_dir(dir)
        .expect("src/db/functions")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.strip_suffix(".sql")?.to_owned();
            Some((name, std::fs::read_to_string(&p).expect("read")))
        })
        .collect()
}

#[derive(QueryableByName)]
struct CatalogFunction {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    arguments: String,
    #[diesel(sql_type = Text)]
    result: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

#[derive(QueryableByName)]
struct CatalogTrigger {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    function: String,
    #[diesel(sql_type = Text)]
    definition: String,
}

/// How the database's functions and triggers differ from `src/db/functions`: every function
/// of schema `public` not from an extension has a file whose definition is the catalog's
/// (signature, return type, body, and its triggers'), and every file's function exists.
async fn function_differences(conn: &mut diesel_async::AsyncPgConnection) -> Vec<String> {
    let files = function_files();
    let functions: Vec<CatalogFunction> = diesel::sql_query(
        "SELECT p.proname::text AS name, pg_get_function_identity_arguments(p.oid) AS arguments, \
                pg_get_function_result(p.oid) AS result, p.prosrc AS body, \
                pg_get_functiondef(p.oid) AS definition \
           FROM pg_proc p \
          WHERE p.pronamespace = 'public'::regnamespace \
            AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                               AND d.objid = p.oid AND d.deptype = 'e') \
          ORDER BY 1, 2",
    )
    .load(conn)
    .await
    .unwrap();
    let triggers: Vec<CatalogTrigger> = diesel::sql_query(
        "SELECT t.tgname::text AS name, p.oid::regprocedure::text AS function, \
                pg_get_triggerdef(t.oid) AS definition \
           FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
          WHERE NOT t.tgisinternal ORDER BY 1",
    )
    .load(conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for f in &functions {
        if !seen.insert(&f.name) {
            out.push(format!("{}: more than one function of that name", f.name));
            continue;
        }
        let Some(file) = files.get(&f.name) else {
            out.push(format!(
                "{}({}): no file src/db/functions/{0}.sql",
                f.name, f.arguments
            ));
            continue;
        };
        let file = db::functions::definition(file);
        let mut why = Vec::new();
        if file.lines().next() != f.definition.lines().next() {
            why.push(format!("arguments ({})", f.arguments));
        }
        if file.lines().nth(1) != Some(&format!(" RETURNS {}", f.result)) {
            why.push(format!("return type ({})", f.result));
        }
        if !file.contains(&format!("$function${}$function$;", f.body)) {
            why.push("body".to_owned());
        }
        let mut expected = format!("{};", f.definition.trim_end());
        let call = format!("{}(", f.name);
        for t in triggers.iter().filter(|t| t.function.starts_with(&call)) {
            expected.push_str(&format!("\n\n{};", t.definition));
        }
        if file != expected {
            if why.is_empty() {
                why.push("triggers or layout".to_owned());
            }
            out.push(format!(
                "src/db/functions/{}.sql differs from the database in its {}; the database has:\n{expected}",
                f.name,
                why.join(", ")
            ));
        }
    }
    for t in &triggers {
        let function = t.function.split('(').next().unwrap_or_default();
        if !files.contains_key(function) {
            out.push(format!(
                "trigger {} calls {}, which has no file",
                t.name, t.function
            ));
        }
    }
    for name in files.keys() {
        if !functions.iter().any(|f| &f.name == name) {
            out.push(format!(
                "src/db/functions/{name}.sql: the database has no function {name}"
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_migrated_functions_and_triggers_are_those_of_src_db_functions() {
    let listed: Vec<&str> = db::functions::FILES.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        function_files().keys().collect::<Vec<_>>(),
        listed,
        "db::functions::FILES lists every file of src/db/functions by its name, in order"
    );
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let differences = function_differences(&mut conn).await;
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}

#[tokio::test]
async fn migrate_puts_back_what_differs_from_src_db_functions_and_only_that() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.batch_execute(
        "CREATE OR REPLACE FUNCTION mfa_webhook_outbox() RETURNS trigger LANGUAGE plpgsql \
           AS $$ BEGIN RETURN NULL; END $$; \
         DROP TRIGGER totp_factors_rules ON totp_factors",
    )
    .await
    .unwrap();
    assert_eq!(function_differences(&mut conn).await.len(), 2);
    let applied = db::migrate(&db.url).await.unwrap();
    assert_eq!(
        applied,
        [
            "src/db/functions/mfa_totp_factor_rules.sql",
            "src/db/functions/mfa_webhook_outbox.sql"
        ]
    );
    assert_eq!(function_differences(&mut conn).await, Vec::<String>::new());
    assert!(db::migrate(&db.url).await.unwrap().is_empty());
}

/// From here on a migration drops functions and triggers but never creates one: the file in
/// `src/db/functions` would silently replace it.
#[test]
fn no_new_migration_creates_a_function_or_a_trigger() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    for entry in std::fs::read_dir(dir).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() <= "2026-12-01-000001_cheaper_sign_in_writes" {
            continue;
        }
        let sql = std::fs::read_to_string(path.join("up.sql")).unwrap_or_default();
        let code: Vec<&str> = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect();
        let code = code.join(" ").to_uppercase();
        let words = code.split_whitespace().collect::<Vec<_>>().join(" ");
        for object in ["FUNCTION", "TRIGGER", "PROCEDURE"] {
            for create in ["CREATE", "CREATE OR REPLACE"] {
                assert!(
                    !words.contains(&format!("{create} {object}")),
                    "{name} creates a {object}: write it in src/db/functions instead"
                );
            }
        }
    }
}

/// Records the SQL of every statement a connection runs.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<String>>>);

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            let sql = text
                .split(" -- binds:")
                .next()
                .unwrap_or_default()
                .to_owned();
            self.0.lock().unwrap().push(sql);
        }
    }
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

/// A tenant `big` of 20,000 users, every `factor_every`-th with an active factor, plus
/// `more_sql`, inserted directly (the API would take minutes) and never analyzed; returns a
/// second connection whose statements the recorder captures.
async fn big_tenant(
    db: &TestDb,
    setup: &mut diesel_async::AsyncPgConnection,
    factor_every: i32,
    more_sql: &str,
) -> (Recorder, diesel_async::AsyncPgConnection) {
    setup
        .batch_execute(&format!(
        "INSERT INTO tenants (tenant_id, created_at, updated_at) VALUES ('big', now(), now()); \
         INSERT INTO users (tenant_id, user_id, email, identity_provider, created_at) \
           SELECT 'big', 'u' || i, 'u' || i || '@x.example', 'local', now() \
           FROM generate_series(1, 20000) i; \
         INSERT INTO totp_factors (tenant_id, factor_id, user_id, status, name, key_id, nonce, \
           ciphertext, created_at, activated_at) \
           SELECT 'big', gen_random_uuid(), 'u' || i, 'active', 'Authenticator', 'k', \
             decode(repeat('00', 12), 'hex'), decode(repeat('00', 36), 'hex'), now(), now() \
           FROM generate_series(1, 20000, {factor_every}) i; {more_sql}"
    ))
        .await
        .unwrap();
    recorded(db).await
}

/// A new connection to `db` whose statements the recorder captures.
pub async fn recorded(db: &TestDb) -> (Recorder, diesel_async::AsyncPgConnection) {
    let recorder = Recorder::default();
    let mut conn = db.connect().await;
    conn.set_instrumentation(recorder.clone());
    (recorder, conn)
}

/// The plan `sql` gets as a prepared statement named `name`, under the session's settings
/// (the tests set `plan_cache_mode = force_generic_plan`), parameters all NULL.
async fn generic_plan(conn: &mut diesel_async::AsyncPgConnection, name: &str, sql: &str) -> String {
    let params = (1..=20).filter(|n| sql.contains(&format!("${n}"))).count();
    conn.batch_execute(&format!("PREPARE {name} AS {sql}"))
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    let explain = if params == 0 {
        format!("EXPLAIN EXECUTE {name}")
    } else {
        format!(
            "EXPLAIN EXECUTE {name}({})",
            vec!["NULL"; params].join(", ")
        )
    };
    let rows: Vec<Plan> = diesel::sql_query(explain).load(conn).await.unwrap();
    rows.into_iter().map(|r| r.plan + "\n").collect()
}

/// Every scan of a tenant-owned table in `plan` goes through an index whose condition
/// names the whole key this path needs.
fn assert_keyed(sql: &str, plan: &str) {
    for table in [
        "tenants",
        "users",
        "totp_factors",
        "logins",
        "recovery_codes",
    ] {
        assert!(
            !plan.contains(&format!("Seq Scan on {table}")),
            "sequential scan of {table} for {sql}:\n{plan}"
        );
    }
    for line in plan.lines() {
        if line.contains("Index Cond") && line.contains("tenant_id") {
            // A tenant-only condition walks the whole tenant.
            assert!(
                line.contains("user_id") || line.contains("login_id") || sql.contains("tenants"),
                "index condition without the user for {sql}:\n{plan}"
            );
        }
    }
}

/// The statements of a sign-in (start, verify, a wrong code), run through the service's
/// own repository functions on a tenant of 20,000 enrolled users that was never analyzed,
/// then planned again as generic plans (what a prepared statement gets after five runs):
/// each must reach its rows by a whole unique key.
#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = Text)]
    statement: String,
}

#[tokio::test]
async fn sign_in_statements_use_whole_keys_without_statistics() {
    let db = TestDb::new().await;
    let mut setup = db.connect().await;
    let (recorder, mut conn) = big_tenant(
        &db,
        &mut setup,
        1,
        "INSERT INTO logins (tenant_id, login_id, user_id, surface, status, token_hash, \
           created_at, expires_at) \
           SELECT 'big', gen_random_uuid(), 'u' || i, 'app', 'verification_required', \
             sha256(('t' || i)::bytea), now(), now() + interval '10 minutes' \
           FROM generate_series(1, 20000) i;",
    )
    .await;
    let tenant = TenantId::parse("big").unwrap();
    let user = UserId::parse("u777").unwrap();
    let now = Utc::now();
    let t = db::tenants::ensure(&mut conn, &tenant, now).await.unwrap();
    assert_eq!(t.version, 1);
    let (_, stored, factor) = db::users::sign_in_context(&conn, &tenant, &user)
        .await
        .unwrap()
        .expect("tenant");
    assert!(factor.is_some());
    let roles: Vec<String> = vec![];
    let u = db::users::sync(
        &mut conn,
        stored,
        &db::users::UserUpsert {
            tenant_id: &tenant,
            user_id: &user,
            email: "u777@x.example",
            display_name: None,
            identity_provider: IdentityProvider::Local,
            roles: &roles,
        },
        now,
    )
    .await
    .unwrap();
    assert_eq!(u.email, "u777@x.example");
    let f = db::factors::get(&mut conn, &tenant, &user, FactorStatus::Active)
        .await
        .unwrap()
        .expect("factor");
    let login = LoginId::new();
    let hash = [7u8; 32];
    db::logins::insert(
        &conn,
        &db::logins::NewLogin {
            tenant_id: &tenant,
            login_id: login,
            user_id: &user,
            surface: Surface::App,
            status: LoginStatus::VerificationRequired,
            token_hash: Some(&hash),
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
            completed_at: None,
            ip: None,
            user_agent: None,
        },
    )
    .await
    .unwrap();
    // The verify's transaction: its locking read, a wrong code, then an accepted one.
    let (ctx, factors) = db::begin_with(&mut conn, |c| {
        futures_util::FutureExt::boxed(db::logins::by_token(c, &hash, FactorStatus::Active, true))
    })
    .await
    .unwrap()
    .expect("login");
    assert_eq!(ctx.factor_id, Some(f.factor_id));
    assert_eq!(factors.len(), 1);
    let audit = db::audit::AuditCtx {
        tenant_id: tenant.clone(),
        user_id: Some(user.clone()),
        actor_id: Some(user.as_str().to_owned()),
        surface: Some(Surface::App),
        ip: None,
        user_agent: None,
    };
    let two_wrong = LockoutState {
        failed_attempts: 2,
        ..LockoutState::default()
    };
    db::users::store_lockout(&mut conn, &tenant, &user, &two_wrong)
        .await
        .unwrap();
    db::logins::record_failure(&mut conn, &tenant, login, 0, now)
        .await
        .unwrap();
    db::audit::insert(
        &conn,
        &audit,
        mspbots_mfa::domain::audit::AuditType::TotpVerifyFailed,
        now,
        serde_json::json!({}),
    )
    .await
    .unwrap();
    // The acceptance (the replay guard, which clears the lockout) and the completion, as the
    // attempt gate and `finish_login` send them.
    let consume = db::factors::consume_step;
    let accepted = consume(&mut conn, &tenant, &user, f.factor_id, 1, 0, now, true)
        .await
        .unwrap();
    assert!(accepted);
    let lockout = db::users::lock_for_attempt(&mut conn, &tenant, &user).await;
    assert_eq!(
        lockout.unwrap(),
        Some(LockoutState::default()),
        "not cleared"
    );
    db::logins::complete(&conn, &tenant, login, now)
        .await
        .unwrap();
    db::audit::insert(
        &conn,
        &audit,
        mspbots_mfa::domain::audit::AuditType::LoginSucceeded,
        now,
        serde_json::json!({}),
    )
    .await
    .unwrap();
    let again = consume(&mut conn, &tenant, &user, f.factor_id, 1, 0, now, true)
        .await
        .unwrap();
    assert!(!again, "the replay guard refuses the same step");
    db::end_transaction(&mut conn, Ok::<_, diesel::result::Error>(()))
        .await
        .unwrap();
    let statements: Vec<String> = recorder.0.lock().unwrap().clone();
    // The login's completion is prepared once per connection, as the rest of the verify is
    // (Diesel's update DSL never is: every sign-in parsed and planned it again).
    let prepared: Vec<Prepared> = diesel::sql_query("SELECT statement FROM pg_prepared_statements")
        .load(&mut conn)
        .await
        .unwrap();
    assert!(
        prepared
            .iter()
            .any(|p| p.statement.starts_with("UPDATE logins SET status")),
        "the completion is not a prepared statement: {:?}",
        prepared.iter().map(|p| &p.statement).collect::<Vec<_>>()
    );

    assert!(statements.len() >= 9, "{statements:?}");
    // The statements inside the replay guard and lockout reset functions, as written in SQL.
    let inner = [
        "UPDATE totp_factors SET last_used_step = $4, drift_steps = $5, last_used_at = $6 \
         WHERE tenant_id = $1 AND user_id = $2 AND factor_id = $3 \
           AND status = 'active' AND (last_used_step IS NULL OR last_used_step < $4)",
        "UPDATE users SET failed_attempts = 0, lockout_count = 0, locked_until = NULL, \
                last_login_at = CASE WHEN $4 THEN $3 ELSE last_login_at END \
         WHERE tenant_id = $1 AND user_id = $2 \
           AND ($4 OR failed_attempts <> 0 OR lockout_count <> 0 OR locked_until IS NOT NULL)",
    ];
    setup
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (i, sql) in statements
        .iter()
        .map(String::as_str)
        .chain(inner)
        // Inserts have no plan to speak of; the functions' statements are `inner`.
        .filter(|s| !s.starts_with("INSERT") && !s.contains("mfa_"))
        .filter(|s| !matches!(*s, "BEGIN" | "COMMIT"))
        .enumerate()
    {
        let plan = generic_plan(&mut setup, &format!("p{i}"), sql).await;
        assert!(plan.contains("Index"), "no index used for {sql}:\n{plan}");
        assert_keyed(sql, &plan);
    }
}

/// A sign-in of an existing tenant writes no row of `tenants`, and the start of a challenged
/// sign-in of a user whose details did not change does not rewrite the user either (row
/// versions stay the same). (A sign-in that completes records `last_login_at`.)
#[tokio::test]
async fn sign_ins_write_no_shared_row() {
    use crate::helpers::{TestApp, User};
    let (app, u, e) = TestApp::with_enrolled("acme", "u-1").await;
    let versions = "SELECT (SELECT xmin::text FROM tenants WHERE tenant_id = 'acme') || '/' || \
         (SELECT xmin::text FROM users WHERE tenant_id = 'acme' AND user_id = 'u-1') AS s";
    let before = app.sql_strings(versions).await;
    for i in 0..3 {
        assert_eq!(app.start_login(&u).await.status, 201);
        assert_eq!(
            app.start_login(&User::new("acme", &format!("other-{i}")))
                .await
                .status,
            201
        );
    }
    assert_eq!(
        app.sql_strings(versions).await,
        before,
        "tenant or user row rewritten"
    );
    // A changed e-mail is written.
    let mut changed = u.login_body();
    changed["email"] = serde_json::json!("new@acme.example");
    let r = app
        .post("/v1/logins", Some(&app.service_key), changed)
        .await;
    assert_eq!(r.status, 201);
    let emails = app
        .sql_strings("SELECT email AS s FROM users WHERE tenant_id = 'acme' AND user_id = 'u-1'")
        .await;
    assert_eq!(emails, vec!["new@acme.example".to_owned()]);

    // Nor is the tenant row locked: a whole sign-in of an existing user (start, code) leaves
    // its xmax alone. (A foreign key from the audit trail took FOR KEY SHARE on it per event.)
    let xmax = "SELECT xmax::text AS s FROM tenants WHERE tenant_id = 'acme'";
    let before = app.sql_strings(xmax).await;
    app.sign_in_with_code(&u, &e.secret).await;
    assert_eq!(app.sql_strings(xmax).await, before, "tenant row locked");
}

/// The tables every sign-in writes keep their rules as domains (parsed once per backend),
/// not as single-column CHECKs (re-parsed and re-planned by every INSERT and UPDATE), and
/// totp_factors' rules across columns in a trigger on the columns they read (the replay
/// guard's UPDATE sets none of them); the database still refuses each value those rules
/// refuse, on INSERT and on UPDATE.
#[tokio::test]
async fn sign_in_tables_check_single_columns_through_domains_that_still_refuse() {
    use crate::helpers::{TestApp, User};
    let app = TestApp::spawn().await;
    let u = User::new("acme", "u-1");
    app.enroll_via_me(&u).await;
    // The only CHECK left on them is the login's token rule (status and token together).
    let checks = app
        .sql_strings(
            "SELECT conrelid::regclass::text || '.' || conname AS s FROM pg_constraint \
             WHERE contype = 'c' \
             AND conrelid IN ('audit_events'::regclass, 'logins'::regclass, \
                              'totp_factors'::regclass, 'users'::regclass) ORDER BY 1",
        )
        .await;
    assert_eq!(checks, ["logins.logins_check"]);
    // The mfa token's unique index holds live tokens only: the NULL hash of a finished sign-in
    // is not added to it by the verify's (non-HOT) UPDATE.
    let token_index = app
        .sql_strings(
            "SELECT indexdef AS s FROM pg_indexes WHERE indexname = 'logins_token_hash_key'",
        )
        .await;
    assert_eq!(
        token_index,
        [
            "CREATE UNIQUE INDEX logins_token_hash_key ON public.logins USING btree (token_hash) \
          WHERE (token_hash IS NOT NULL)"
        ]
    );

    let mut conn = app.db.connect().await;
    let refused = [
        "UPDATE audit_events SET type = 'login.nope'",
        "UPDATE audit_events SET surface = 'desktop'",
        "UPDATE audit_events SET details = '[]'",
        "UPDATE logins SET status = 'done'",
        "UPDATE logins SET surface = 'desktop'",
        "UPDATE logins SET failed_attempts = 6",
        "UPDATE logins SET token_hash = '\\x00'",
        "UPDATE totp_factors SET status = 'gone'",
        "UPDATE totp_factors SET name = ''",
        "UPDATE totp_factors SET name = ' padded'",
        "UPDATE totp_factors SET name = 'tab' || chr(9)",
        "UPDATE totp_factors SET drift_steps = 101",
        "UPDATE totp_factors SET nonce = '\\x00'",
        "UPDATE totp_factors SET ciphertext = '\\x00'",
        "UPDATE users SET email = 'ab'",
        "UPDATE users SET identity_provider = 'google'",
        "UPDATE users SET display_name = repeat('x', 201)",
        "UPDATE users SET failed_attempts = -1",
        "UPDATE users SET lockout_count = -1",
        "UPDATE users SET user_id = 'no spaces'",
        // totp_factors' rules across columns, by the trigger.
        "UPDATE totp_factors SET activated_at = NULL",
        "UPDATE totp_factors SET status = 'pending', activated_at = NULL, expires_at = NULL",
        "INSERT INTO totp_factors (tenant_id, factor_id, user_id, status, key_id, nonce, \
         ciphertext, created_at, name) SELECT tenant_id, gen_random_uuid(), user_id, 'pending', \
         key_id, nonce, ciphertext, created_at, 'Second' FROM totp_factors",
        "INSERT INTO users (tenant_id, user_id, email, identity_provider, created_at) \
         VALUES ('acme', 'no spaces', 'a@acme.example', 'local', now())",
    ];
    for sql in refused {
        let err = diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect_err(sql);
        assert!(err.to_string().contains("check constraint"), "{sql}: {err}");
    }
    // And what they allow still goes in: a pending second factor with its expiry, then
    // confirmed (status and activation together).
    let allowed = [
        "UPDATE totp_factors SET name = 'Phone 2', drift_steps = -100 WHERE user_id = 'u-1'",
        "INSERT INTO totp_factors (tenant_id, factor_id, user_id, status, key_id, nonce, \
         ciphertext, created_at, expires_at, name) SELECT tenant_id, gen_random_uuid(), user_id, \
         'pending', key_id, nonce, ciphertext, created_at, now(), 'Second' FROM totp_factors",
        "UPDATE totp_factors SET status = 'active', activated_at = now() WHERE name = 'Second'",
    ];
    for sql in allowed {
        let n = diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
        assert_eq!(n, 1, "{sql}");
    }
}

/// A sign-in that asked for enrollment, of a user who has since enrolled elsewhere, asks
/// for a code instead: the login reports `verification_required`, verify works on it, and
/// enrollment through it is refused.
#[tokio::test]
async fn a_login_reports_the_users_real_state() {
    use crate::helpers::{login_of, TestApp, User};
    let app = TestApp::spawn().await;
    app.admin_with_policy("acme", serde_json::json!({"enforce_mfa": true}))
        .await;
    let u = User::new("acme", "u-2");
    let early = app.start_login(&u).await;
    assert_eq!(early.body["status"], "enrollment_required");
    let (early_id, early_token) = login_of(&early);
    let e = app.enroll_at_login(&u).await;

    let view = app.login_view(&early_id, &early_token).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["status"], "verification_required");
    let refused = app
        .post(
            &format!("/v1/logins/{early_id}/totp-enrollment"),
            Some(&early_token),
            serde_json::json!({}),
        )
        .await;
    refused.problem(409, "invalid_state");
    app.advance(30);
    let ok = app.verify_now(&early_id, &early_token, &e.secret).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

/// Cursors that are not ones this API returned are 400, whatever their bytes.
#[tokio::test]
async fn crafted_cursors_are_rejected_not_crashed_on() {
    use crate::helpers::TestApp;
    let (app, _, admin) = TestApp::with_admin("acme").await;
    for c in ["AA", "YQA", "AAE", "!!", "x"] {
        let r = app
            .get(
                &format!("/v1/tenants/acme/users?cursor={c}"),
                Some(&admin.access_token),
            )
            .await;
        r.problem(400, "invalid_request");
        let r = app
            .get(
                &format!("/v1/tenants/acme/audit-events?cursor={c}"),
                Some(&admin.access_token),
            )
            .await;
        r.problem(400, "invalid_request");
    }
}

/// Each documented filter of the listings has a statement of its own (boxed DSL) and an
/// index that serves it in order: on 200,000 audit events and 20,000 users that were never
/// analyzed, the generic plan of every filter combination sorts nothing and scans no table
/// whole, so a page costs a page.
#[tokio::test]
async fn every_listing_filter_is_served_by_an_index_in_order() {
    let db = TestDb::new().await;
    let mut setup = db.connect().await;
    let (recorder, mut conn) = big_tenant(
        &db,
        &mut setup,
        2,
        "INSERT INTO audit_events (tenant_id, type, at, user_id, actor_id) \
           SELECT 'big', CASE WHEN i % 1000 = 0 THEN 'user.locked' ELSE 'login.started' END, \
             now() - i * interval '1 second', 'u' || (i % 20000), 'u' || (i % 20000) \
           FROM generate_series(1, 200000) i;",
    )
    .await;
    let tenant = TenantId::parse("big").unwrap();
    let user = UserId::parse("u42").unwrap();
    let now = Utc::now();
    let kinds = [
        None,
        Some(mspbots_mfa::domain::audit::AuditType::UserLocked),
    ];
    let users = [None, Some(&user)];
    let sinces = [None, Some(now - chrono::Duration::hours(1))];
    let befores = [None, Some((now - chrono::Duration::minutes(5), 10))];
    for kind in kinds {
        for user_id in users {
            for since in sinces {
                for before in befores {
                    let f = db::audit::EventFilter {
                        kind,
                        user_id,
                        since,
                        before,
                    };
                    db::audit::list(&mut conn, &tenant, &f, 51).await.unwrap();
                }
            }
        }
    }
    for enrolled in [None, Some(true), Some(false)] {
        for after in [None, Some(&user)] {
            let page = db::users::list(&mut conn, &tenant, enrolled, None, after, 51)
                .await
                .unwrap();
            assert_eq!(page.len(), 51);
        }
    }
    // The grace filters (§13), with a third of the users' grace started three days ago.
    setup
        .batch_execute(
            "UPDATE users SET grace_started_at = now() - interval '3 days' \
             WHERE substr(user_id, 2)::int % 3 = 0",
        )
        .await
        .unwrap();
    let exempt = vec!["microsoft".to_owned()];
    for in_grace in [true, false] {
        for after in [None, Some(&user)] {
            let cutoff = now - chrono::Duration::days(if in_grace { 7 } else { 1 });
            let grace = if in_grace {
                db::users::GraceFilter::InGrace {
                    exempt: &exempt,
                    cutoff,
                }
            } else {
                db::users::GraceFilter::Overdue {
                    exempt: &exempt,
                    cutoff,
                }
            };
            let page = db::users::list(&mut conn, &tenant, None, Some(grace), after, 51)
                .await
                .unwrap();
            assert_eq!(page.len(), 51);
        }
    }
    let statements: Vec<String> = recorder.0.lock().unwrap().clone();
    // A users page is two statements: the page, then its users' active factors (§10).
    assert_eq!(statements.len(), 16 + (6 + 4) * 2);
    // As the listing services run them: generic plans, in a transaction with ORDERED_SCANS.
    setup
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan; BEGIN; {}",
            db::ORDERED_SCANS
        ))
        .await
        .unwrap();
    for (i, sql) in statements.iter().enumerate() {
        let plan = generic_plan(&mut setup, &format!("l{i}"), sql).await;
        assert!(!plan.contains("Seq Scan"), "{sql}:\n{plan}");
        assert!(
            !plan.contains("Sort"),
            "sorted, not served in order: {sql}:\n{plan}"
        );
    }
}

/// The tenant summary (§13) on 20,000 users (half enrolled, a quarter in grace or overdue,
/// 200 locked, 5,000 remembered devices), never analyzed: one statement whose answer matches
/// the seeded states, that reaches factors and devices through indexes (the users of the
/// tenant it reads whole, by design), and that stays fast. Prints its timing.
#[tokio::test]
async fn the_summary_of_20000_users_is_one_fast_statement() {
    let db = TestDb::new().await;
    let mut setup = db.connect().await;
    let (recorder, mut conn) = big_tenant(
        &db,
        &mut setup,
        2,
        "UPDATE users SET grace_started_at = now() - (i % 10) * interval '1 day' \
           FROM generate_series(2, 20000, 4) i WHERE user_id = 'u' || i; \
         UPDATE users SET locked_until = now() + interval '10 minutes' \
           FROM generate_series(1, 20000, 100) i WHERE user_id = 'u' || i; \
         INSERT INTO remembered_devices (tenant_id, device_id, user_id, surface, token_hash, \
           name, auth_time, created_at, expires_at) \
           SELECT 'big', gen_random_uuid(), 'u' || i, 'app', sha256(('d' || i)::bytea), 'Browser', \
             now(), now(), now() + interval '30 days' \
           FROM generate_series(1, 20000, 4) i;",
    )
    .await;
    let tenant = TenantId::parse("big").unwrap();
    let now = Utc::now();
    let exempt = vec!["microsoft".to_owned()];
    let params = db::grace::SummaryParams {
        exempt: &exempt,
        required: true,
        grace_cutoff: now - chrono::Duration::days(7),
        device_cutoff: now - chrono::Duration::days(30),
        now,
    };
    let mut timings = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let t = std::time::Instant::now();
        last = Some(
            db::grace::summary(&mut conn, &tenant, &params)
                .await
                .unwrap(),
        );
        timings.push(t.elapsed());
    }
    let s = last.unwrap();
    timings.sort();
    eprintln!(
        "mfa-summary on 20,000 users: min {:?}, median {:?}, max {:?}",
        timings[0], timings[2], timings[4]
    );
    assert_eq!((s.users, s.enrolled, s.exempt), (20000, 10000, 0));
    // Grace on every 4th even user (none enrolled: factors are on odd ids), days 0-9 ago.
    assert_eq!(s.in_grace + s.overdue, 5000);
    assert_eq!(
        s.in_grace, 4000,
        "i % 10 is 0, 2, 4, 6 or 8 days: four in five run"
    );
    assert_eq!(s.locked, 200);
    assert_eq!(s.remembered_devices, 5000);
    assert_eq!(
        recorder.0.lock().unwrap().len(),
        5,
        "one statement per summary"
    );
    // Its time is printed, not asserted (this machine is shared): the plan below is the check.
    // The sign-in's device lookup goes through the token's unique index.
    let device = db::devices::live_by_token(
        &mut conn,
        &[0u8; 32],
        (&tenant, &UserId::parse("u1").unwrap(), Surface::App),
        now,
        now - chrono::Duration::days(30),
    )
    .await
    .unwrap();
    assert!(device.is_none());
    let statements: Vec<String> = recorder.0.lock().unwrap().clone();
    setup
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let plan = generic_plan(&mut setup, "summary", &statements[0]).await;
    eprintln!("{plan}");
    for table in ["totp_factors", "remembered_devices"] {
        assert!(!plan.contains(&format!("Seq Scan on {table}")), "{plan}");
    }
    let plan = generic_plan(&mut setup, "device", statements.last().unwrap()).await;
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert!(plan.contains("token_hash"), "{plan}");
}
