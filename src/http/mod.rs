//! The HTTP surface: thin handlers per resource, the extractors, the middleware, and the
//! route table (with 404/405 problems for everything actix would otherwise answer by itself).

pub mod auth;
pub mod devices;
pub mod extract;
pub mod factors;
pub mod logins;
pub mod me;
pub mod middleware;
pub mod ops;
pub mod passkeys;
pub mod problems;
pub mod tenants;
pub mod ui;
pub mod webhooks;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, Route};

use crate::error::ApiError;

/// A resource whose other methods get `405` with `Allow`. `HEAD` is served by the `GET`
/// route (see `middleware::edge`), so it is allowed wherever `GET` is.
fn resource(path: &str, routes: Vec<(Method, Route)>) -> impl actix_web::dev::HttpServiceFactory {
    let mut allow: Vec<&str> = routes.iter().map(|(m, _)| m.as_str()).collect();
    if let Some(get) = allow.iter().position(|m| *m == "GET") {
        allow.insert(get + 1, "HEAD");
    }
    let allow = allow.join(", ");
    let mut r = web::resource(path)
        .wrap(from_fn(middleware::limits::time_limits))
        .wrap(from_fn(middleware::request::panic_guard));
    for (method, route) in routes {
        r = r.route(route.method(method));
    }
    r.default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
    }))
}

async fn not_found(_req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The route table.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use Method as M;
    let to = web::route;
    cfg.service(resource("/", vec![(M::GET, to().to(ops::index))]))
        .service(resource("/healthz", vec![(M::GET, to().to(ops::healthz))]))
        .service(resource("/readyz", vec![(M::GET, to().to(ops::readyz))]))
        .service(resource("/metrics", vec![(M::GET, to().to(ops::metrics))]))
        .service(resource(
            "/.well-known/jwks.json",
            vec![(M::GET, to().to(ops::jwks))],
        ))
        .service(resource(
            "/openapi.json",
            vec![(M::GET, to().to(ops::openapi))],
        ))
        .service(resource(
            "/docs",
            vec![(M::GET, to().to(ops::docs_redirect))],
        ))
        .service(resource("/ui", vec![(M::GET, to().to(ui::redirect))]))
        .service(resource("/ui/", vec![(M::GET, to().to(ui::index))]))
        .service(resource("/ui/{file}", vec![(M::GET, to().to(ui::asset))]))
        .service(resource(
            "/v1/logins",
            vec![(M::POST, to().to(logins::start))],
        ))
        .service(resource(
            "/v1/logins/{login_id}",
            vec![(M::GET, to().to(logins::get))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/totp-enrollment",
            vec![(M::POST, to().to(logins::start_enrollment))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/totp-enrollment/confirm",
            vec![(M::POST, to().to(logins::confirm_enrollment))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/verify",
            vec![(M::POST, to().to(logins::verify))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/recover",
            vec![(M::POST, to().to(logins::recover))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/resync",
            vec![(M::POST, to().to(logins::resync))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/webauthn-challenge",
            vec![(M::POST, to().to(passkeys::challenge))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/webauthn",
            vec![(M::POST, to().to(passkeys::sign_in))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/webauthn-enrollment",
            vec![(M::POST, to().to(passkeys::start_enrollment))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/webauthn-enrollment/confirm",
            vec![(M::POST, to().to(passkeys::confirm_enrollment))],
        ))
        .service(resource("/v1/me", vec![(M::GET, to().to(me::show))]))
        .service(resource(
            "/v1/me/totp-enrollment",
            vec![(M::POST, to().to(me::start_enrollment))],
        ))
        .service(resource(
            "/v1/me/totp-enrollment/confirm",
            vec![(M::POST, to().to(me::confirm_enrollment))],
        ))
        .service(resource(
            "/v1/me/totp",
            vec![(M::DELETE, to().to(me::remove_factor))],
        ))
        .service(resource(
            "/v1/logins/{login_id}/skip-enrollment",
            vec![(M::POST, to().to(logins::skip_enrollment))],
        ))
        .service(resource(
            "/v1/me/devices",
            vec![
                (M::GET, to().to(devices::list_mine)),
                (M::DELETE, to().to(devices::revoke_all_mine)),
            ],
        ))
        .service(resource(
            "/v1/me/devices/{device_id}",
            vec![(M::DELETE, to().to(devices::revoke_mine))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}/devices",
            vec![
                (M::GET, to().to(devices::list_for_user)),
                (M::DELETE, to().to(devices::revoke_for_user)),
            ],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/mfa-summary",
            vec![(M::GET, to().to(devices::summary))],
        ))
        .service(resource(
            "/v1/me/reauthenticate",
            vec![(M::POST, to().to(me::reauthenticate))],
        ))
        .service(resource(
            "/v1/me/reauthenticate/webauthn-challenge",
            vec![(M::POST, to().to(me::reauthenticate_challenge))],
        ))
        .service(resource(
            "/v1/me/recovery-codes",
            vec![(M::POST, to().to(me::regenerate_codes))],
        ))
        .service(resource(
            "/v1/me/factors",
            vec![
                (M::GET, to().to(factors::list)),
                (M::POST, to().to(factors::add)),
            ],
        ))
        .service(resource(
            "/v1/me/factors/{factor_id}",
            vec![
                (M::PATCH, to().to(factors::rename)),
                (M::DELETE, to().to(factors::remove)),
            ],
        ))
        .service(resource(
            "/v1/me/factors/{factor_id}/confirm",
            vec![(M::POST, to().to(factors::confirm))],
        ))
        .service(resource(
            "/v1/me/factors/{factor_id}/resync",
            vec![(M::POST, to().to(factors::resync))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/policy",
            vec![
                (M::GET, to().to(tenants::get_policy)),
                (M::PUT, to().to(tenants::put_policy)),
            ],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users",
            vec![(M::GET, to().to(tenants::list_users))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}",
            vec![(M::DELETE, to().to(tenants::delete_user))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}/totp",
            vec![(M::DELETE, to().to(tenants::reset_factor))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}/factors",
            vec![(M::GET, to().to(factors::admin_list))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}/factors/{factor_id}",
            vec![(M::DELETE, to().to(factors::admin_remove))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/users/{user_id}/unlock",
            vec![(M::POST, to().to(tenants::unlock))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/audit-events",
            vec![(M::GET, to().to(tenants::list_events))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks",
            vec![
                (M::GET, to().to(webhooks::list)),
                (M::POST, to().to(webhooks::create)),
            ],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks/{webhook_id}",
            vec![
                (M::GET, to().to(webhooks::get)),
                (M::PATCH, to().to(webhooks::update)),
                (M::DELETE, to().to(webhooks::delete)),
            ],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret",
            vec![(M::POST, to().to(webhooks::rotate))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test",
            vec![(M::POST, to().to(webhooks::test))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries",
            vec![(M::GET, to().to(webhooks::deliveries))],
        ))
        .service(resource(
            "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
            vec![(M::POST, to().to(webhooks::retry))],
        ));
}

/// The app-wide fallback: `404 not_found` as problem+json.
pub fn fallback() -> Route {
    web::route().to(not_found)
}
