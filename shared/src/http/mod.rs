//! HTTP helpers: the unified `{code, message, data}` response, error mapping, request ids, limits.
//!
//! Every JSON route answers with [`ApiBody`]; every failure is an [`ApiError`], turned into a
//! status and a client-safe body in exactly one place ([`ApiError::into_response`]). The route
//! wrapper ([`guard`]) adds the request id and turns a panic into a 500 with the same body.

mod auth;
mod error;
mod gateway;
mod guard;
mod limits;
mod request_id;
mod response;

pub use auth::require_internal;
pub use error::{ApiError, ErrorKind};
pub use gateway::to_http_api_response;
pub use guard::guard;
pub use limits::{body_bytes, query_param, query_params};
pub use request_id::{RequestId, request_id_of};
pub use response::{ApiBody, Response, json_response, text_response, xml_response};
