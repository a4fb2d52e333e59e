//! The audit event types (docs/API.md §6). Events never carry a secret, code or token.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! audit_types {
    ($($variant:ident => $text:tt),+ $(,)?) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum AuditType { $(#[serde(rename = $text)] $variant),+ }

        impl AuditType {
            pub const ALL: &'static [AuditType] = &[$(AuditType::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(AuditType::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(AuditType::$variant),)+ _ => None }
            }
        }
    };
}

audit_types! {
    LoginStarted => "login.started",
    LoginSucceeded => "login.succeeded",
    TotpEnrollmentStarted => "totp.enrollment_started",
    TotpEnrolled => "totp.enrolled",
    TotpVerifyFailed => "totp.verify_failed",
    TotpCodeReused => "totp.code_reused",
    RecoveryCodeUsed => "recovery_code.used",
    RecoveryCodeFailed => "recovery_code.failed",
    RecoveryCodesRegenerated => "recovery_codes.regenerated",
    UserLocked => "user.locked",
    UserUnlocked => "user.unlocked",
    TotpRemoved => "totp.removed",
    TotpResetByAdmin => "totp.reset_by_admin",
    PolicyUpdated => "policy.updated",
    UserDeleted => "user.deleted",
    FactorRenamed => "factor.renamed",
    DeviceRemembered => "device.remembered",
    DeviceRevoked => "device.revoked",
    TotpEnrollmentSkipped => "totp.enrollment_skipped",
    WebhookCreated => "webhook.created",
    WebhookUpdated => "webhook.updated",
    WebhookDeleted => "webhook.deleted",
    WebhookSecretRotated => "webhook.secret_rotated",
    WebhookDisabled => "webhook.disabled",
    UserReauthenticated => "user.reauthenticated",
    WebauthnEnrollmentStarted => "webauthn.enrollment_started",
    WebauthnEnrolled => "webauthn.enrolled",
    WebauthnVerifyFailed => "webauthn.verify_failed",
    WebauthnCounterRegressed => "webauthn.counter_regressed",
    WebauthnRemoved => "webauthn.removed",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_serializes_as_its_name() {
        assert_eq!(AuditType::ALL.len(), 30);
        for t in AuditType::ALL {
            assert_eq!(AuditType::parse(t.as_str()), Some(*t));
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::json!(t.as_str())
            );
        }
        assert_eq!(AuditType::parse("login.nope"), None);
    }
}
