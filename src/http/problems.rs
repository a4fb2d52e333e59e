//! Error responses and the step-up header that many operations document in the same words,
//! as utoipa types: one name in a handler's `responses(…)` or `params(…)` instead of a copied
//! tuple. The OpenAPI document is the same as if each handler wrote the tuple itself (the
//! drift test compares it). `401 unauthenticated` is not here: `openapi.rs` adds it to every
//! operation that takes a credential and does not word it otherwise.

use std::collections::BTreeMap;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{
    ContentBuilder, KnownFormat, ObjectBuilder, Ref, RefOr, Required, SchemaFormat, Type,
};

/// A problem+json response with this description.
pub fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// The `Retry-After` header of a `429` or `503`.
pub fn retry_after() -> Header {
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0));
    HeaderBuilder::new()
        .schema(Some(seconds))
        .description(Some("Seconds to wait"))
        .build()
}

fn build(list: &[(&str, &str, bool)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description, retry)| {
            let mut r = problem(description);
            if *retry {
                r = r.header("Retry-After", retry_after());
            }
            ((*status).to_owned(), RefOr::T(r.build()))
        })
        .collect()
}

macro_rules! problem_set {
    ($(#[$m:meta])* $name:ident = [$(($status:literal, $desc:literal $(, $retry:ident)?)),+ $(,)?]) => {
        $(#[$m])*
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                build(&[$(($status, $desc, problem_set!(@retry $($retry)?))),+])
            }
        }
    };
    (@retry) => { false };
    (@retry retry) => { true };
}

problem_set!(
    /// `404 not_found`.
    NotFound = [("404", "`not_found`")]
);
problem_set!(
    /// `429 too_many_attempts` with `Retry-After`.
    TooManyAttempts = [("429", "`too_many_attempts`; see `Retry-After`", retry)]
);
problem_set!(
    /// `403` of an admin call without step-up.
    AdminForbidden = [("403", "`forbidden` or `mfa_required_for_admin`")]
);
problem_set!(
    /// `400` of a refused step-up code in `X-MFA-Code`.
    StepUpCodeRefused = [("400", "`invalid_request`, `invalid_code` or `code_reused` (step-up code)")]
);
problem_set!(
    /// `403` of an admin call that needs step-up.
    StepUpForbidden = [("403", "`forbidden`, `mfa_required_for_admin` or `step_up_required`")]
);
problem_set!(
    /// `403` of a user's own call that needs step-up.
    StepUpRequired = [("403", "`step_up_required`")]
);
problem_set!(
    /// `404` of a call on a user.
    NoSuchUser = [("404", "`not_found`: no such user")]
);
problem_set!(
    /// `404` of a call on a tenant.
    NoSuchTenant = [("404", "`not_found`: no such tenant")]
);
problem_set!(
    /// `400 invalid_request`, worded no further.
    InvalidRequest = [("400", "`invalid_request`")]
);
problem_set!(
    /// `400` of a call whose body, if any, is ignored but must be JSON.
    BodyNotJson = [("400", "`invalid_request`: a body that is not JSON")]
);
problem_set!(
    /// `400` of an admin call whose step-up code is checked with its body.
    RequestOrCodeRefused = [("400", "`invalid_request`, `invalid_code` or `code_reused`")]
);
problem_set!(
    /// `400` of a resync: two consecutive codes, counted as one wrong code.
    ResyncRefused = [("400", "`invalid_request` (not six digits; not counted) or `invalid_code` (counted once)")]
);
problem_set!(
    /// `403` of a service key whose scope does not cover the path's tenant.
    KeyOutOfScope = [("403", "`forbidden`: the key's scope does not cover the tenant")]
);
problem_set!(
    /// `404` of a tenant's listing: a `tenant_id` that cannot be one.
    NotATenantId = [("404", "`not_found`: `tenant_id` is not a tenant id")]
);
problem_set!(
    /// `409` of a sign-in step that needs the user's factor.
    NeedsEnrollment = [("409", "`invalid_state`: the sign-in needs an enrollment")]
);
problem_set!(
    /// `429` of a call that takes a proof: the user's lockout or the per-IP limit.
    Locked = [("429", "`too_many_attempts`: locked out or per-IP limit; see `Retry-After`", retry)]
);

/// Several of the sets above, as one: the refusals that many calls share. The parts must
/// answer different statuses (a later part's row would replace an earlier one's).
macro_rules! problem_union {
    ($(#[$m:meta])* $name:ident = [$($part:ident),+ $(,)?]) => {
        $(#[$m])*
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                let mut all = BTreeMap::new();
                $(all.extend(<$part as utoipa::IntoResponses>::responses());)+
                all
            }
        }
    };
}

problem_union!(
    /// The refusals of a user's own call that needs step-up (`X-MFA-Code`): the code, no
    /// recent 2FA, the lockout.
    OwnStepUp = [StepUpCodeRefused, StepUpRequired, TooManyAttempts]
);
problem_union!(
    /// The refusals of an admin call that needs step-up: the code, the caller's rights or no
    /// recent 2FA, the lockout.
    AdminStepUpRefused = [StepUpCodeRefused, StepUpForbidden, TooManyAttempts]
);
problem_union!(
    /// The same on a resource that may not exist.
    AdminStepUp = [StepUpCodeRefused, StepUpForbidden, NotFound, TooManyAttempts]
);

/// What `StepUpCode` accepts: six digits, or a recovery code (ten Crockford base32
/// characters with optional spaces and hyphens).
pub const CODE_PATTERN: &str = r"^(?:[0-9]{6}|[0-9A-TV-Za-tv-z](?:[- ]*[0-9A-TV-Za-tv-z]){9})$";

/// The optional `X-MFA-Code` header, in these words.
fn step_up_header(description: &str) -> Parameter {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(CODE_PATTERN));
    ParameterBuilder::new()
        .name("X-MFA-Code")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

macro_rules! step_up_header {
    ($(#[$m:meta])* $name:ident = $desc:literal) => {
        $(#[$m])*
        pub struct $name;
        impl utoipa::IntoParams for $name {
            fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
                vec![step_up_header($desc)]
            }
        }
    };
}

step_up_header!(
    /// The optional `X-MFA-Code` header of a call that needs step-up.
    StepUpHeader = "Step-up: a current TOTP code (six digits) or a recovery code (ten Crockford \
                    base32 characters; case, spaces and hyphens do not matter)"
);
step_up_header!(
    /// The same header in fewer words (the webhook calls that always need step-up).
    StepUpHeaderBrief = "Step-up: a current TOTP code (six digits) or a recovery code"
);
step_up_header!(
    /// The same header on a webhook's change, which needs step-up only for a new `url`.
    StepUpHeaderOnUrl = "Step-up when `url` changes: a current TOTP code (six digits) or a recovery code"
);
