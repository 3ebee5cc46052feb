//! "Refresh the credential, then call once more": the one way the crate recovers from WeChat
//! rejecting an access token (40001 / 40014 / 42001) — used by every API call of the client and
//! by the jsapi_ticket refresh.
//!
//! The token is fetched outside the API's resilience policy, so a slow or failing token endpoint
//! is never charged to the API's breaker or attempt limit, and the rejected value is invalidated
//! by compare-and-set, so a stale instance never wipes a fresh token.

use std::future::Future;
use std::pin::Pin;

use super::manager::TokenManager;
use super::record::{Token, TokenKind};
use crate::deadline::Deadline;
use crate::secret::Secret;
use crate::wechat::error::WechatError;

/// A boxed access-token lookup: the ticket refresh runs inside a refresh task and looks the
/// access token up, which may start another refresh task; the box keeps the future's type finite.
type Lookup<'a> = Pin<Box<dyn Future<Output = Result<Token, WechatError>> + Send + 'a>>;

impl TokenManager {
    /// Runs `call` with a valid access token; when WeChat rejects that token, invalidates it
    /// (compare-and-set) and runs `call` once more with a fresh one.
    ///
    /// # Errors
    /// The token lookup's error, or `call`'s last error.
    pub async fn with_access_token<T, F, Fut>(&self, deadline: Deadline, call: F) -> Result<T, WechatError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, WechatError>>,
    {
        let token = self.access_token_lookup(deadline).await?.value;
        match call(token.clone()).await {
            Err(error) if error.is_token_invalid() => {
                self.invalidate(TokenKind::AccessToken, &token, deadline).await;
                let fresh = self.access_token_lookup(deadline).await?.value;
                call(fresh).await
            }
            other => other,
        }
    }

    fn access_token_lookup(&self, deadline: Deadline) -> Lookup<'_> {
        Box::pin(self.get(TokenKind::AccessToken, deadline, self.config.refresh_wait))
    }
}
