//! The reference sign-in and settings pages (docs/API.md §18): plain HTML, CSS and
//! JavaScript from the top-level `ui/` folder, compiled into the binary and served under
//! `/ui/` with a strict Content-Security-Policy. The embed and return origins reach the page
//! in `<meta>` elements of the HTML it is served with (§21), never through an endpoint.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

type Data = web::Data<AppState>;

const INDEX: &str = include_str!("../../ui/index.html");

/// `(file name, content type, body)` of every asset under `/ui/`.
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.css", CSS, include_str!("../../ui/app.css")),
    ("app.js", JS, include_str!("../../ui/app.js")),
    ("api.js", JS, include_str!("../../ui/api.js")),
    ("dom.js", JS, include_str!("../../ui/dom.js")),
    ("handoff.js", JS, include_str!("../../ui/handoff.js")),
    ("welcome.js", JS, include_str!("../../ui/welcome.js")),
    ("setup.js", JS, include_str!("../../ui/setup.js")),
    ("signin.js", JS, include_str!("../../ui/signin.js")),
    ("passkey.js", JS, include_str!("../../ui/passkey.js")),
    ("reauth.js", JS, include_str!("../../ui/reauth.js")),
    ("security.js", JS, include_str!("../../ui/security.js")),
    ("admin.js", JS, include_str!("../../ui/admin.js")),
    ("more.js", JS, include_str!("../../ui/more.js")),
];
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

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
pub async fn redirect(state: Data) -> Result<HttpResponse, ApiError> {
    if !state.settings.ui {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish())
}

/// `GET /ui/`: the page.
pub async fn index(state: Data) -> Result<HttpResponse, ApiError> {
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
pub async fn asset(state: Data, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    if !state.settings.ui {
        return Err(ApiError::NotFound);
    }
    let (_, mime, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    let res = HttpResponse::Ok().content_type(*mime).body(*body);
    Ok(secured(res, &state))
}
