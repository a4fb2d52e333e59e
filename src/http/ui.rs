//! The reference sign-in and settings pages (docs/API.md §18): plain HTML, CSS and
//! JavaScript from the top-level `ui/` folder, compiled into the binary and served under
//! `/ui/` with a strict Content-Security-Policy. The embed and return origins reach the page
//! in `<meta>` elements of the HTML it is served with (§21), never through an endpoint.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use super::reply::{Data, Reply};
use crate::error::ApiError;
use crate::state::AppState;

const INDEX: &str = include_str!("../../ui/index.html");

/// `(file name, body)` of each listed file of the top-level `ui/` folder, compiled in.
macro_rules! ui_files {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../ui/", $name)))),+]
    };
}

/// Every asset under `/ui/`: the stylesheet, then the scripts.
const ASSETS: &[(&str, &str)] = ui_files![
    "app.css",
    "app.js",
    "api.js",
    "dom.js",
    "handoff.js",
    "welcome.js",
    "setup.js",
    "signin.js",
    "passkey.js",
    "reauth.js",
    "security.js",
    "admin.js",
    "more.js",
];

/// The content type of an asset, by its file name.
fn content_type(name: &str) -> &'static str {
    if name.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

/// The page's policy: only its own files, images also as `data:` URLs (the QR code), no
/// inline script or style, framed only by the configured embed origins.
pub fn content_security_policy(embed_origins: &[String]) -> String {
    let ancestors = if embed_origins.is_empty() {
        "'none'".to_owned()
    } else {
        embed_origins.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    )
}

/// `s` safe inside a double-quoted HTML attribute.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page with the configured origins in its `<meta>` elements.
pub fn render_index(embed_origins: &[String], return_origins: &[String]) -> String {
    INDEX
        .replace("{{EMBED_ORIGINS}}", &attr(&embed_origins.join(" ")))
        .replace("{{RETURN_ORIGINS}}", &attr(&return_origins.join(" ")))
}

fn secured(mut res: HttpResponse, state: &AppState) -> HttpResponse {
    let csp = content_security_policy(&state.settings.ui_embed_origins);
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `/ui` → `/ui/`.
pub async fn redirect(state: Data) -> Reply {
    if !state.settings.ui {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish())
}

/// `GET /ui/`: the page.
pub async fn index(state: Data) -> Reply {
    if !state.settings.ui {
        return Err(ApiError::NotFound);
    }
    let s = &state.settings;
    let body = render_index(&s.ui_embed_origins, &s.ui_return_origins);
    let res = HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body);
    Ok(secured(res, &state))
}

/// `GET /ui/{file}`: a stylesheet or script of the page.
pub async fn asset(state: Data, file: web::Path<String>) -> Reply {
    if !state.settings.ui {
        return Err(ApiError::NotFound);
    }
    let (name, body) = ASSETS
        .iter()
        .find(|(name, _)| *name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    let res = HttpResponse::Ok()
        .content_type(content_type(name))
        .body(*body);
    Ok(secured(res, &state))
}
