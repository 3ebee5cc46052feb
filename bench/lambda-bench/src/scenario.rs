//! The scenarios: which function, with which configuration (the template's, pointed at the
//! emulators), fed which events.

use std::fmt;
use std::str::FromStr;

/// The callback's demo account (`scripts/make_events.py`); the driver script stores the same
/// token and EncodingAESKey in the callback secret it creates.
pub const CALLBACK_TOKEN: &str = "wechat-ha-demo-token";
/// The AppID the demo callback account's messages are encrypted for.
pub const CALLBACK_APPID: &str = "wx0123456789abcdef";
/// The demo EncodingAESKey.
pub const CALLBACK_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// The account `wechat-mock` knows by default (its AppSecret, `mock_app_secret`, is the
/// AppSecret secret the driver script creates).
pub const API_APPID: &str = "wx_mock_appid";

/// What is invoked, and with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The callback, a plaintext text message (plain mode).
    CallbackPlain,
    /// The callback, an encrypted text message (safe mode).
    CallbackSafe,
    /// The send API, `POST /messages/custom`.
    Send,
    /// The send worker, an SQS batch of two jobs.
    SendWorker,
    /// The token refresh, its EventBridge schedule.
    TokenRefresh,
    /// `lambda-bench-echo`, the harness's own test function.
    Echo,
}

impl Workload {
    /// Every workload the benchmark runs (not the echo).
    pub const FUNCTIONS: [Self; 5] = [
        Self::CallbackPlain,
        Self::CallbackSafe,
        Self::Send,
        Self::SendWorker,
        Self::TokenRefresh,
    ];

    /// The scenario's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CallbackPlain => "callback-plain",
            Self::CallbackSafe => "callback-safe",
            Self::Send => "send",
            Self::SendWorker => "send-worker",
            Self::TokenRefresh => "token-refresh",
            Self::Echo => "echo",
        }
    }

    /// The function's binary (and `AWS_LAMBDA_FUNCTION_NAME`).
    pub fn binary(self) -> &'static str {
        match self {
            Self::CallbackPlain | Self::CallbackSafe => "callback",
            Self::Send => "send",
            Self::SendWorker => "send-worker",
            Self::TokenRefresh => "token-refresh",
            Self::Echo => "lambda-bench-echo",
        }
    }
}

/// Where the function keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `STATE_STORE=memory`.
    Memory,
    /// `STATE_STORE=dynamodb` (the template's), the table on the emulator.
    Dynamodb,
}

impl Store {
    /// `memory` or `dynamodb`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Dynamodb => "dynamodb",
        }
    }
}

/// A workload with a store: `callback-plain:memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// What is invoked.
    pub workload: Workload,
    /// Where its state lives.
    pub store: Store,
}

impl Scenario {
    /// The echo (the floor: what the runtime client alone costs), then every function scenario
    /// with each store.
    pub fn all() -> Vec<Self> {
        let echo = Self {
            workload: Workload::Echo,
            store: Store::Memory,
        };
        let functions = Workload::FUNCTIONS.into_iter().flat_map(|workload| {
            [Store::Memory, Store::Dynamodb]
                .into_iter()
                .map(move |store| Self { workload, store })
        });
        std::iter::once(echo).chain(functions).collect()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.workload {
            // The echo keeps no state.
            Workload::Echo => f.write_str(Workload::Echo.name()),
            workload => write!(f, "{}:{}", workload.name(), self.store.name()),
        }
    }
}

impl FromStr for Scenario {
    type Err = String;

    /// `callback-plain:memory`, `send:dynamodb`; without a store, `memory`.
    fn from_str(text: &str) -> Result<Self, String> {
        let (workload, store) = text.split_once(':').unwrap_or((text, "memory"));
        let workload = Workload::FUNCTIONS
            .into_iter()
            .chain([Workload::Echo])
            .find(|w| w.name() == workload)
            .ok_or_else(|| format!("unknown scenario {workload:?}"))?;
        let store = match store {
            "memory" => Store::Memory,
            "dynamodb" => Store::Dynamodb,
            other => return Err(format!("unknown store {other:?} (memory or dynamodb)")),
        };
        Ok(Self { workload, store })
    }
}

/// Where the emulated AWS and WeChat live, and what the driver created there.
#[derive(Debug, Clone, Default)]
pub struct Infra {
    /// `AWS_ENDPOINT_URL` (moto).
    pub aws_endpoint: Option<String>,
    /// `WECHAT_API_BASE` (wechat-mock's domains).
    pub wechat_api_base: Option<String>,
    /// `DYNAMODB_TABLE`.
    pub table: Option<String>,
    /// `SEND_QUEUE_URL`.
    pub queue_url: Option<String>,
    /// `WECHAT_CALLBACK_SECRET_ID`: `{"token", "encoding_aes_key"}` of the demo account.
    pub callback_secret_id: Option<String>,
    /// `WECHAT_APPSECRET_SECRET_ID`: the mock account's AppSecret.
    pub appsecret_secret_id: Option<String>,
}

/// An environment being assembled; a missing setting names the flag that provides it.
#[derive(Debug, Default)]
struct EnvBuilder(Vec<(String, String)>);

impl EnvBuilder {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_owned(), value.into()));
    }

    fn set_from(&mut self, name: &str, value: Option<&String>, flag: &str) -> Result<(), String> {
        let value = value.ok_or_else(|| format!("{name} is needed: pass {flag}"))?;
        self.set(name, value.clone());
        Ok(())
    }
}

/// The function's whole environment: what Lambda sets, the template's globals and the
/// function's own variables (template.yaml), with the emulators' endpoints and test keys.
///
/// # Errors
/// A setting the scenario needs is missing from `infra` (the message names its flag).
pub fn function_env(scenario: Scenario, infra: &Infra, runtime_api: &str) -> Result<Vec<(String, String)>, String> {
    let mut env = EnvBuilder::default();
    lambda_env(&mut env, scenario.workload.binary(), runtime_api);
    if scenario.workload == Workload::Echo {
        return Ok(env.0);
    }
    env.set_from("AWS_ENDPOINT_URL", infra.aws_endpoint.as_ref(), "--aws-endpoint")?;
    // Lambda passes the role's credentials as variables too; moto takes any.
    env.set("AWS_ACCESS_KEY_ID", "test");
    env.set("AWS_SECRET_ACCESS_KEY", "test");
    env.set("AWS_SESSION_TOKEN", "test");
    env.set("AWS_EC2_METADATA_DISABLED", "true");
    // The template's globals.
    env.set("RUST_LOG", "info");
    env.set("METRICS_NAMESPACE", "WechatHa");
    env.set("MULTI_REGION", "false");
    env.set("STATE_STORE", scenario.store.name());
    if scenario.store == Store::Dynamodb {
        env.set_from("DYNAMODB_TABLE", infra.table.as_ref(), "--table")?;
    }
    match scenario.workload {
        Workload::CallbackPlain | Workload::CallbackSafe => {
            env.set("WECHAT_APPID", CALLBACK_APPID);
            let mode = if scenario.workload == Workload::CallbackSafe {
                "safe"
            } else {
                "plain"
            };
            env.set("WECHAT_ENCRYPT_MODE", mode);
            env.set_from(
                "WECHAT_CALLBACK_SECRET_ID",
                infra.callback_secret_id.as_ref(),
                "--callback-secret",
            )?;
            env.set_from("SEND_QUEUE_URL", infra.queue_url.as_ref(), "--queue-url")?;
        }
        Workload::Send | Workload::SendWorker | Workload::TokenRefresh => {
            env.set("WECHAT_APPID", API_APPID);
            env.set_from(
                "WECHAT_APPSECRET_SECRET_ID",
                infra.appsecret_secret_id.as_ref(),
                "--appsecret-secret",
            )?;
            env.set_from("WECHAT_API_BASE", infra.wechat_api_base.as_ref(), "--wechat-api")?;
            if scenario.workload == Workload::TokenRefresh {
                env.set("WECHAT_TOKEN_REFRESH_MARGIN_SECS", "1200");
            } else {
                env.set_from("SEND_QUEUE_URL", infra.queue_url.as_ref(), "--queue-url")?;
            }
        }
        Workload::Echo => {}
    }
    Ok(env.0)
}

/// What the Lambda service sets for a `provided.al2023` function of 256 MB (the template's).
fn lambda_env(env: &mut EnvBuilder, function: &str, runtime_api: &str) {
    env.set("AWS_LAMBDA_RUNTIME_API", runtime_api);
    env.set("AWS_LAMBDA_FUNCTION_NAME", function);
    env.set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256");
    env.set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    env.set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    env.set("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"));
    env.set("AWS_LAMBDA_LOG_STREAM_NAME", "2025/01/01/[$LATEST]lambda-bench");
    env.set("AWS_REGION", "us-east-1");
    env.set("AWS_DEFAULT_REGION", "us-east-1");
    env.set("_HANDLER", "bootstrap");
    env.set("TZ", ":UTC");
    env.set("LANG", "en_US.UTF-8");
    env.set("PATH", "/usr/local/bin:/usr/bin:/bin");
}

/// The ARN the function is invoked as.
pub fn function_arn(function: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{function}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_and_print_alike() {
        for scenario in Scenario::all() {
            assert_eq!(scenario.to_string().parse::<Scenario>(), Ok(scenario));
        }
        assert_eq!(
            "echo".parse::<Scenario>(),
            Ok(Scenario {
                workload: Workload::Echo,
                store: Store::Memory
            })
        );
        assert!("callback:redis".parse::<Scenario>().is_err());
        assert!("nope".parse::<Scenario>().is_err());
    }

    #[test]
    fn a_missing_setting_names_its_flag() {
        let scenario: Scenario = "send:dynamodb".parse().unwrap();
        let infra = Infra {
            aws_endpoint: Some("http://127.0.0.1:1".into()),
            ..Infra::default()
        };
        let error = function_env(scenario, &infra, "127.0.0.1:2").unwrap_err();
        assert!(error.contains("--table"), "{error}");
    }

    #[test]
    fn the_callback_gets_its_secret_by_reference_and_never_the_appsecret() {
        let infra = Infra {
            aws_endpoint: Some("http://127.0.0.1:1".into()),
            table: Some("t".into()),
            queue_url: Some("http://127.0.0.1:1/q".into()),
            callback_secret_id: Some("arn:callback".into()),
            appsecret_secret_id: Some("arn:appsecret".into()),
            wechat_api_base: Some("http://127.0.0.1:3".into()),
        };
        let env = function_env("callback-safe:dynamodb".parse().unwrap(), &infra, "127.0.0.1:2").unwrap();
        let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("WECHAT_CALLBACK_SECRET_ID"), Some("arn:callback"));
        assert_eq!(get("WECHAT_ENCRYPT_MODE"), Some("safe"));
        assert_eq!(get("STATE_STORE"), Some("dynamodb"));
        assert_eq!(get("WECHAT_APPSECRET_SECRET_ID"), None);
        assert_eq!(get("WECHAT_TOKEN"), None);
    }
}
