//! Embedded defaults: a demo account, so `wechat-local` runs with no configuration at all.

use shared::config::Env;

/// Demo callback token (the sample events in `events/` are signed with it).
pub const TOKEN: &str = "wechat-ha-demo-token";
/// Demo AppID.
pub const APPID: &str = "wx0123456789abcdef";
/// Demo EncodingAESKey.
pub const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

/// Bearer key of the internal routes (`/messages/*`) when `INTERNAL_API_KEY` is unset.
pub const INTERNAL_API_KEY: &str = "wechat-ha-local-key";

/// The process environment, with the demo account filled in when no `WECHAT_TOKEN` is set.
///
/// Returns whether the demo account is in use, so the banner can say so.
pub fn environment() -> (Env, bool) {
    let mut env = Env::from_process();
    if env.optional("INTERNAL_API_KEY").is_none() {
        env.set("INTERNAL_API_KEY", INTERNAL_API_KEY);
    }
    let demo = env.optional("WECHAT_TOKEN").is_none();
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
