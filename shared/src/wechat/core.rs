//! Guarded calls without tokens: one API call under its policy, failing over across domains.
//! The part the client and the token manager's upstream source share.

use serde_json::Value;

use super::api::{ApiPolicies, ApiPolicy};
use super::error::WechatError;
use super::failover::Domains;
use super::policy::CallPolicies;
use super::transport::{Call, Transport};
use crate::deadline::Deadline;

/// The transport, the domains and the policies of one client.
#[derive(Debug)]
pub(crate) struct Core {
    pub transport: Transport,
    pub domains: Domains,
    pub policies: CallPolicies,
    pub settings: ApiPolicies,
}

impl Core {
    fn policy(&self, call: &Call<'_>) -> ApiPolicy {
        self.settings.get(call.api)
    }

    /// `call` under its API's policy, with failover. A rejected token (40001 / 40014 / 42001)
    /// is returned, not retried: resending the same token cannot help, the caller refreshes.
    pub async fn call(&self, call: &Call<'_>, deadline: Deadline) -> Result<Value, WechatError> {
        let policy = self.policy(call);
        let policy = &policy;
        self.policies
            .run(call.api, policy.idempotent, deadline, |_attempt| async move {
                self.domains
                    .attempt(
                        &self.transport,
                        &self.policies,
                        call,
                        policy.idempotent,
                        policy.timeout,
                        deadline,
                    )
                    .await
            })
            .await
    }
}
