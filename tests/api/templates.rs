//! The template database is a documented cache (helpers.rs): named by the migrations'
//! hash, and templates of other hashes go once nobody used them for a day.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::helpers::{drop_stale_templates, TestDb, PG};

async fn exists(admin: &mut AsyncPgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let r: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(name),
        admin,
    )
    .await
    .unwrap();
    r.n == 1
}

#[tokio::test]
async fn templates_of_other_migrations_go_after_a_day_unused_and_recent_ones_stay() {
    // The current template exists once any test database was made.
    let db = TestDb::new().await;
    let mut admin = AsyncPgConnection::establish(&format!("{PG}/postgres"))
        .await
        .unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (old, recent) = (
        format!("mfa_test_tpl_x{}", &suffix[..11]),
        format!("mfa_test_tpl_y{}", &suffix[..11]),
    );
    for (name, used) in [
        (&old, "2020-01-01T00:00:00+00:00"),
        (&recent, &chrono::Utc::now().to_rfc3339()[..]),
    ] {
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap();
        admin
            .batch_execute(&format!(
                "ALTER DATABASE \"{name}\" IS_TEMPLATE true; COMMENT ON DATABASE \"{name}\" IS 'mspbots-mfa test template, used {used}'"
            ))
            .await
            .unwrap();
    }
    let current = db.name.clone();
    drop_stale_templates(&mut admin, &current).await;
    assert!(
        !exists(&mut admin, &old).await,
        "a template unused since 2020 stays"
    );
    assert!(
        exists(&mut admin, &recent).await,
        "a template used now was dropped"
    );
    admin
        .batch_execute(&format!("ALTER DATABASE \"{recent}\" IS_TEMPLATE false"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("DROP DATABASE \"{recent}\""))
        .await
        .unwrap();
}
