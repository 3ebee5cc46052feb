//! `wechat-local simulate`: sends a message the way WeChat does (signed, optionally encrypted)
//! to a running server, and prints the decoded reply.

use std::time::{SystemTime, UNIX_EPOCH};

use shared::config::CallbackAccount;
use shared::protocol::{self, KeySlot};

use crate::demo;

struct Options {
    url: String,
    text: String,
    encrypt: bool,
    subscribe: bool,
    /// `--pay ORDER`: a signed WeChat Pay notice for that order instead of a message.
    pay: Option<String>,
    /// `--public-key`: the notice signed with the WeChat Pay public key (else the certificate).
    public_key: bool,
}

fn options(args: &[String], port: u64) -> Result<Options, String> {
    let mut options = Options {
        url: format!("http://127.0.0.1:{port}"),
        text: "hello".to_owned(),
        encrypt: false,
        subscribe: false,
        pay: None,
        public_key: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--url" => {
                options.url = args
                    .next()
                    .ok_or("--url needs a value")?
                    .trim_end_matches('/')
                    .to_owned()
            }
            "--text" => options.text = args.next().ok_or("--text needs a value")?.clone(),
            "--encrypt" => options.encrypt = true,
            "--subscribe" => options.subscribe = true,
            "--pay" => options.pay = Some(args.next().ok_or("--pay needs an order number")?.clone()),
            "--public-key" => options.public_key = true,
            other => return Err(format!("unknown simulate argument {other:?}")),
        }
    }
    Ok(options)
}

/// Runs the simulator with the same account settings as the server (environment or demo).
pub async fn run(args: &[String]) -> Result<(), String> {
    let (env, _) = demo::environment();
    let port = env.int_in("PORT", 3000, 1, 65535).map_err(|e| e.to_string())?;
    let options = options(args, port)?;
    if let Some(order) = &options.pay {
        return pay_notice(&options, order).await;
    }
    let account = CallbackAccount::from_env(&env).map_err(|e| e.to_string())?;
    let token = account.token.expose();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let (timestamp, nonce) = (now.to_string(), format!("{}", rand_nonce()));
    let message = if options.subscribe {
        format!(
            "<xml><ToUserName><![CDATA[gh_local]]></ToUserName><FromUserName><![CDATA[oSimulator]]></FromUserName>\
             <CreateTime>{now}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>"
        )
    } else {
        format!(
            "<xml><ToUserName><![CDATA[gh_local]]></ToUserName><FromUserName><![CDATA[oSimulator]]></FromUserName>\
             <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{}]]></Content>\
             <MsgId>{}</MsgId></xml>",
            options.text.replace("]]>", "]]]]><![CDATA[>"),
            rand_nonce()
        )
    };
    let mut url = format!(
        "{}/wechat?signature={}&timestamp={timestamp}&nonce={nonce}&openid=oSimulator",
        options.url,
        protocol::url_signature(token, &timestamp, &nonce)
    );
    let body = if options.encrypt {
        let keys = account.keys.as_ref().ok_or("--encrypt needs WECHAT_ENCODING_AES_KEY")?;
        let encrypt = keys
            .encrypt(KeySlot::Current, message.as_bytes(), &rand_bytes())
            .map_err(|e| e.to_string())?;
        url.push_str(&format!(
            "&encrypt_type=aes&msg_signature={}",
            protocol::msg_signature(token, &timestamp, &nonce, &encrypt)
        ));
        format!("<xml><ToUserName><![CDATA[gh_local]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    } else {
        message.clone()
    };
    eprintln!("POST {url}\n{message}\n");
    let response = reqwest::Client::new()
        .post(&url)
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e} (is `wechat-local` running?)", options.url))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    eprintln!("HTTP {status}");
    let shown = match (options.encrypt, account.keys.as_ref(), extract(&text, "Encrypt")) {
        (true, Some(keys), Some(encrypt)) => {
            let (decrypted, _) = keys
                .decrypt(&encrypt)
                .map_err(|_| "the reply does not decrypt with our key")?;
            format!("(decrypted)\n{}", String::from_utf8_lossy(&decrypted.message))
        }
        _ => text,
    };
    #[allow(clippy::print_stdout)]
    {
        println!("{shown}");
    }
    Ok(())
}

/// Posts a notice for a paid `order` (100 fen), signed with the WeChat Pay mock's default keys —
/// what a server started with `--mock-wechat-pay` trusts.
async fn pay_notice(options: &Options, order: &str) -> Result<(), String> {
    let key = if options.public_key {
        wechatpay_mock::SigningKey::PublicKey
    } else {
        wechatpay_mock::SigningKey::Certificate
    };
    let (headers, body) = wechatpay_mock::default_notice(order, 100, key)?;
    let mut request = reqwest::Client::new()
        .post(format!("{}/pay/notify", options.url))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| {
        format!(
            "cannot reach {}: {e} (is `wechat-local --mock-wechat-pay` running?)",
            options.url
        )
    })?;
    eprintln!(
        "POST {}/pay/notify (order {order}) → HTTP {}",
        options.url,
        response.status()
    );
    Ok(())
}

fn extract(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml.find(&format!("</{tag}>"))?;
    Some(
        xml.get(start..end)?
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_owned(),
    )
}

fn rand_nonce() -> u64 {
    u64::from_le_bytes(rand_bytes()[..8].try_into().unwrap_or_default()) % 10_000_000_000
}

fn rand_bytes() -> [u8; 16] {
    rand::random()
}
