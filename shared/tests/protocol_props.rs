//! Properties of the callback protocol: crypto round-trips, no panic on any input, replies that parse back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde::Deserialize;
use shared::protocol::{
    AesKey, Article, CallbackQuery, CallbackRequest, DecryptError, EncryptMode, KeyRing, KeySlot, MessageKind,
    OpenError, PassiveReply, Reply, SealedReply, msg_signature, open, parse_message, seal, url_signature,
};

const TOKEN: &str = "prop-token";

/// XML 1.0 normalizes line ends (`\r\n` and `\r` become `\n`), so that is what any parser reads back.
fn xml_normalized(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Fragments that steer generated documents into the parser's interesting corners.
fn xml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<xml>".to_owned()),
        Just("</xml>".to_owned()),
        Just("<ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>".to_owned()),
        Just("<MsgType>text</MsgType>".to_owned()),
        Just("<MsgType><![CDATA[event]]></MsgType><Event>CLICK</Event>".to_owned()),
        Just("<Content>".to_owned()),
        Just("</Content>".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("]]>".to_owned()),
        Just("<!DOCTYPE x [<!ENTITY e \"v\">]>".to_owned()),
        Just("<!ENTITY e \"v\">".to_owned()),
        Just("&e;".to_owned()),
        Just("&lt;&#x41;&#99999999;".to_owned()),
        Just("<?xml version=\"1.0\"?>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("{\"MsgType\":".to_owned()),
        Just("<a b='c'/>".to_owned()),
        "\\PC{0,12}",
    ]
}

fn xml_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(xml_fragment(), 0..24).prop_map(|parts| parts.concat())
}

#[derive(Deserialize)]
struct NewsXml {
    #[serde(rename = "Articles")]
    articles: ArticlesXml,
}

#[derive(Deserialize)]
struct ArticlesXml {
    item: Vec<ItemXml>,
}

#[derive(Deserialize)]
struct ItemXml {
    #[serde(rename = "Title")]
    title: String,
    #[serde(rename = "Description")]
    description: String,
    #[serde(rename = "Url")]
    url: String,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encrypt_then_decrypt_returns_the_message(
        key in any::<[u8; 32]>(),
        appid in "\\PC{0,40}",
        message in prop::collection::vec(any::<u8>(), 0..2048),
        random in any::<[u8; 16]>(),
    ) {
        let key = AesKey::from_bytes(key);
        let encrypt = key.encrypt(&appid, &message, &random).unwrap();
        prop_assert_eq!(STANDARD.decode(&encrypt).unwrap().len() % 32, 0);
        let decrypted = key.decrypt(&appid, &encrypt).unwrap();
        prop_assert_eq!(decrypted.message, message);
        prop_assert_eq!(decrypted.random, random);
    }

    #[test]
    fn key_ring_round_trips_with_either_slot(
        current in any::<[u8; 32]>(),
        previous in any::<[u8; 32]>(),
        message in prop::collection::vec(any::<u8>(), 0..512),
        use_previous in any::<bool>(),
    ) {
        prop_assume!(current != previous);
        let ring = KeyRing::new("wxprop", AesKey::from_bytes(current)).with_previous(AesKey::from_bytes(previous));
        let slot = if use_previous { KeySlot::Previous } else { KeySlot::Current };
        let encrypt = ring.encrypt(slot, &message, &[0; 16]).unwrap();
        let (decrypted, found) = ring.decrypt(&encrypt).unwrap();
        prop_assert_eq!((decrypted.message, found), (message, slot));
    }

    #[test]
    fn random_ciphertext_is_the_uniform_error(key in any::<[u8; 32]>(), blocks in prop::collection::vec(any::<[u8; 16]>(), 0..20)) {
        let raw: Vec<u8> = blocks.concat();
        let result = AesKey::from_bytes(key).decrypt("wxprop", &STANDARD.encode(raw));
        prop_assert_eq!(result, Err(DecryptError));
    }

    #[test]
    fn decrypt_never_panics_on_any_text(key in any::<[u8; 32]>(), encrypt in "\\PC{0,300}", appid in "\\PC{0,20}") {
        // Any text: invalid base64, odd lengths, anything; only the one uniform error comes out.
        prop_assert_eq!(AesKey::from_bytes(key).decrypt(&appid, &encrypt), Err(DecryptError));
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(msg) = parse_message(&body) {
            prop_assert!(!msg.header.from_user_name.is_empty());
        }
    }

    #[test]
    fn parser_never_panics_on_xml_shaped_input(body in xml_soup()) {
        match parse_message(body.as_bytes()) {
            Ok(msg) => prop_assert!(!msg.header.to_user_name.is_empty() && !msg.header.msg_type.is_empty()),
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn open_never_panics_and_classifies_every_failure(
        body in prop::collection::vec(any::<u8>(), 0..512),
        soup in xml_soup(),
        use_soup in any::<bool>(),
        signature in proptest::option::of("[0-9a-f]{40}"),
        encrypted in any::<bool>(),
        mode in prop_oneof![Just(EncryptMode::Plain), Just(EncryptMode::Compatible), Just(EncryptMode::Safe)],
        with_keys in any::<bool>(),
    ) {
        let body = if use_soup { soup.into_bytes() } else { body };
        let ring = KeyRing::new("wxprop", AesKey::from_bytes([7; 32]));
        let query = CallbackQuery {
            signature: signature.as_deref(),
            msg_signature: signature.as_deref(),
            timestamp: Some("1"),
            nonce: Some("2"),
            encrypt_type: encrypted.then_some("aes"),
            echostr: None,
        };
        let keys = with_keys.then_some(&ring);
        let request = CallbackRequest { mode, token: TOKEN, keys, query, body: &body };
        match open(&request) {
            Ok(opened) => prop_assert!(opened.was_encrypted() || opened.message() == body.as_slice()),
            Err(err) => prop_assert_eq!(shared::http::ApiError::from(err).kind.status().as_u16() / 100, 4),
        }
    }

    #[test]
    fn plaintext_post_with_valid_signature_opens_to_any_body(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let sig = url_signature(TOKEN, "1", "2");
        let query = CallbackQuery { signature: Some(&sig), timestamp: Some("1"), nonce: Some("2"), ..Default::default() };
        let request = CallbackRequest { mode: EncryptMode::Compatible, token: TOKEN, keys: None, query, body: &body };
        let opened = open(&request).unwrap();
        prop_assert_eq!(opened.message(), body.as_slice());
    }

    #[test]
    fn signed_garbage_ciphertext_is_one_uniform_bad_request(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let ring = KeyRing::new("wxprop", AesKey::from_bytes([7; 32]));
        let encrypt = STANDARD.encode(raw);
        let sig = msg_signature(TOKEN, "1", "2", &encrypt);
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let query = CallbackQuery {
            timestamp: Some("1"), nonce: Some("2"), encrypt_type: Some("aes"), msg_signature: Some(&sig), ..Default::default()
        };
        let request = CallbackRequest { mode: EncryptMode::Safe, token: TOKEN, keys: Some(&ring), query, body: body.as_bytes() };
        let result = open(&request);
        let expected = if encrypt.is_empty() { "malformed" } else { "decrypt" };
        match result {
            Err(OpenError::Decrypt) => prop_assert_eq!(expected, "decrypt"),
            Err(OpenError::MalformedBody(_)) => prop_assert_eq!(expected, "malformed"),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn text_reply_parses_back_to_the_same_content(
        content in "\\PC{0,200}",
        splice in prop::collection::vec(prop_oneof![Just("]]>"), Just("]]"), Just("]"), Just("<![CDATA["), Just("\r\n")], 0..4),
        to_user in "[a-zA-Z0-9_-]{1,28}",
    ) {
        let content = splice.iter().fold(content, |acc, s| format!("{acc}{s}{acc}"));
        let xml = Reply::text(content.clone()).to_xml(&to_user, "gh_account", 1_700_000_000).unwrap();
        let parsed = parse_message(xml.as_bytes()).unwrap();
        prop_assert_eq!(parsed.header.to_user_name, to_user);
        prop_assert_eq!(parsed.kind, MessageKind::Text { content: xml_normalized(&content) });
    }

    #[test]
    fn news_reply_articles_parse_back(titles in prop::collection::vec("\\PC{0,40}", 1..=8), url in "\\PC{0,40}") {
        let articles: Vec<Article> = titles
            .iter()
            .map(|t| Article { title: format!("{t}]]>{t}"), description: t.clone(), pic_url: String::new(), url: url.clone() })
            .collect();
        let xml = Reply::news(articles.clone()).unwrap().to_xml("u", "gh", 1).unwrap();
        let parsed: NewsXml = quick_xml::de::from_str(&xml).unwrap();
        prop_assert_eq!(parsed.articles.item.len(), articles.len());
        for (got, sent) in parsed.articles.item.iter().zip(&articles) {
            prop_assert_eq!(&got.title, &xml_normalized(&sent.title));
            prop_assert_eq!(&got.description, &xml_normalized(&sent.description));
            prop_assert_eq!(&got.url, &xml_normalized(&sent.url));
        }
    }

    #[test]
    fn sealed_reply_decrypts_to_the_reply(reply in "\\PC{1,300}", nonce in "[0-9]{1,10}", ts in any::<u32>()) {
        prop_assume!(reply != "success");
        let ring = KeyRing::new("wxprop", AesKey::from_bytes([9; 32]));
        let encrypt = ring.encrypt(KeySlot::Current, b"<xml/>", &[1; 16]).unwrap();
        let sig = msg_signature(TOKEN, "1", "2", &encrypt);
        let body = format!("<xml><Encrypt>{encrypt}</Encrypt></xml>");
        let query = CallbackQuery {
            timestamp: Some("1"), nonce: Some("2"), encrypt_type: Some("aes"), msg_signature: Some(&sig), ..Default::default()
        };
        let request = CallbackRequest { mode: EncryptMode::Safe, token: TOKEN, keys: Some(&ring), query, body: body.as_bytes() };
        let opened = open(&request).unwrap();
        let sealed = seal(PassiveReply::Xml(reply.clone()), &opened, TOKEN, u64::from(ts), &nonce, &[7; 16]).unwrap();
        let SealedReply::Encrypted { body: sealed, .. } = sealed else {
            panic!("an encrypted request gets an envelope")
        };
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "Encrypt")]
            encrypt: String,
            #[serde(rename = "MsgSignature")]
            msg_signature: String,
            #[serde(rename = "TimeStamp")]
            timestamp: String,
            #[serde(rename = "Nonce")]
            nonce: String,
        }
        let envelope: Envelope = quick_xml::de::from_str(&sealed).unwrap();
        prop_assert_eq!(&envelope.nonce, &nonce);
        prop_assert_eq!(&envelope.timestamp, &ts.to_string());
        prop_assert_eq!(envelope.msg_signature, msg_signature(TOKEN, &envelope.timestamp, &nonce, &envelope.encrypt));
        let (decrypted, _) = ring.decrypt(&envelope.encrypt).unwrap();
        prop_assert_eq!(decrypted.message, reply.as_bytes());
    }
}
