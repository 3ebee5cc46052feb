//! User login: Official Account web authorization (OAuth 2.0, `snsapi_base` / `snsapi_userinfo`)
//! and mini-program login, with sessions the whole fleet shares.
//!
//! - [`session`]: opaque random session ids, sessions in the state store under the id's digest
//!   with a TTL, holding what no client may see (session_key, the user's WeChat tokens); a
//!   bounded memory of recent sessions keeps signed-in users working through a store outage;
//! - [`state`]: the OAuth `state`, bound to the browser (a cookie) and to the first code;
//! - [`return_to`]: the allow-list that keeps `/oauth/authorize` from being an open redirect;
//! - [`login`]: code exchanges exactly once (the ledger), a replay refused, the profile kept fresh;
//! - [`user_data`]: a mini-program's encrypted user data, its watermark and `rawData` signature;
//! - [`cookies`]: the `__Host-` cookies of the web login.
//!
//! The HTTP side is `routes::auth`; its configuration `config::AuthConfig`.

pub mod cookies;
pub mod login;
mod recent;
pub mod return_to;
pub mod session;
pub mod state;
pub mod user_data;

pub use cookies::CookiePolicy;
pub use login::{Exchange, LoginError, NewSession, ProfileState};
pub use return_to::{ReturnError, ReturnHosts};
pub use session::{Lookup, Session, SessionError, SessionId, SessionKind, SessionSecrets, Sessions};
pub use state::{LoginStates, STATE_TTL, StartedLogin, StateError};
pub use user_data::{UserDataError, check_raw_data, decrypt_user_data};
