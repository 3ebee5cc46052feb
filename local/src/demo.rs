//! Embedded defaults: a demo account, so `wechat-local` runs with no configuration at all.

use shared::config::Env;

/// Demo callback token (the sample events in `events/` are signed with it).
pub const TOKEN: &str = "wechat-ha-demo-token";
/// Demo AppID.
pub const APPID: &str = "wx0123456789abcdef";
/// Demo EncodingAESKey.
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// Bearer key of the internal routes (`/messages/*`) with the demo account, when
/// `INTERNAL_API_KEY` is unset. Never with real credentials: with those (and no key) the local
/// server refuses `/messages/*`, since nothing else stands between the port and the account.
pub const INTERNAL_API_KEY: &str = "wechat-ha-local-key";

/// The process environment, with the demo account filled in when no account is configured
/// (no `WECHAT_TOKEN`, no callback secret, no AppSecret).
///
/// Returns whether the demo account is in use, so the banner can say so.
pub fn environment() -> (Env, bool) {
    let mut env = Env::from_process();
    let demo = env.optional("WECHAT_TOKEN").is_none()
        && env.optional("WECHAT_CALLBACK_SECRET_ID").is_none()
        && env.optional("WECHAT_APPSECRET").is_none()
        && env.optional("WECHAT_APPSECRET_SECRET_ID").is_none();
    if demo && env.optional("INTERNAL_API_KEY").is_none() {
        env.set("INTERNAL_API_KEY", INTERNAL_API_KEY);
    }
    if demo {
        env.set("WECHAT_TOKEN", TOKEN);
        env.set("WECHAT_APPID", APPID);
        env.set("WECHAT_ENCODING_AES_KEY", AES_KEY);
        if env.optional("WECHAT_ENCRYPT_MODE").is_none() {
            env.set("WECHAT_ENCRYPT_MODE", "compatible");
        }
    }
    (env, demo)
}
