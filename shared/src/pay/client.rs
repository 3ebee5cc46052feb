//! Calls to the WeChat Pay API: the order query (reconciliation) and the platform certificates
//! (refreshed when a notice names an unknown serial). Every request is signed with the merchant's
//! API key; every 2xx answer's signature is verified before it is believed. Calls run under their
//! own retry policy and breaker (`wechatpay.api`), failing over from `api.mch.weixin.qq.com` to
//! `api2.mch.weixin.qq.com` on no connection, timeouts and 5xx (both calls are reads).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::crypto::{Merchant, Outgoing, PaySigner, authorization, decrypt_resource};
use super::keys::{PayKeys, PlatformCertificate};
use super::notice::Transaction;
use super::open::MAX_SKEW_SECS;
use crate::clock::SharedClock;
use crate::deadline::Deadline;
use crate::resilience::{AttemptError, ExecuteError, Outcome, Policy, execute};
use crate::secret::Secret;

/// WeChat Pay's API domains, in failover order.
pub const DEFAULT_PAY_API_BASES: &str = "https://api.mch.weixin.qq.com,https://api2.mch.weixin.qq.com";

/// One request's time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a WeChat Pay call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayApiError {
    /// No connection, a timeout or a broken connection.
    #[error("cannot reach {0}")]
    Unreachable(String),
    /// A non-2xx answer.
    #[error("HTTP {status} {code}")]
    Http {
        /// The status.
        status: u16,
        /// WeChat Pay's error code (`ORDER_NOT_EXIST`, `SIGN_ERROR`, …).
        code: String,
    },
    /// A 2xx answer whose signature does not check out (or a probe).
    #[error("answer not authentic: {0}")]
    Unverified(String),
    /// A 2xx answer signed with a key this client does not hold (yet).
    #[error("answer signed with unknown serial {0}")]
    UnknownSerial(String),
    /// An answer that does not parse.
    #[error("undecodable answer: {0}")]
    Decode(String),
    /// The breaker or the deadline refused the call.
    #[error("not attempted: {0}")]
    NotAttempted(String),
}

/// The merchant's credentials for the WeChat Pay API.
#[derive(Debug, Clone)]
pub struct PayCredentials {
    /// The merchant id.
    pub mchid: String,
    /// The merchant API certificate's serial.
    pub serial_no: String,
    /// The merchant API private key.
    pub signer: PaySigner,
    /// The APIv3 key (certificate resources).
    pub api_v3_key: Secret,
}

/// The WeChat Pay API client of one merchant.
#[derive(Debug, Clone)]
pub struct PayClient {
    http: reqwest::Client,
    bases: Vec<String>,
    credentials: PayCredentials,
    keys: Arc<PayKeys>,
    policy: Arc<Policy>,
    clock: SharedClock,
}

#[derive(Debug, Deserialize)]
struct CertificateList {
    data: Vec<CertificateEntry>,
}

#[derive(Debug, Deserialize)]
struct CertificateEntry {
    serial_no: String,
    encrypt_certificate: EncryptedCertificate,
}

#[derive(Debug, Deserialize)]
struct EncryptedCertificate {
    nonce: String,
    #[serde(default)]
    associated_data: String,
    ciphertext: String,
}

#[derive(Debug, Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: String,
}

fn classify<T>(result: &Result<T, AttemptError<PayApiError>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(AttemptError::TimedOut { .. }) => Outcome::Retryable,
        Err(AttemptError::Failed(error)) => match error {
            PayApiError::Unreachable(_) | PayApiError::Unverified(_) => Outcome::Retryable,
            PayApiError::Http { status, .. } if *status >= 500 || *status == 429 => Outcome::Retryable,
            PayApiError::NotAttempted(_) => Outcome::Inconclusive,
            PayApiError::UnknownSerial(_) => Outcome::NotRetryable,
            _ => Outcome::NotRetryable,
        },
    }
}

impl PayClient {
    /// A client over `bases` (failover order) verifying answers with `keys`, under `policy`.
    ///
    /// # Errors
    /// The HTTP client's build error.
    pub fn new(
        bases: Vec<String>,
        credentials: PayCredentials,
        keys: Arc<PayKeys>,
        policy: Arc<Policy>,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .user_agent(concat!("wechat-ha/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            bases,
            credentials,
            keys,
            policy,
            clock,
        })
    }

    /// The keys answers (and notices) are verified with.
    pub fn keys(&self) -> &Arc<PayKeys> {
        &self.keys
    }

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`; `None` for `ORDER_NOT_EXIST`.
    ///
    /// # Errors
    /// [`PayApiError`].
    pub async fn query_order(
        &self,
        out_trade_no: &str,
        deadline: Deadline,
    ) -> Result<Option<Transaction>, PayApiError> {
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            url_escape(out_trade_no),
            url_escape(&self.credentials.mchid)
        );
        let mut answer = self.get(&path, deadline, true).await;
        if let Err(PayApiError::UnknownSerial(serial)) = &answer {
            // Signed by a platform certificate we do not hold yet: download them once.
            tracing::info!(target: "wechat_ha::pay", %serial, "answer signed by an unknown certificate; refreshing");
            self.refresh_certificates(deadline).await?;
            answer = self.get(&path, deadline, true).await;
        }
        match answer {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| PayApiError::Decode(e.to_string())),
            Err(PayApiError::Http { status: 404, code }) if code == "ORDER_NOT_EXIST" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `GET /v3/certificates`: decrypts every certificate and adds it to the keys.
    ///
    /// # Errors
    /// [`PayApiError`].
    pub async fn refresh_certificates(&self, deadline: Deadline) -> Result<usize, PayApiError> {
        // The answer is verified below with the certificates it carries (WeChat Pay exempts the
        // first download); each one is authenticated by its AEAD tag under the APIv3 key.
        let body = self.get("/v3/certificates", deadline, false).await?;
        let list: CertificateList = serde_json::from_slice(&body).map_err(|e| PayApiError::Decode(e.to_string()))?;
        let mut certificates = Vec::new();
        for entry in list.data {
            let encrypted = &entry.encrypt_certificate;
            let pem = decrypt_resource(
                self.credentials.api_v3_key.expose().as_bytes(),
                &encrypted.nonce,
                &encrypted.associated_data,
                &encrypted.ciphertext,
            )
            .map_err(|e| PayApiError::Unverified(format!("certificate {}: {e}", entry.serial_no)))?;
            let pem = String::from_utf8(pem).map_err(|_| PayApiError::Decode("certificate not UTF-8".into()))?;
            let certificate = PlatformCertificate::from_pem(&pem).map_err(PayApiError::Decode)?;
            if !certificate.serial.eq_ignore_ascii_case(&entry.serial_no) {
                return Err(PayApiError::Unverified(format!(
                    "serial {} names another certificate",
                    entry.serial_no
                )));
            }
            certificates.push(certificate);
        }
        let count = certificates.len();
        self.keys.add_certificates(certificates);
        Ok(count)
    }

    /// A signed GET of `path` under the policy, failing over across the domains; the body of a
    /// 2xx answer (verified when `verify`).
    async fn get(&self, path: &str, deadline: Deadline, verify: bool) -> Result<Vec<u8>, PayApiError> {
        let attempt = |_| async move {
            let mut last = PayApiError::NotAttempted("no WeChat Pay domain configured".into());
            for base in &self.bases {
                match self.get_once(base, path, deadline, verify).await {
                    Err(error @ (PayApiError::Unreachable(_) | PayApiError::Http { status: 500.., .. })) => {
                        last = error
                    }
                    other => return other,
                }
            }
            Err(last)
        };
        execute(&self.policy, deadline, classify, attempt)
            .await
            .map_err(|error| match error {
                ExecuteError::Rejected { reason, .. } => PayApiError::NotAttempted(reason.as_str().to_owned()),
                other => other
                    .into_last_error()
                    .map_or(PayApiError::NotAttempted("deadline".into()), |last| {
                        last.into_error(|after| PayApiError::Unreachable(format!("attempt limit {after:?}")))
                    }),
            })
    }

    async fn get_once(&self, base: &str, path: &str, deadline: Deadline, verify: bool) -> Result<Vec<u8>, PayApiError> {
        let timestamp = self.clock.now_secs().to_string();
        let nonce = format!("{:032X}", rand::random::<u128>());
        let header = authorization(
            &self.credentials.signer,
            Merchant {
                mchid: &self.credentials.mchid,
                serial_no: &self.credentials.serial_no,
            },
            Outgoing {
                method: "GET",
                url: path,
                body: "",
            },
            &timestamp,
            &nonce,
        );
        let mut request = self.http.get(format!("{base}{path}"));
        if let Some(id) = self.keys.public_key_id() {
            // Asks WeChat Pay to sign its answer with the public key (during a key migration).
            request = request.header("Wechatpay-Serial", id);
        }
        let response = request
            .header(reqwest::header::AUTHORIZATION, header)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT.min(deadline.remaining()))
            .send()
            .await
            .map_err(|e| PayApiError::Unreachable(format!("{base}: {}", e.without_url())))?;
        let status = response.status();
        let header_of = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let signed = [
            header_of("wechatpay-serial"),
            header_of("wechatpay-timestamp"),
            header_of("wechatpay-nonce"),
            header_of("wechatpay-signature"),
        ];
        let body = response
            .bytes()
            .await
            .map_err(|e| PayApiError::Unreachable(format!("{base}: {}", e.without_url())))?
            .to_vec();
        if !status.is_success() {
            let error: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
            return Err(PayApiError::Http {
                status: status.as_u16(),
                code: error.code,
            });
        }
        if verify {
            let [Some(serial), Some(timestamp), Some(nonce), Some(signature)] = signed else {
                return Err(PayApiError::Unverified("signing headers missing".into()));
            };
            let now = self.clock.now_secs();
            let at: i64 = timestamp
                .parse()
                .map_err(|_| PayApiError::Unverified("bad timestamp".into()))?;
            if (now - at).abs() >= MAX_SKEW_SECS {
                return Err(PayApiError::Unverified("stale answer".into()));
            }
            let verifier = self.keys.select(&serial, now).map_err(|e| match e {
                super::keys::KeyError::Unknown(serial) => PayApiError::UnknownSerial(serial),
                other => PayApiError::Unverified(other.to_string()),
            })?;
            verifier
                .verify_message(&timestamp, &nonce, &body, &signature)
                .map_err(|e| PayApiError::Unverified(e.to_string()))?;
        }
        Ok(body)
    }
}

/// Percent-encodes what is not unreserved in a path segment or query value.
fn url_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
