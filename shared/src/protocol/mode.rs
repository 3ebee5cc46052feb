//! The message encryption mode configured for an account in the WeChat admin console.

use std::fmt;
use std::str::FromStr;

/// 消息加解密方式: what the endpoint accepts.
///
/// | mode | plaintext POST (`signature`) | encrypted POST (`encrypt_type=aes`) |
/// |---|---|---|
/// | `Plain` | accepted | decrypted if keys are configured (mode switch in progress), else 400 |
/// | `Compatible` | accepted | decrypted |
/// | `Safe` | **rejected** (403): a spoofed plaintext POST must not bypass encryption | decrypted |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncryptMode {
    /// 明文模式.
    #[default]
    Plain,
    /// 兼容模式: plaintext fields and `Encrypt` in one body.
    Compatible,
    /// 安全模式: only `Encrypt`.
    Safe,
}

/// The mode string is not `plain`, `compatible` or `safe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid encrypt mode {0:?}: expected plain, compatible or safe")]
pub struct ParseModeError(pub String);

impl EncryptMode {
    /// Stable name: `plain`, `compatible` or `safe`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Compatible => "compatible",
            Self::Safe => "safe",
        }
    }

    /// Whether the mode needs a key ring (compatible and safe); configuration should fail without one.
    pub const fn requires_keys(self) -> bool {
        !matches!(self, Self::Plain)
    }

    /// Whether a plaintext POST (no `encrypt_type=aes`) is accepted.
    pub const fn accepts_plaintext(self) -> bool {
        !matches!(self, Self::Safe)
    }
}

impl FromStr for EncryptMode {
    type Err = ParseModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "plain" => Ok(Self::Plain),
            "compatible" => Ok(Self::Compatible),
            "safe" => Ok(Self::Safe),
            _ => Err(ParseModeError(s.to_owned())),
        }
    }
}

impl fmt::Display for EncryptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_round_trips_through_its_stable_name() {
        for mode in [EncryptMode::Plain, EncryptMode::Compatible, EncryptMode::Safe] {
            assert_eq!(mode.as_str().parse::<EncryptMode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.as_str());
        }
        assert_eq!(" SAFE ".parse::<EncryptMode>(), Ok(EncryptMode::Safe));
    }

    #[test]
    fn unknown_mode_is_rejected() {
        assert_eq!("aes".parse::<EncryptMode>(), Err(ParseModeError("aes".into())));
        assert_eq!("".parse::<EncryptMode>(), Err(ParseModeError(String::new())));
    }

    #[test]
    fn only_safe_mode_rejects_plaintext() {
        assert!(EncryptMode::Plain.accepts_plaintext() && EncryptMode::Compatible.accepts_plaintext());
        assert!(!EncryptMode::Safe.accepts_plaintext());
        assert!(!EncryptMode::Plain.requires_keys() && EncryptMode::Safe.requires_keys());
    }
}
