//! Request extractors that answer in problem+json: the JSON body (`body`: read, 16 KiB,
//! `application/json` only; `fields`: parsed, every bad or unknown field named), query
//! strings (`query`), ids in the path (`path_id`: `404` when one cannot exist), and who is calling
//! (`client`: address, user agent, bearer credential).

mod body;
mod client;
mod fields;
pub mod path_id;
mod query;

pub use body::{body_guard, read_capped, JsonBody, RawJson, MAX_BODY};
pub use client::bearer;
pub use query::Query;

pub use crate::services::ClientMeta;
