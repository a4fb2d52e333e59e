//! The webhook statements reach their rows by key and in order whatever the planner knows:
//! 2,000 tenants with a webhook each and 200,000 deliveries, never analyzed, every statement
//! of the worker and the listings planned again as a generic plan.

use chrono::Utc;
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use mspbots_mfa::db;
use mspbots_mfa::domain::ids::{DeliveryId, DeliveryState, TenantId, WebhookId};

use crate::helpers::TestDb;
use crate::schema::recorded;

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    plan: String,
}

async fn generic_plan(conn: &mut diesel_async::AsyncPgConnection, name: &str, sql: &str) -> String {
    let params = (1..=20).filter(|n| sql.contains(&format!("${n}"))).count();
    conn.batch_execute(&format!("PREPARE {name} AS {sql}"))
        .await
        .unwrap_or_else(|e| panic!("prepare {sql}: {e}"));
    let args = vec!["NULL"; params].join(", ");
    let explain = if params == 0 {
        format!("EXPLAIN EXECUTE {name}")
    } else {
        format!("EXPLAIN EXECUTE {name}({args})")
    };
    let rows: Vec<Plan> = diesel::sql_query(explain).load(conn).await.unwrap();
    rows.into_iter().map(|r| r.plan + "\n").collect()
}

#[tokio::test]
async fn webhook_statements_use_keys_and_order_without_statistics() {
    let db = TestDb::new().await;
    let mut setup = db.connect().await;
    setup
        .batch_execute(
            "INSERT INTO tenants (tenant_id, created_at, updated_at) \
               SELECT 't' || i, now(), now() FROM generate_series(1, 2000) i; \
             INSERT INTO webhooks (tenant_id, webhook_id, url, event_types, status, key_id, \
               nonce, ciphertext, created_at, updated_at) \
               SELECT 't' || i, gen_random_uuid(), 'https://x.example/', '{*}', \
                 CASE WHEN i % 10 = 0 THEN 'disabled' ELSE 'active' END, 'k', \
                 decode(repeat('00', 12), 'hex'), decode(repeat('00', 48), 'hex'), now(), now() \
               FROM generate_series(1, 2000) i; \
             INSERT INTO webhook_deliveries (tenant_id, delivery_id, webhook_id, event_type, \
               state, next_attempt_at, created_at, delivered_at) \
               SELECT w.tenant_id, gen_random_uuid(), w.webhook_id, 'login.started', \
                 CASE WHEN g % 10 = 0 THEN 'pending' ELSE 'succeeded' END, \
                 CASE WHEN g % 10 = 0 THEN now() - g * interval '1 second' END, \
                 now() - g * interval '1 second', \
                 CASE WHEN g % 10 = 0 THEN NULL ELSE now() END \
               FROM webhooks w, generate_series(1, 100) g;",
        )
        .await
        .unwrap();
    let (recorder, mut conn) = recorded(&db).await;

    let now = Utc::now();
    let tenant = TenantId::parse("t7").unwrap();
    let page = db::webhooks::list(&mut conn, &tenant, None, 51)
        .await
        .unwrap();
    let hook: WebhookId = page[0].webhook_id;
    db::webhooks::list(&mut conn, &tenant, Some(hook), 51)
        .await
        .unwrap();
    db::webhooks::get(&mut conn, &tenant, hook).await.unwrap();
    for state in [None, Some(DeliveryState::Pending)] {
        for before in [None, Some((now, DeliveryId::new()))] {
            db::webhooks::list_deliveries(&mut conn, &tenant, hook, state, before, 51)
                .await
                .unwrap();
        }
    }
    let claim = uuid::Uuid::new_v4();
    let claimed = conn
        .transaction::<_, diesel::result::Error, _>(async |c| {
            let in_flight = std::collections::HashMap::new();
            let mut r = db::webhooks::ClaimRequest {
                now,
                lease_until: now + chrono::Duration::seconds(60),
                claim,
                limit: 20,
                per_webhook: 2,
                in_flight: &in_flight,
                after: None,
            };
            let first = db::webhooks::claim(c, &r).await?;
            // The next claim starts after where this one ended, and wraps around.
            let last = first.last.clone();
            r.after = last.as_ref();
            db::webhooks::claim(c, &r).await?;
            Ok(first.rows)
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 20);
    let hooks: std::collections::HashSet<_> = claimed.iter().map(|d| d.webhook_id).collect();
    assert_eq!(hooks.len(), 10, "two of each webhook in turn");
    let d = &claimed[0];
    let outcome = db::webhooks::Outcome {
        state: DeliveryState::Pending,
        status: Some(500),
        error: Some("HTTP 500"),
        next_attempt_at: Some(now),
        now,
    };
    assert!(
        db::webhooks::record(&mut conn, &d.tenant_id, d.delivery_id, claim, &outcome)
            .await
            .unwrap()
    );
    db::webhooks::note_failure(&mut conn, &d.tenant_id, d.webhook_id, now)
        .await
        .unwrap();
    db::webhooks::note_success(&mut conn, &d.tenant_id, d.webhook_id)
        .await
        .unwrap();
    db::webhooks::hold_pending(&mut conn, &d.tenant_id, d.webhook_id, true)
        .await
        .unwrap();
    db::webhooks::retry_now(&mut conn, &d.tenant_id, d.webhook_id, d.delivery_id, now)
        .await
        .unwrap();
    db::audit::event(&mut conn, &tenant, 1).await.unwrap();
    db::webhooks::pending_count(&mut conn).await.unwrap();

    let statements: Vec<String> = recorder.0.lock().unwrap().clone();
    // As the services run them: generic plans; the listings in a transaction with
    // ORDERED_SCANS, the queue depth with enable_seqscan off, the rest as they are.
    setup
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let mut planned = 0;
    for (i, sql) in statements.iter().enumerate() {
        if sql.starts_with("BEGIN") || sql.starts_with("COMMIT") || sql.starts_with("SET") {
            continue;
        }
        let session = if sql.contains("\"created_at\" DESC") {
            db::ORDERED_SCANS.to_owned()
        } else if sql.contains("count(") {
            "SET LOCAL enable_seqscan = off".to_owned()
        } else {
            "SELECT 1".to_owned()
        };
        setup
            .batch_execute(&format!("BEGIN; {session}"))
            .await
            .unwrap();
        let plan = generic_plan(&mut setup, &format!("w{i}"), sql).await;
        setup.batch_execute("ROLLBACK").await.unwrap();
        planned += 1;
        assert!(!plan.contains("Seq Scan"), "{sql}:\n{plan}");
        assert!(
            !plan.contains("Sort"),
            "sorted, not served in order: {sql}:\n{plan}"
        );
        assert!(plan.contains("Index"), "no index for {sql}:\n{plan}");
    }
    assert!(planned >= 15, "{statements:?}");
}
