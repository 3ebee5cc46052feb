//! The user-login APIs: web authorization (`/sns/oauth2/*`, `/sns/userinfo`) for an Official
//! Account, `jscode2session` and the phone number for a mini-program.
//!
//! Each runs under its API's policy (`api.rs`): exchanging a one-time code is not idempotent (a
//! timeout is not retried: the code may be spent), refreshing a user's token and reading a
//! profile are. What comes back that must never leave the server — the user's web access_token
//! and refresh_token, the mini-program session_key — is a [`Secret`].

use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Api;
use super::client::WechatClient;
use super::error::WechatError;
use super::transport::Call;
use crate::deadline::Deadline;
use crate::secret::Secret;

/// A user's web-authorization grant (`/sns/oauth2/access_token` or `refresh_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthGrant {
    /// The user's access token (not the account's), for `/sns/userinfo`.
    pub access_token: Secret,
    /// Its lifetime, seconds (7200).
    pub expires_in: i64,
    /// Renews `access_token` for 30 days.
    pub refresh_token: Secret,
    /// The user, for this account.
    pub openid: String,
    /// `snsapi_base` or `snsapi_userinfo` (comma-separated when several).
    pub scope: String,
    /// The user across the developer's accounts (when bound to an Open Platform account).
    pub unionid: Option<String>,
    /// A "snapshot page" virtual user (`is_snapshotuser` = 1): no real identity behind it.
    pub is_snapshot_user: bool,
}

#[derive(Deserialize)]
struct GrantAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: i64,
    refresh_token: String,
    openid: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    is_snapshotuser: i64,
}

impl From<GrantAnswer> for OauthGrant {
    fn from(answer: GrantAnswer) -> Self {
        Self {
            access_token: Secret::new(answer.access_token),
            expires_in: answer.expires_in,
            refresh_token: Secret::new(answer.refresh_token),
            openid: answer.openid,
            scope: answer.scope,
            unionid: answer.unionid.filter(|u| !u.is_empty()),
            is_snapshot_user: answer.is_snapshotuser == 1,
        }
    }
}

/// A mini-program login (`jscode2session`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniProgramSession {
    /// The user, for this mini-program.
    pub openid: String,
    /// The key of the user's encrypted data; never sent to any client.
    pub session_key: Secret,
    /// The user across the developer's accounts (when bound).
    pub unionid: Option<String>,
}

#[derive(Deserialize)]
struct SessionAnswer {
    openid: String,
    session_key: String,
    #[serde(default)]
    unionid: Option<String>,
}

/// A phone number (`getuserphonenumber`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PhoneNumber {
    /// With the country code for numbers outside mainland China.
    #[serde(rename = "phoneNumber")]
    pub phone_number: String,
    /// Without the country code.
    #[serde(rename = "purePhoneNumber")]
    pub pure_phone_number: String,
    /// The country code (WeChat sends a string or a number).
    #[serde(rename = "countryCode", deserialize_with = "string_or_number")]
    pub country_code: String,
    /// The mini-program the number was issued for (its watermark), checked by the caller.
    #[serde(skip_serializing, default)]
    pub watermark_appid: String,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        other => Err(serde::de::Error::custom(format!("countryCode: unexpected {other}"))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(api: Api, value: Value) -> Result<T, WechatError> {
    serde_json::from_value(value).map_err(|e| WechatError::Decode {
        domain: api.name().to_owned(),
        message: format!("unexpected answer shape: {e}"),
    })
}

impl WechatClient {
    /// Exchanges a web-authorization `code` (valid once, for 5 minutes) for the user's grant.
    ///
    /// # Errors
    /// 40029 / 40163 / 42003 (invalid, used or expired code) as [`WechatError::Api`], never
    /// retried; transport and breaker errors as usual.
    pub async fn exchange_oauth_code(&self, code: &str, deadline: Deadline) -> Result<OauthGrant, WechatError> {
        let call = Call {
            api: Api::OauthCode,
            query: vec![
                ("appid", Secret::new(self.appid())),
                ("secret", self.appsecret().clone()),
                ("code", Secret::new(code)),
                ("grant_type", Secret::new("authorization_code")),
            ],
            body: None,
        };
        let answer: GrantAnswer = decode(Api::OauthCode, self.call_without_token(&call, deadline).await?)?;
        Ok(answer.into())
    }

    /// Renews a user's web-authorization token with their `refresh_token` (30 days).
    ///
    /// # Errors
    /// 40030 / 42002 (refresh token invalid or expired: the user must authorize again).
    pub async fn refresh_oauth(&self, refresh_token: &Secret, deadline: Deadline) -> Result<OauthGrant, WechatError> {
        let call = Call {
            api: Api::OauthRefresh,
            query: vec![
                ("appid", Secret::new(self.appid())),
                ("grant_type", Secret::new("refresh_token")),
                ("refresh_token", refresh_token.clone()),
            ],
            body: None,
        };
        let answer: GrantAnswer = decode(Api::OauthRefresh, self.call_without_token(&call, deadline).await?)?;
        Ok(answer.into())
    }

    /// The user's profile as WeChat gives it (`nickname`, `headimgurl`, `privilege`, …), with
    /// the user's own access token (scope `snsapi_userinfo`, else 48001).
    ///
    /// # Errors
    /// 40001 / 42001 when the user's token is invalid or expired (refresh it).
    pub async fn oauth_userinfo(
        &self,
        access_token: &Secret,
        openid: &str,
        deadline: Deadline,
    ) -> Result<Value, WechatError> {
        let call = Call {
            api: Api::OauthUserinfo,
            query: vec![
                ("access_token", access_token.clone()),
                ("openid", Secret::new(openid)),
                ("lang", Secret::new("zh_CN")),
            ],
            body: None,
        };
        let mut profile = self.call_without_token(&call, deadline).await?;
        if let Some(object) = profile.as_object_mut() {
            object.remove("errcode");
            object.remove("errmsg");
        }
        Ok(profile)
    }

    /// Exchanges a mini-program `wx.login` code for the user's openid and session_key.
    ///
    /// # Errors
    /// 40029 (invalid code), 40226 (login blocked for a high-risk user), 45011 (the user's
    /// minute quota), as [`WechatError::Api`].
    pub async fn code_to_session(&self, js_code: &str, deadline: Deadline) -> Result<MiniProgramSession, WechatError> {
        let call = Call {
            api: Api::JsCodeSession,
            query: vec![
                ("appid", Secret::new(self.appid())),
                ("secret", self.appsecret().clone()),
                ("js_code", Secret::new(js_code)),
                ("grant_type", Secret::new("authorization_code")),
            ],
            body: None,
        };
        let answer: SessionAnswer = decode(Api::JsCodeSession, self.call_without_token(&call, deadline).await?)?;
        Ok(MiniProgramSession {
            openid: answer.openid,
            session_key: Secret::new(answer.session_key),
            unionid: answer.unionid.filter(|u| !u.is_empty()),
        })
    }

    /// The phone number a mini-program's one-time phone `code` stands for; `openid` (the
    /// session's user) makes WeChat check that the code was issued to that user.
    ///
    /// # Errors
    /// 40029 (invalid or used code) as [`WechatError::Api`]; token errors are handled by the
    /// token manager (one refresh).
    pub async fn phone_number(&self, code: &str, openid: &str, deadline: Deadline) -> Result<PhoneNumber, WechatError> {
        #[derive(Deserialize)]
        struct Watermark {
            #[serde(default)]
            appid: String,
        }
        #[derive(Deserialize)]
        struct Info {
            #[serde(flatten)]
            number: PhoneNumber,
            #[serde(default)]
            watermark: Option<Watermark>,
        }
        #[derive(Deserialize)]
        struct Answer {
            phone_info: Info,
        }
        let body = json!({ "code": code, "openid": openid });
        let answer = self.call_with_token(Api::PhoneNumber, Some(&body), deadline).await?;
        let Answer { phone_info } = decode(Api::PhoneNumber, answer)?;
        let mut number = phone_info.number;
        number.watermark_appid = phone_info.watermark.map(|w| w.appid).unwrap_or_default();
        Ok(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_keeps_its_tokens_secret_and_drops_an_empty_unionid() {
        let answer: GrantAnswer = serde_json::from_value(json!({
            "access_token": "USER_TOKEN", "expires_in": 7200, "refresh_token": "REFRESH",
            "openid": "o1", "scope": "snsapi_userinfo", "unionid": "", "is_snapshotuser": 1
        }))
        .unwrap();
        let grant = OauthGrant::from(answer);
        assert_eq!(grant.unionid, None);
        assert!(grant.is_snapshot_user);
        let printed = format!("{grant:?}");
        assert!(
            !printed.contains("USER_TOKEN") && !printed.contains("REFRESH"),
            "{printed}"
        );
    }

    #[test]
    fn a_country_code_may_be_a_string_or_a_number() {
        for code in [json!("86"), json!(86)] {
            let number: PhoneNumber = serde_json::from_value(json!({
                "phoneNumber": "13800138000", "purePhoneNumber": "13800138000", "countryCode": code
            }))
            .unwrap();
            assert_eq!(number.country_code, "86");
        }
    }
}
