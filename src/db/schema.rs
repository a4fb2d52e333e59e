//! The tables as Diesel sees them, written to match `migrations/`. The test
//! `schema_rs_matches_the_migrated_catalog` (tests/api/schema.rs) compares every table and
//! column here (name, type, nullability) with the catalog of a freshly migrated database, so
//! the two cannot drift apart. The SQL functions (current text in `src/db/functions/`) are
//! declared last.

diesel::table! {
    tenants (tenant_id) {
        tenant_id -> Text,
        enforce_mfa -> Bool,
        surfaces -> Array<Text>,
        exempt_identity_providers -> Array<Text>,
        issuer -> Text,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Text>,
        max_factors_per_user -> Int4,
        remember_device_days -> Int4,
        enrollment_grace_days -> Int4,
        allowed_factor_types -> Array<Text>,
        webauthn_user_verification -> Text,
    }
}

diesel::table! {
    users (tenant_id, user_id) {
        tenant_id -> Text,
        user_id -> Text,
        email -> Text,
        display_name -> Nullable<Text>,
        identity_provider -> Text,
        roles -> Array<Text>,
        created_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        failed_attempts -> Int4,
        lockout_count -> Int4,
        locked_until -> Nullable<Timestamptz>,
        grace_started_at -> Nullable<Timestamptz>,
        webauthn_user_handle -> Nullable<Bytea>,
    }
}

diesel::table! {
    totp_factors (tenant_id, factor_id) {
        tenant_id -> Text,
        factor_id -> Uuid,
        user_id -> Text,
        status -> Text,
        key_id -> Nullable<Text>,
        nonce -> Nullable<Bytea>,
        ciphertext -> Nullable<Bytea>,
        last_used_step -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        activated_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        name -> Text,
        drift_steps -> Int4,
        #[sql_name = "type"]
        type_ -> Text,
    }
}

diesel::table! {
    recovery_codes (tenant_id, user_id, code_hash) {
        tenant_id -> Text,
        code_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        user_id -> Text,
    }
}

diesel::table! {
    logins (tenant_id, login_id) {
        tenant_id -> Text,
        login_id -> Uuid,
        user_id -> Text,
        surface -> Text,
        status -> Text,
        token_hash -> Nullable<Bytea>,
        failed_attempts -> Int4,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    service_keys (key_id) {
        key_id -> Uuid,
        name -> Text,
        key_hash -> Bytea,
        tenant_scope -> Nullable<Array<Text>>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (tenant_id, id) {
        tenant_id -> Text,
        id -> Int8,
        #[sql_name = "type"]
        type_ -> Text,
        at -> Timestamptz,
        user_id -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        surface -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::table! {
    remembered_devices (tenant_id, device_id) {
        tenant_id -> Text,
        device_id -> Uuid,
        user_id -> Text,
        surface -> Text,
        token_hash -> Bytea,
        name -> Text,
        auth_time -> Timestamptz,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        last_ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhooks (tenant_id, webhook_id) {
        tenant_id -> Text,
        webhook_id -> Uuid,
        url -> Text,
        event_types -> Array<Text>,
        description -> Nullable<Text>,
        status -> Text,
        key_id -> Text,
        nonce -> Bytea,
        ciphertext -> Bytea,
        previous_key_id -> Nullable<Text>,
        previous_nonce -> Nullable<Bytea>,
        previous_ciphertext -> Nullable<Bytea>,
        previous_expires_at -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (tenant_id, delivery_id) {
        tenant_id -> Text,
        delivery_id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Nullable<Int8>,
        event_type -> Text,
        actor_id -> Nullable<Text>,
        state -> Text,
        attempts -> Int4,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        next_attempt_at -> Nullable<Timestamptz>,
        held -> Bool,
        claim_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webauthn_credentials (tenant_id, factor_id) {
        tenant_id -> Text,
        factor_id -> Uuid,
        user_id -> Text,
        rp_id -> Text,
        credential_id -> Nullable<Bytea>,
        credential -> Nullable<Jsonb>,
        counter -> Int8,
        backup_eligible -> Bool,
        backed_up -> Bool,
        transports -> Array<Text>,
        user_verified -> Bool,
    }
}

diesel::table! {
    webauthn_challenges (tenant_id, user_id, purpose) {
        tenant_id -> Text,
        user_id -> Text,
        purpose -> Text,
        rp_id -> Text,
        login_id -> Nullable<Uuid>,
        factor_id -> Nullable<Uuid>,
        state -> Jsonb,
        expires_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    webauthn_credentials,
    webauthn_challenges,
    tenants,
    users,
    totp_factors,
    recovery_codes,
    logins,
    service_keys,
    audit_events,
    remembered_devices,
    webhooks,
    webhook_deliveries,
);

use diesel::sql_types::{Bool, Int4, Int8, Text, Timestamptz, Uuid};

// The security rules that live in the database, today's text in src/db/functions/<name>.sql
// (mfa_accept_step.sql, mfa_reset_lockout.sql):
// called through the DSL, so the call is a prepared statement like any other query, and
// PL/pgSQL caches the plans of the statements inside.
diesel::define_sql_function! {
    /// The replay guard: records `step` as the factor's last used step (and `drift` as its
    /// drift) only if it is later, and then clears the lockout as `mfa_reset_lockout` does.
    fn mfa_accept_step(tenant: Text, user: Text, factor: Uuid, step: Int8, drift: Int4, now: Timestamptz, signed_in: Bool) -> Bool;
}
diesel::define_sql_function! {
    /// Clears the lockout; with `signed_in`, also stores the sign-in's time (and answers
    /// NULL); otherwise whether the user was locked at `now` (NULL: no such user).
    fn mfa_reset_lockout(tenant: Text, user: Text, now: Timestamptz, signed_in: Bool) -> Nullable<Bool>;
}
