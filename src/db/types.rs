//! How the domain's typed ids and enums cross into SQL: `ToSql`/`FromSql` for each, so
//! queries take and return `TenantId`, `FactorStatus`, … instead of strings. A stored value
//! that does not parse is a broken invariant (the schema constrains every one), reported as
//! a deserialization error.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{Text, Uuid as SqlUuid};

use crate::domain::audit::AuditType;
use crate::domain::ids::{
    DeliveryId, DeliveryState, FactorId, FactorStatus, FactorType, IdentityProvider, LoginId,
    LoginStatus, Surface, TenantId, UserId, UserVerification, WebhookId, WebhookStatus,
};

macro_rules! text_id {
    ($($t:ty),+) => {$(
        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }
        impl FromSql<Text, Pg> for $t {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                <String as FromSql<Text, Pg>>::from_sql(bytes).map(<$t>::from_stored)
            }
        }
    )+};
}
text_id!(TenantId, UserId);

macro_rules! uuid_id {
    ($($t:ty),+) => {$(
        impl ToSql<SqlUuid, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <uuid::Uuid as ToSql<SqlUuid, Pg>>::to_sql(&self.0, out)
            }
        }
        impl FromSql<SqlUuid, Pg> for $t {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                <uuid::Uuid as FromSql<SqlUuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
    )+};
}
uuid_id!(LoginId, FactorId, WebhookId, DeliveryId);

macro_rules! text_enum {
    ($($t:ty => $parse:path),+) => {$(
        impl ToSql<Text, Pg> for $t {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }
        impl FromSql<Text, Pg> for $t {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                $parse(&s).ok_or_else(|| {
                    format!(concat!("unexpected stored ", stringify!($t), " {:?}"), s).into()
                })
            }
        }
    )+};
}
text_enum!(
    Surface => Surface::from_db,
    IdentityProvider => IdentityProvider::from_db,
    FactorStatus => FactorStatus::from_db,
    FactorType => FactorType::from_db,
    UserVerification => UserVerification::from_db,
    LoginStatus => LoginStatus::from_db,
    WebhookStatus => WebhookStatus::from_db,
    DeliveryState => DeliveryState::from_db,
    AuditType => AuditType::parse
);
