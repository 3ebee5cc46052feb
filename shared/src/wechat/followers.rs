//! The follower APIs: `user/get` (pages of openids), `user/info/batchget` (profiles, 100 at a
//! time) and `tags/get`, all with the fleet's access token under the `wechat.user` breaker; and
//! `get_callback_ip`, the account-level read the WAF allow-list is built from.

use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Api;
use super::client::WechatClient;
use super::error::WechatError;
use crate::deadline::Deadline;

/// Most openids `user/info/batchget` takes in one call.
pub const PROFILE_BATCH: usize = 100;

/// One page of the follower list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerPage {
    /// Followers in all.
    pub total: u64,
    /// This page's openids (up to 10,000; none at the end of the list).
    pub openids: Vec<String>,
    /// Where the next page starts (the page's last openid; WeChat answers an empty page after it).
    pub next_openid: String,
}

impl FollowerPage {
    /// Whether the list is exhausted (an empty page, or no cursor to go on from).
    pub fn is_last(&self) -> bool {
        self.openids.is_empty() || self.next_openid.is_empty()
    }
}

/// One of the account's tags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Followers carrying it.
    #[serde(default)]
    pub count: i64,
}

#[derive(Deserialize)]
struct PageAnswer {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    data: Option<PageData>,
    #[serde(default)]
    next_openid: String,
}

#[derive(Deserialize)]
struct PageData {
    #[serde(default)]
    openid: Vec<String>,
}

fn decode<T: serde::de::DeserializeOwned>(api: Api, value: Value) -> Result<T, WechatError> {
    serde_json::from_value(value).map_err(|e| WechatError::Decode {
        domain: api.name().to_owned(),
        message: format!("unexpected answer shape: {e}"),
    })
}

impl WechatClient {
    /// The page of followers after `next_openid` (empty: the first page).
    ///
    /// # Errors
    /// [`WechatError`]; 45009 as [`WechatError::QuotaExhausted`] until the daily reset.
    pub async fn follower_page(&self, next_openid: &str, deadline: Deadline) -> Result<FollowerPage, WechatError> {
        let answer = self
            .call_with_token_and_query(Api::UserList, &[("next_openid", next_openid)], None, deadline)
            .await?;
        let page: PageAnswer = decode(Api::UserList, answer)?;
        Ok(FollowerPage {
            total: page.total,
            openids: page.data.map(|d| d.openid).unwrap_or_default(),
            next_openid: page.next_openid,
        })
    }

    /// The profiles of up to [`PROFILE_BATCH`] followers, in the order asked (WeChat's records:
    /// `subscribe`, `openid`, `unionid`, `subscribe_time`, `remark`, `tagid_list`, …).
    ///
    /// # Errors
    /// [`WechatError`]; more than [`PROFILE_BATCH`] openids is a caller bug, refused before any call.
    pub async fn follower_profiles(&self, openids: &[String], deadline: Deadline) -> Result<Vec<Value>, WechatError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            user_info_list: Vec<Value>,
        }
        if openids.is_empty() {
            return Ok(Vec::new());
        }
        if openids.len() > PROFILE_BATCH {
            return Err(WechatError::Decode {
                domain: Api::UserInfoBatch.name().to_owned(),
                message: format!("{} openids asked; at most {PROFILE_BATCH}", openids.len()),
            });
        }
        let user_list: Vec<Value> = openids
            .iter()
            .map(|openid| json!({ "openid": openid, "lang": "zh_CN" }))
            .collect();
        let body = json!({ "user_list": user_list });
        let answer = self.call_with_token(Api::UserInfoBatch, Some(&body), deadline).await?;
        Ok(decode::<Answer>(Api::UserInfoBatch, answer)?.user_info_list)
    }

    /// The addresses WeChat's callback servers send from (`ip_list`, addresses or CIDR blocks).
    ///
    /// # Errors
    /// [`WechatError`].
    pub async fn callback_ips(&self, deadline: Deadline) -> Result<Vec<String>, WechatError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            ip_list: Vec<String>,
        }
        let answer = self.call_with_token(Api::CallbackIp, None, deadline).await?;
        Ok(decode::<Answer>(Api::CallbackIp, answer)?.ip_list)
    }

    /// The account's tags.
    ///
    /// # Errors
    /// [`WechatError`].
    pub async fn tags(&self, deadline: Deadline) -> Result<Vec<Tag>, WechatError> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            tags: Vec<Tag>,
        }
        let answer = self.call_with_token(Api::TagsGet, None, deadline).await?;
        Ok(decode::<Answer>(Api::TagsGet, answer)?.tags)
    }
}
