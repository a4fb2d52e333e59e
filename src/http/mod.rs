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
pub mod reply;
pub mod tenants;
pub mod ui;
pub mod webhooks;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, Route};

use crate::error::ApiError;
use reply::Reply;

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

async fn not_found(_req: HttpRequest) -> Reply {
    Err(ApiError::NotFound)
}

/// The route table, one row per method and path. The rows of a path stand together: they
/// make one resource, and its `405` lists their methods in this order in `Allow`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use web::to;
    use Method as M;
    #[rustfmt::skip]
    let table: Vec<(Method, &str, Route)> = vec![
        (M::GET,    "/",                                                                            to(ops::index)),
        (M::GET,    "/healthz",                                                                     to(ops::healthz)),
        (M::GET,    "/readyz",                                                                      to(ops::readyz)),
        (M::GET,    "/metrics",                                                                     to(ops::metrics)),
        (M::GET,    "/.well-known/jwks.json",                                                       to(ops::jwks)),
        (M::GET,    "/openapi.json",                                                                to(ops::openapi)),
        (M::GET,    "/docs",                                                                        to(ops::docs_redirect)),
        (M::GET,    "/ui",                                                                          to(ui::redirect)),
        (M::GET,    "/ui/",                                                                         to(ui::index)),
        (M::GET,    "/ui/{file}",                                                                   to(ui::asset)),
        (M::POST,   "/v1/logins",                                                                   to(logins::start)),
        (M::GET,    "/v1/logins/{login_id}",                                                        to(logins::get)),
        (M::POST,   "/v1/logins/{login_id}/totp-enrollment",                                        to(logins::start_enrollment)),
        (M::POST,   "/v1/logins/{login_id}/totp-enrollment/confirm",                                to(logins::confirm_enrollment)),
        (M::POST,   "/v1/logins/{login_id}/verify",                                                 to(logins::verify)),
        (M::POST,   "/v1/logins/{login_id}/recover",                                                to(logins::recover)),
        (M::POST,   "/v1/logins/{login_id}/resync",                                                 to(logins::resync)),
        (M::POST,   "/v1/logins/{login_id}/webauthn-challenge",                                     to(passkeys::challenge)),
        (M::POST,   "/v1/logins/{login_id}/webauthn",                                               to(passkeys::sign_in)),
        (M::POST,   "/v1/logins/{login_id}/webauthn-enrollment",                                    to(passkeys::start_enrollment)),
        (M::POST,   "/v1/logins/{login_id}/webauthn-enrollment/confirm",                            to(passkeys::confirm_enrollment)),
        (M::GET,    "/v1/me",                                                                       to(me::show)),
        (M::POST,   "/v1/me/totp-enrollment",                                                       to(me::start_enrollment)),
        (M::POST,   "/v1/me/totp-enrollment/confirm",                                               to(me::confirm_enrollment)),
        (M::DELETE, "/v1/me/totp",                                                                  to(me::remove_factor)),
        (M::POST,   "/v1/logins/{login_id}/skip-enrollment",                                        to(logins::skip_enrollment)),
        (M::GET,    "/v1/me/devices",                                                               to(devices::list_mine)),
        (M::DELETE, "/v1/me/devices",                                                               to(devices::revoke_all_mine)),
        (M::DELETE, "/v1/me/devices/{device_id}",                                                   to(devices::revoke_mine)),
        (M::GET,    "/v1/tenants/{tenant_id}/users/{user_id}/devices",                              to(devices::list_for_user)),
        (M::DELETE, "/v1/tenants/{tenant_id}/users/{user_id}/devices",                              to(devices::revoke_for_user)),
        (M::GET,    "/v1/tenants/{tenant_id}/mfa-summary",                                          to(devices::summary)),
        (M::POST,   "/v1/me/reauthenticate",                                                        to(me::reauthenticate)),
        (M::POST,   "/v1/me/reauthenticate/webauthn-challenge",                                     to(me::reauthenticate_challenge)),
        (M::POST,   "/v1/me/recovery-codes",                                                        to(me::regenerate_codes)),
        (M::GET,    "/v1/me/factors",                                                               to(factors::list)),
        (M::POST,   "/v1/me/factors",                                                               to(factors::add)),
        (M::PATCH,  "/v1/me/factors/{factor_id}",                                                   to(factors::rename)),
        (M::DELETE, "/v1/me/factors/{factor_id}",                                                   to(factors::remove)),
        (M::POST,   "/v1/me/factors/{factor_id}/confirm",                                           to(factors::confirm)),
        (M::POST,   "/v1/me/factors/{factor_id}/resync",                                            to(factors::resync)),
        (M::GET,    "/v1/tenants/{tenant_id}/policy",                                               to(tenants::get_policy)),
        (M::PUT,    "/v1/tenants/{tenant_id}/policy",                                               to(tenants::put_policy)),
        (M::GET,    "/v1/tenants/{tenant_id}/users",                                                to(tenants::list_users)),
        (M::DELETE, "/v1/tenants/{tenant_id}/users/{user_id}",                                      to(tenants::delete_user)),
        (M::DELETE, "/v1/tenants/{tenant_id}/users/{user_id}/totp",                                 to(tenants::reset_factor)),
        (M::GET,    "/v1/tenants/{tenant_id}/users/{user_id}/factors",                              to(factors::admin_list)),
        (M::DELETE, "/v1/tenants/{tenant_id}/users/{user_id}/factors/{factor_id}",                  to(factors::admin_remove)),
        (M::POST,   "/v1/tenants/{tenant_id}/users/{user_id}/unlock",                               to(tenants::unlock)),
        (M::GET,    "/v1/tenants/{tenant_id}/audit-events",                                         to(tenants::list_events)),
        (M::GET,    "/v1/tenants/{tenant_id}/webhooks",                                             to(webhooks::list)),
        (M::POST,   "/v1/tenants/{tenant_id}/webhooks",                                             to(webhooks::create)),
        (M::GET,    "/v1/tenants/{tenant_id}/webhooks/{webhook_id}",                                to(webhooks::get)),
        (M::PATCH,  "/v1/tenants/{tenant_id}/webhooks/{webhook_id}",                                to(webhooks::update)),
        (M::DELETE, "/v1/tenants/{tenant_id}/webhooks/{webhook_id}",                                to(webhooks::delete)),
        (M::POST,   "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/rotate-secret",                  to(webhooks::rotate)),
        (M::POST,   "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/test",                           to(webhooks::test)),
        (M::GET,    "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries",                     to(webhooks::deliveries)),
        (M::POST,   "/v1/tenants/{tenant_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", to(webhooks::retry)),
    ];
    let mut rows = table.into_iter().peekable();
    while let Some((method, path, route)) = rows.next() {
        let mut methods = vec![(method, route)];
        while let Some((m, _, r)) = rows.next_if(|(_, p, _)| *p == path) {
            methods.push((m, r));
        }
        cfg.service(resource(path, methods));
    }
}

/// The app-wide fallback: `404 not_found` as problem+json.
pub fn fallback() -> Route {
    web::route().to(not_found)
}
