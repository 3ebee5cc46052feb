//! Keeps the WAF IP set of WeChat's callback servers current: `GET /cgi-bin/get_callback_ip`,
//! then — when the list changed — `UpdateIPSet` (a whole-list replace under the set's lock token,
//! read again and retried when another writer got there first). A list WeChat answers empty or
//! unusable never empties the set: an empty allow-list would drop every real callback.

use std::net::Ipv4Addr;

use aws_sdk_wafv2::types::Scope;
use serde::Serialize;
use shared::config::IpSetRef;
use shared::deadline::Deadline;
use shared::wechat::WechatClient;

/// Attempts of a read-modify-write against a concurrent writer.
const LOCK_ATTEMPTS: usize = 3;

/// What one refresh did (the invocation's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// The addresses now in the set.
    pub addresses: usize,
    /// Whether the set was written.
    pub changed: bool,
}

/// WeChat's `ip_list` as the set's CIDR blocks (`/32` for a bare address), sorted, deduplicated.
///
/// # Errors
/// An entry that is not an IPv4 address or block, or an empty list: nothing is written then.
pub fn cidrs(ips: &[String]) -> Result<Vec<String>, String> {
    let mut blocks = Vec::with_capacity(ips.len());
    for ip in ips {
        let (address, prefix) = ip.trim().split_once('/').unwrap_or((ip.trim(), "32"));
        let address: Ipv4Addr = address.parse().map_err(|_| format!("{ip:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| format!("{ip:?} has no prefix length from 1 to 32"))?;
        blocks.push(format!("{address}/{prefix}"));
    }
    blocks.sort();
    blocks.dedup();
    if blocks.is_empty() {
        return Err("WeChat listed no callback address: the set is left as it is".to_owned());
    }
    Ok(blocks)
}

/// One refresh of `set` from WeChat's list.
///
/// # Errors
/// WeChat, the list, or WAF failed (the set is unchanged).
pub async fn refresh(
    wechat: &WechatClient,
    waf: &aws_sdk_wafv2::Client,
    set: &IpSetRef,
    deadline: Deadline,
) -> Result<RefreshReport, String> {
    let listed = wechat.callback_ips(deadline).await.map_err(|e| e.to_string())?;
    let wanted = cidrs(&listed)?;
    let scope = Scope::from(set.scope.as_str());
    for _ in 0..LOCK_ATTEMPTS {
        let current = waf
            .get_ip_set()
            .name(&set.name)
            .id(&set.id)
            .scope(scope.clone())
            .send()
            .await
            .map_err(|e| format!("GetIPSet: {}", aws_sdk_wafv2::error::DisplayErrorContext(&e)))?;
        let lock_token = current.lock_token().unwrap_or_default().to_owned();
        let mut have: Vec<String> = current.ip_set().map(|s| s.addresses().to_vec()).unwrap_or_default();
        have.sort();
        if have == wanted {
            return Ok(RefreshReport {
                addresses: wanted.len(),
                changed: false,
            });
        }
        let updated = waf
            .update_ip_set()
            .name(&set.name)
            .id(&set.id)
            .scope(scope.clone())
            .set_addresses(Some(wanted.clone()))
            .lock_token(lock_token)
            .send()
            .await;
        match updated {
            Ok(_) => {
                tracing::info!(addresses = wanted.len(), "WeChat callback IP set updated");
                return Ok(RefreshReport {
                    addresses: wanted.len(),
                    changed: true,
                });
            }
            Err(error)
                if error.as_service_error().is_some_and(
                    aws_sdk_wafv2::operation::update_ip_set::UpdateIPSetError::is_waf_optimistic_lock_exception,
                ) =>
            {
                tracing::info!("IP set changed meanwhile; reading it again");
            }
            Err(error) => {
                return Err(format!(
                    "UpdateIPSet: {}",
                    aws_sdk_wafv2::error::DisplayErrorContext(&error)
                ));
            }
        }
    }
    Err("the IP set kept changing; the next run retries".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_blocks_and_bad_lists_write_nothing() {
        let list = |ips: &[&str]| ips.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            cidrs(&list(&["101.226.103.0/25", "203.0.113.7", " 203.0.113.7 "])).unwrap(),
            ["101.226.103.0/25", "203.0.113.7/32"]
        );
        assert!(cidrs(&[]).is_err());
        assert!(cidrs(&list(&["not-an-ip"])).is_err());
        assert!(cidrs(&list(&["10.0.0.0/0"])).is_err(), "/0 would allow everyone");
    }
}
