//! Where fleet-wide state lives and where deferred work goes: typed, so "DynamoDB without a
//! table" or "SQS without a queue" cannot be represented.

use super::env::{ConfigError, Env};

/// The state store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// Per-process memory (local runs; on Lambda only for experiments: nothing is shared).
    Memory,
    /// A DynamoDB table (the fleet).
    Dynamodb {
        /// `DYNAMODB_TABLE`.
        table: String,
    },
}

impl Store {
    /// `STATE_STORE` (`memory`, default, or `dynamodb`) and `DYNAMODB_TABLE`.
    ///
    /// # Errors
    /// [`ConfigError`] for an unknown kind, or `dynamodb` without a table.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("STATE_STORE").unwrap_or("memory") {
            "memory" => Ok(Self::Memory),
            "dynamodb" => {
                let table = env
                    .optional("DYNAMODB_TABLE")
                    .ok_or_else(|| ConfigError::new("DYNAMODB_TABLE", "is required when STATE_STORE=dynamodb"))?;
                Ok(Self::Dynamodb {
                    table: table.to_owned(),
                })
            }
            other => Err(ConfigError::new(
                "STATE_STORE",
                format!("must be memory or dynamodb, got {other:?}"),
            )),
        }
    }

    /// A description for banners and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Memory => "in-memory".to_owned(),
            Self::Dynamodb { table } => format!("DynamoDB table {table:?}"),
        }
    }
}

/// The work queue (deferred sends, callbacks that overran WeChat's 5 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queue {
    /// In process memory, drained by an in-process worker (local runs).
    Memory,
    /// An SQS queue.
    Sqs {
        /// `SEND_QUEUE_URL`.
        url: String,
    },
}

impl Queue {
    /// `SEND_QUEUE_URL`; required on Lambda, where an in-memory queue would lose the work when
    /// the instance is recycled.
    ///
    /// # Errors
    /// [`ConfigError`] naming `SEND_QUEUE_URL` when it is unset on Lambda.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.optional("SEND_QUEUE_URL") {
            Some(url) => Ok(Self::Sqs { url: url.to_owned() }),
            None if env.on_lambda() => Err(ConfigError::new(
                "SEND_QUEUE_URL",
                "is required on Lambda: deferred work must survive the instance",
            )),
            None => Ok(Self::Memory),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamodb_needs_a_table_and_unknown_stores_are_refused() {
        assert_eq!(Store::from_env(&Env::default()), Ok(Store::Memory));
        let table = Env::from_pairs([("STATE_STORE", "dynamodb"), ("DYNAMODB_TABLE", "t")]);
        assert_eq!(Store::from_env(&table), Ok(Store::Dynamodb { table: "t".into() }));
        let no_table = Env::from_pairs([("STATE_STORE", "dynamodb")]);
        assert_eq!(Store::from_env(&no_table).unwrap_err().var, "DYNAMODB_TABLE");
        let redis = Env::from_pairs([("STATE_STORE", "redis")]);
        assert_eq!(Store::from_env(&redis).unwrap_err().var, "STATE_STORE");
    }

    #[test]
    fn a_queue_is_required_on_lambda() {
        assert_eq!(Queue::from_env(&Env::default()), Ok(Queue::Memory));
        let lambda = Env::from_pairs([("AWS_LAMBDA_FUNCTION_NAME", "callback")]);
        assert_eq!(Queue::from_env(&lambda).unwrap_err().var, "SEND_QUEUE_URL");
        let sqs = Env::from_pairs([
            ("AWS_LAMBDA_FUNCTION_NAME", "callback"),
            ("SEND_QUEUE_URL", "https://q"),
        ]);
        assert_eq!(
            Queue::from_env(&sqs),
            Ok(Queue::Sqs {
                url: "https://q".into()
            })
        );
    }
}
