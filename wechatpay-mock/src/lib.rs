//! A real HTTP mock of WeChat Pay APIv3 for tests and local runs.
//!
//! It holds orders, signs what WeChat Pay signs — notices with the platform certificate's key
//! (`Wechatpay-Serial` = the certificate serial) or with the "WeChat Pay public key"
//! (`PUB_KEY_ID_…`), and every answer with the certificate's key — and encrypts resources with the
//! merchant's APIv3 key. Routes:
//!
//! - `GET /v3/certificates`: the platform certificate, AES-GCM encrypted (associated data `certificate`);
//! - `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`: an order (404 `ORDER_NOT_EXIST`), after
//!   checking the request's `WECHATPAY2-SHA256-RSA2048` signature with the merchant's public key;
//! - control: `POST /__mock/orders` `{out_trade_no, total, trade_state}`, `POST /__mock/notify`
//!   `{notify_url, out_trade_no, key: "certificate"|"public_key", lost: false}` (signs and posts
//!   a `TRANSACTION.SUCCESS` notice, or drops it when `lost`; answers the status it got),
//!   `POST /__mock/faults` `{path, status, times}`, `GET /__mock/queries` (order queries served).
//!
//! The default keys are public test keys (`keys/README.md`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::pay::crypto::{encrypt_resource, signed_message};
use shared::pay::{PaySigner, PayVerifier};

/// The platform certificate's serial of the default keys.
pub const CERTIFICATE_SERIAL: &str = "D7CE59D1F522D701";
/// The public key id of the default keys.
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0000000000000024101100397200000006";
/// The default merchant.
pub const MCHID: &str = "1230000109";
/// The default APIv3 key (32 bytes).
pub const API_V3_KEY: &str = "0123456789abcdef0123456789abcdef";
/// The default merchant API certificate serial (the merchant key doubles as the public key pair).
pub const MERCHANT_SERIAL: &str = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB";

/// The platform key (PKCS#8 PEM).
pub const PLATFORM_KEY_PEM: &str = include_str!("../keys/platform_key.pem");
/// The platform certificate (PEM).
pub const PLATFORM_CERT_PEM: &str = include_str!("../keys/platform_cert.pem");
/// The "WeChat Pay public key" signer (PKCS#8 PEM); also the merchant's API key locally.
pub const PUBLIC_KEY_SIGNER_PEM: &str = include_str!("../keys/public_key_signer.pem");
/// The "WeChat Pay public key" (SPKI PEM); also the merchant's public key locally.
pub const PUBLIC_KEY_PEM: &str = include_str!("../keys/public_key.pem");

/// A signed notice: its `Wechatpay-*` headers and its raw body.
pub type SignedNotice = (Vec<(&'static str, String)>, String);

/// Which key a notice is signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SigningKey {
    /// The platform certificate's key (`Wechatpay-Serial` = its serial).
    Certificate,
    /// The WeChat Pay public key (`Wechatpay-Serial` = `PUB_KEY_ID_…`).
    PublicKey,
}

/// A fault on one path: the next `times` requests answer `status`.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    /// Path prefix, e.g. `/v3/pay/transactions`.
    pub path: String,
    /// HTTP status to answer.
    pub status: u16,
    /// How many requests.
    pub times: u32,
}

#[derive(Debug)]
struct Inner {
    orders: HashMap<String, Value>,
    faults: Vec<Fault>,
    queries: u64,
}

/// The mock's state and keys.
#[derive(Debug)]
struct Mock {
    platform: PaySigner,
    public_key_signer: PaySigner,
    merchant: PayVerifier,
    mchid: String,
    api_v3_key: String,
    inner: Mutex<Inner>,
    http: reqwest::Client,
}

/// A running mock; stops when dropped.
#[derive(Debug)]
pub struct PayMockHandle {
    addr: SocketAddr,
    mock: Arc<Mock>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PayMockHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn nonce32() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn nonce12() -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..12)
        .map(|_| char::from(alphabet[rand::random_range(0..alphabet.len())]))
        .collect()
}

impl Mock {
    /// A signed answer (`Wechatpay-*` headers over the body, with the platform key).
    fn signed(&self, status: StatusCode, body: String) -> Response {
        let timestamp = now_secs().to_string();
        let nonce = nonce32();
        let signature = self.platform.sign(&signed_message(&timestamp, &nonce, body.as_bytes()));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            ("wechatpay-serial", CERTIFICATE_SERIAL.to_owned()),
            ("wechatpay-timestamp", timestamp),
            ("wechatpay-nonce", nonce),
            ("wechatpay-signature", signature),
            ("content-type", "application/json".to_owned()),
        ] {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        response
    }

    fn fault(&self, path: &str) -> Option<StatusCode> {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fault = inner
            .faults
            .iter_mut()
            .find(|f| path.starts_with(&f.path) && f.times > 0)?;
        fault.times -= 1;
        StatusCode::from_u16(fault.status).ok()
    }

    /// A signed `TRANSACTION.SUCCESS` notice for `order`: the headers and the raw body.
    fn notice(&self, order: &Value, key: SigningKey) -> SignedNotice {
        let nonce = nonce12();
        let plaintext = order.to_string();
        let ciphertext = encrypt_resource(self.api_v3_key.as_bytes(), &nonce, "transaction", plaintext.as_bytes())
            .unwrap_or_default();
        let body = json!({
            "id": format!("EV-{:020}", rand::random::<u64>()),
            "create_time": "2026-12-01T10:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": ciphertext, "associated_data": "transaction", "nonce": nonce}
        })
        .to_string();
        let timestamp = now_secs().to_string();
        let header_nonce = nonce32();
        let (signer, serial) = match key {
            SigningKey::Certificate => (&self.platform, CERTIFICATE_SERIAL),
            SigningKey::PublicKey => (&self.public_key_signer, PUBLIC_KEY_ID),
        };
        let signature = signer.sign(&signed_message(&timestamp, &header_nonce, body.as_bytes()));
        let headers = vec![
            ("wechatpay-serial", serial.to_owned()),
            ("wechatpay-timestamp", timestamp),
            ("wechatpay-nonce", header_nonce),
            ("wechatpay-signature", signature),
            ("wechatpay-signature-type", "WECHATPAY2-SHA256-RSA2048".to_owned()),
        ];
        (headers, body)
    }

    /// Checks a request's `Authorization` header with the merchant's public key.
    fn authorized(&self, headers: &HeaderMap, method: &str, target: &str) -> bool {
        let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some(params) = value.strip_prefix("WECHATPAY2-SHA256-RSA2048 ") else {
            return false;
        };
        let field = |name: &str| {
            params.split(',').find_map(|pair| {
                let (key, quoted) = pair.split_once('=')?;
                (key.trim() == name).then(|| quoted.trim().trim_matches('"').to_owned())
            })
        };
        let (Some(mchid), Some(nonce), Some(signature), Some(timestamp), Some(_serial)) = (
            field("mchid"),
            field("nonce_str"),
            field("signature"),
            field("timestamp"),
            field("serial_no"),
        ) else {
            return false;
        };
        // The request's signed string: METHOD\nURL\ntimestamp\nnonce\nbody\n (GET: empty body).
        let message = format!("{method}\n{target}\n{timestamp}\n{nonce}\n\n");
        mchid == self.mchid && self.merchant.verify_raw(message.as_bytes(), &signature).is_ok()
    }
}

#[derive(Debug, Deserialize)]
struct OrderRequest {
    out_trade_no: String,
    total: i64,
    #[serde(default = "success")]
    trade_state: String,
}

fn success() -> String {
    "SUCCESS".to_owned()
}

#[derive(Debug, Deserialize)]
struct NotifyRequest {
    notify_url: String,
    out_trade_no: String,
    #[serde(default = "certificate")]
    key: SigningKey,
    #[serde(default)]
    lost: bool,
}

fn certificate() -> SigningKey {
    SigningKey::Certificate
}

fn order_json(mchid: &str, out_trade_no: &str, total: i64, trade_state: &str) -> Value {
    json!({
        "mchid": mchid, "appid": "wx0123456789abcdef", "out_trade_no": out_trade_no,
        "transaction_id": format!("42000{:023}", rand::random::<u64>()), "trade_type": "JSAPI",
        "trade_state": trade_state, "trade_state_desc": trade_state, "bank_type": "OTHERS",
        "success_time": "2026-12-01T10:00:00+08:00", "payer": {"openid": "oMockPayer"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    })
}

async fn certificates(State(mock): State<Arc<Mock>>) -> Response {
    if let Some(status) = mock.fault("/v3/certificates") {
        return (status, json!({"code": "SYSTEM_ERROR", "message": "fault"}).to_string()).into_response();
    }
    let nonce = nonce12();
    let ciphertext = encrypt_resource(
        mock.api_v3_key.as_bytes(),
        &nonce,
        "certificate",
        PLATFORM_CERT_PEM.as_bytes(),
    )
    .unwrap_or_default();
    let body = json!({"data": [{
        "serial_no": CERTIFICATE_SERIAL,
        "effective_time": "2021-04-27T16:55:23+08:00",
        "expire_time": "2031-04-25T16:55:23+08:00",
        "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate", "ciphertext": ciphertext}
    }]});
    mock.signed(StatusCode::OK, body.to_string())
}

async fn query_order(
    State(mock): State<Arc<Mock>>,
    Path(out_trade_no): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    mock.inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .queries += 1;
    if let Some(status) = mock.fault("/v3/pay/transactions") {
        return (status, json!({"code": "SYSTEM_ERROR", "message": "fault"}).to_string()).into_response();
    }
    let mchid = query.get("mchid").cloned().unwrap_or_default();
    let target = format!("/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mchid}");
    if !mock.authorized(&headers, "GET", &target) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"code": "SIGN_ERROR", "message": "签名错误"}).to_string(),
        )
            .into_response();
    }
    let order = mock
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .orders
        .get(&out_trade_no)
        .cloned();
    match order {
        Some(order) => mock.signed(StatusCode::OK, order.to_string()),
        None => (
            StatusCode::NOT_FOUND,
            json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}).to_string(),
        )
            .into_response(),
    }
}

async fn add_order(State(mock): State<Arc<Mock>>, axum::Json(request): axum::Json<OrderRequest>) -> Response {
    let order = order_json(&mock.mchid, &request.out_trade_no, request.total, &request.trade_state);
    mock.inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .orders
        .insert(request.out_trade_no, order.clone());
    axum::Json(order).into_response()
}

async fn notify(State(mock): State<Arc<Mock>>, axum::Json(request): axum::Json<NotifyRequest>) -> Response {
    let order = mock
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .orders
        .get(&request.out_trade_no)
        .cloned();
    let Some(order) = order else {
        return (StatusCode::NOT_FOUND, "no such order").into_response();
    };
    if request.lost {
        return axum::Json(json!({"delivered": false})).into_response();
    }
    let status = send_notice(&mock, &request.notify_url, &order, request.key).await;
    axum::Json(json!({"delivered": true, "status": status})).into_response()
}

async fn send_notice(mock: &Mock, url: &str, order: &Value, key: SigningKey) -> u16 {
    let (headers, body) = mock.notice(order, key);
    let mut request = mock
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

async fn add_fault(State(mock): State<Arc<Mock>>, axum::Json(fault): axum::Json<Fault>) -> Response {
    mock.inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .faults
        .push(fault);
    axum::Json(json!({"ok": true})).into_response()
}

async fn queries(State(mock): State<Arc<Mock>>) -> Response {
    let served = mock
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .queries;
    axum::Json(json!({"queries": served})).into_response()
}

/// A `TRANSACTION.SUCCESS` notice for a paid order of `total` fen, signed with the default keys
/// and encrypted with the default APIv3 key — what `wechat-local simulate --pay` sends.
///
/// # Errors
/// A default key that does not parse (it always does).
pub fn default_notice(out_trade_no: &str, total: i64, key: SigningKey) -> Result<SignedNotice, String> {
    let mock = Mock {
        platform: PaySigner::from_pkcs8_pem(PLATFORM_KEY_PEM)?,
        public_key_signer: PaySigner::from_pkcs8_pem(PUBLIC_KEY_SIGNER_PEM)?,
        merchant: PayVerifier::from_public_key_pem(PUBLIC_KEY_PEM)?,
        mchid: MCHID.to_owned(),
        api_v3_key: API_V3_KEY.to_owned(),
        inner: Mutex::new(Inner {
            orders: HashMap::new(),
            faults: Vec::new(),
            queries: 0,
        }),
        http: reqwest::Client::new(),
    };
    Ok(mock.notice(&order_json(MCHID, out_trade_no, total, "SUCCESS"), key))
}

/// The variables that point `wechat-local`'s payment routes at a mock at `base_url` with the
/// default keys (the platform certificate and the public key both configured).
pub fn local_environment(base_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PAY_MCHID", MCHID.to_owned()),
        ("PAY_APIV3_KEY", API_V3_KEY.to_owned()),
        ("PAY_PUBLIC_KEY_ID", PUBLIC_KEY_ID.to_owned()),
        ("PAY_PUBLIC_KEY_PEM", PUBLIC_KEY_PEM.to_owned()),
        ("PAY_PLATFORM_CERTIFICATES_PEM", PLATFORM_CERT_PEM.to_owned()),
        ("PAY_MERCHANT_PRIVATE_KEY_PEM", PUBLIC_KEY_SIGNER_PEM.to_owned()),
        ("PAY_MERCHANT_SERIAL_NO", MERCHANT_SERIAL.to_owned()),
        ("PAY_API_BASE", base_url.to_owned()),
    ]
}

/// Starts the mock on a free loopback port with the default keys and merchant.
///
/// # Errors
/// The bind error, or a key that does not parse.
pub async fn start() -> std::io::Result<PayMockHandle> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mock = Arc::new(Mock {
        platform: PaySigner::from_pkcs8_pem(PLATFORM_KEY_PEM).map_err(invalid)?,
        public_key_signer: PaySigner::from_pkcs8_pem(PUBLIC_KEY_SIGNER_PEM).map_err(invalid)?,
        merchant: PayVerifier::from_public_key_pem(PUBLIC_KEY_PEM).map_err(invalid)?,
        mchid: MCHID.to_owned(),
        api_v3_key: API_V3_KEY.to_owned(),
        inner: Mutex::new(Inner {
            orders: HashMap::new(),
            faults: Vec::new(),
            queries: 0,
        }),
        http: reqwest::Client::new(),
    });
    let router = Router::new()
        .route("/v3/certificates", get(certificates))
        .route("/v3/pay/transactions/out-trade-no/{out_trade_no}", get(query_order))
        .route("/__mock/orders", post(add_order))
        .route("/__mock/notify", post(notify))
        .route("/__mock/faults", post(add_fault))
        .route("/__mock/queries", get(queries))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(PayMockHandle { addr, mock, task })
}

impl PayMockHandle {
    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds (or replaces) an order.
    pub fn set_order(&self, out_trade_no: &str, total: i64, trade_state: &str) {
        let order = order_json(&self.mock.mchid, out_trade_no, total, trade_state);
        self.mock
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .orders
            .insert(out_trade_no.to_owned(), order);
    }

    /// A signed notice for order `out_trade_no` (as it stands), for a test to post itself.
    pub fn notice(&self, out_trade_no: &str, key: SigningKey) -> Option<SignedNotice> {
        let order = self
            .mock
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .orders
            .get(out_trade_no)
            .cloned()?;
        Some(self.mock.notice(&order, key))
    }

    /// Signs and posts a notice for `out_trade_no` to `url`; the status it got (0: unreachable).
    pub async fn notify(&self, url: &str, out_trade_no: &str, key: SigningKey) -> u16 {
        let Some(order) = self
            .mock
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .orders
            .get(out_trade_no)
            .cloned()
        else {
            return 0;
        };
        send_notice(&self.mock, url, &order, key).await
    }

    /// The next `times` requests under `path` answer `status`.
    pub fn fail(&self, path: &str, status: u16, times: u32) {
        self.mock
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .faults
            .push(Fault {
                path: path.to_owned(),
                status,
                times,
            });
    }

    /// Order queries served so far.
    pub fn queries(&self) -> u64 {
        self.mock
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .queries
    }
}
