//! The HTTP middleware. App-wide, outermost first: [`request`] (request id, span, access
//! log, body guard, problem bodies), [`edge`] (`HEAD`, the docs' headers), then CORS and
//! [`metrics`]; on each resource, after routing: [`request::panic_guard`] and [`limits`]
//! (body timeout, per-user turns, database deadline). `startup` and `http::resource` wrap them.

pub mod edge;
pub mod limits;
pub mod metrics;
pub mod request;
