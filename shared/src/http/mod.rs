//! HTTP helpers: the unified `{code, message, data}` response, error mapping, request ids, limits.
//!
//! Every JSON route answers with [`ApiBody`]; every failure is an [`ApiError`], turned into a
//! status and a client-safe body in exactly one place ([`ApiError::into_response`]); every domain
//! error becomes an `ApiError` through its one `From` impl (`errors.rs`). The route wrapper
//! ([`respond`]) adds the request id, logs, and turns a panic into a 500 with the same body.

mod auth;
mod error;
mod errors;
mod gateway;
mod limits;
mod query;
mod request_id;
mod respond;
mod response;

pub use auth::{caller, require_internal};
pub use error::{ApiError, ErrorKind};
pub use gateway::to_http_api_response;
pub use limits::{arrival_ms, body_bytes};
pub use query::{needs_decoding, query_pairs, query_param};
pub use request_id::{RequestId, request_id_of};
pub use respond::respond;
pub use response::{ApiBody, Response, json_response, json_response_raw, sealed_response, text_response, xml_response};
