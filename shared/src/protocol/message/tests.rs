//! Inbound message parsing: one sample per type (from the official docs) and the rejection cases.

use super::*;

const HEAD: &str = "<ToUserName><![CDATA[gh_oa]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName>\
                    <CreateTime>1348831860</CreateTime>";

fn xml(msg_type: &str, rest: &str) -> String {
    format!("<xml>{HEAD}<MsgType><![CDATA[{msg_type}]]></MsgType>{rest}</xml>")
}

fn event_xml(event: &str, rest: &str) -> String {
    xml("event", &format!("<Event><![CDATA[{event}]]></Event>{rest}"))
}

fn parse(s: &str) -> Message {
    parse_message(s.as_bytes()).unwrap()
}

#[test]
fn text_message_has_header_content_and_msg_id_dedup_key() {
    let msg = parse(&xml(
        "text",
        "<Content><![CDATA[  this is a test ]]></Content><MsgId>1234567890123456</MsgId>",
    ));
    assert_eq!(
        msg.header,
        Header {
            to_user_name: "gh_oa".into(),
            from_user_name: "o_user".into(),
            create_time: 1_348_831_860,
            msg_type: "text".into(),
            msg_id: Some("1234567890123456".into()),
        }
    );
    assert_eq!(
        msg.kind,
        MessageKind::Text {
            content: "  this is a test ".into()
        }
    );
    assert_eq!(msg.dedup_key(), "1234567890123456:o_user:1348831860");
}

#[test]
fn media_messages_are_typed() {
    let image = parse(&xml(
        "image",
        "<PicUrl><![CDATA[http://p]]></PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>1</MsgId>",
    ));
    assert_eq!(
        image.kind,
        MessageKind::Image {
            pic_url: "http://p".into(),
            media_id: "m1".into()
        }
    );

    let voice = xml(
        "voice",
        "<MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>2</MsgId>",
    );
    let expected = MessageKind::Voice {
        media_id: "m".into(),
        format: "amr".into(),
        recognition: Some("腾讯微信团队".into()),
    };
    assert_eq!(parse(&voice).kind, expected);
    let voice = xml("voice", "<MediaId>m</MediaId><Format>amr</Format><MsgId>2</MsgId>");
    assert!(matches!(
        parse(&voice).kind,
        MessageKind::Voice { recognition: None, .. }
    ));

    let video = xml(
        "video",
        "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>3</MsgId>",
    );
    assert_eq!(
        parse(&video).kind,
        MessageKind::Video {
            media_id: "m".into(),
            thumb_media_id: "t".into()
        }
    );
    let short = xml(
        "shortvideo",
        "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>4</MsgId>",
    );
    assert_eq!(
        parse(&short).kind,
        MessageKind::ShortVideo {
            media_id: "m".into(),
            thumb_media_id: "t".into()
        }
    );
}

#[test]
fn location_link_and_file_messages_are_typed() {
    let loc = xml(
        "location",
        "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale>\
         <Label><![CDATA[位置信息]]></Label><MsgId>5</MsgId>",
    );
    let expected = MessageKind::Location {
        location_x: 23.134521,
        location_y: 113.358803,
        scale: 20.0,
        label: "位置信息".into(),
    };
    assert_eq!(parse(&loc).kind, expected);

    let link = xml(
        "link",
        "<Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><Url><![CDATA[u]]></Url><MsgId>6</MsgId>",
    );
    let expected = MessageKind::Link {
        title: "t".into(),
        description: "d".into(),
        url: "u".into(),
    };
    assert_eq!(parse(&link).kind, expected);

    let file = xml(
        "file",
        "<Title>a.pdf</Title><Description>d</Description><FileKey>k</FileKey><FileMd5>5d</FileMd5>\
         <FileTotalLen>1024</FileTotalLen><MsgId>7</MsgId>",
    );
    assert!(matches!(
        parse(&file).kind,
        MessageKind::File {
            file_total_len: 1024,
            ..
        }
    ));
}

#[test]
fn subscribe_events_carry_qr_scene_and_ticket() {
    let plain = parse(&event_xml("subscribe", "<EventKey><![CDATA[]]></EventKey>"));
    assert_eq!(
        plain.event(),
        Some(&Event::Subscribe {
            event_key: Some(String::new()),
            ticket: None
        })
    );
    assert_eq!(plain.event().unwrap().qr_scene(), None);
    assert_eq!(plain.dedup_key(), "o_user:1348831860:subscribe:");

    let qr = parse(&event_xml(
        "subscribe",
        "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
    ));
    let event = qr.event().unwrap();
    assert_eq!(event.qr_scene(), Some("123123"));
    assert!(matches!(event, Event::Subscribe { ticket: Some(t), .. } if t == "TICKET"));
    assert_eq!(qr.dedup_key(), "o_user:1348831860:subscribe:qrscene_123123");
}

#[test]
fn other_known_events_are_typed() {
    assert_eq!(
        parse(&event_xml("unsubscribe", "<EventKey><![CDATA[]]></EventKey>")).event(),
        Some(&Event::Unsubscribe)
    );
    let scan = parse(&event_xml("SCAN", "<EventKey>123123</EventKey><Ticket>T</Ticket>"));
    assert_eq!(
        scan.event(),
        Some(&Event::Scan {
            event_key: "123123".into(),
            ticket: Some("T".into())
        })
    );
    assert_eq!(scan.event().unwrap().qr_scene(), Some("123123"));
    let loc = parse(&event_xml(
        "LOCATION",
        "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
    ));
    assert_eq!(
        loc.event(),
        Some(&Event::Location {
            latitude: 23.137466,
            longitude: 113.352425,
            precision: 119.38504
        })
    );
    assert_eq!(loc.dedup_key(), "o_user:1348831860:LOCATION:");
    let click = parse(&event_xml("CLICK", "<EventKey><![CDATA[V1001_TODAY]]></EventKey>"));
    assert_eq!(
        click.event(),
        Some(&Event::Click {
            event_key: "V1001_TODAY".into()
        })
    );
    assert_eq!(click.dedup_key(), "o_user:1348831860:CLICK:V1001_TODAY");
    let view = parse(&event_xml(
        "VIEW",
        "<EventKey><![CDATA[http://www.qq.com/]]></EventKey><MenuId>3</MenuId>",
    ));
    assert_eq!(
        view.event(),
        Some(&Event::View {
            url: "http://www.qq.com/".into(),
            menu_id: Some("3".into())
        })
    );
    let done = parse(&event_xml(
        "TEMPLATESENDJOBFINISH",
        "<MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
    ));
    assert_eq!(
        done.event(),
        Some(&Event::TemplateSendJobFinish {
            status: "success".into()
        })
    );
    assert_eq!(done.header.msg_id.as_deref(), Some("200163836"));
    assert_eq!(done.dedup_key(), "o_user:1348831860:TEMPLATESENDJOBFINISH:");
}

#[test]
fn unknown_msg_type_and_event_keep_the_raw_body() {
    let body = xml("miniprogrampage", "<Title>x</Title><AppId>wx1</AppId><MsgId>9</MsgId>");
    assert_eq!(parse(&body).kind, MessageKind::Unknown { raw: body.clone() });
    assert_eq!(parse(&body).dedup_key(), "9:o_user:1348831860");

    let body = event_xml(
        "scancode_push",
        "<EventKey>6</EventKey><ScanCodeInfo><ScanType>qrcode</ScanType><ScanResult>1</ScanResult></ScanCodeInfo>",
    );
    let msg = parse(&body);
    assert_eq!(
        msg.event(),
        Some(&Event::Unknown {
            event: "scancode_push".into(),
            event_key: Some("6".into()),
            raw: body
        })
    );
    assert_eq!(msg.dedup_key(), "o_user:1348831860:scancode_push:6");
}

#[test]
fn known_type_with_missing_fields_degrades_to_unknown() {
    let body = xml("text", "<MsgId>1</MsgId>");
    assert!(matches!(parse(&body).kind, MessageKind::Unknown { .. }));
    let body = event_xml("LOCATION", "<Latitude>north</Latitude>");
    assert!(matches!(parse(&body).event(), Some(Event::Unknown { .. })));
    let body = xml("event", "");
    assert!(matches!(parse(&body).kind, MessageKind::Unknown { .. }));
    assert_eq!(parse(&body).dedup_key(), "o_user:1348831860:event");
}

#[test]
fn missing_or_invalid_header_fields_are_errors() {
    let cases = [
        (
            "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
            "ToUserName",
        ),
        (
            "<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>",
            "FromUserName",
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>",
            "CreateTime",
        ),
        (
            "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime></xml>",
            "MsgType",
        ),
        (
            "<xml><ToUserName></ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>t</MsgType></xml>",
            "ToUserName",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            parse_message(body.as_bytes()),
            Err(MessageError::MissingField(field)),
            "{body}"
        );
    }
    let bad_time = "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>soon</CreateTime><MsgType>t</MsgType></xml>";
    assert_eq!(
        parse_message(bad_time.as_bytes()),
        Err(MessageError::InvalidField("CreateTime"))
    );
}

#[test]
fn hostile_or_broken_bodies_are_errors() {
    let doctype = format!(
        "<!DOCTYPE xml [<!ENTITY e \"x\">]>{}",
        xml("text", "<Content>&e;</Content>")
    );
    assert_eq!(parse_message(doctype.as_bytes()), Err(MessageError::Dtd));
    assert!(matches!(
        parse_message(b"<xml><ToUserName>"),
        Err(MessageError::Malformed(_))
    ));
    let mut non_utf8 = xml("text", "<Content>").into_bytes();
    non_utf8.extend_from_slice(&[0xc3, 0x28]);
    assert_eq!(parse_message(&non_utf8), Err(MessageError::NotUtf8));
}

#[test]
fn json_push_bodies_parse_like_xml() {
    let body = br#"{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714037059,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}"#;
    let msg = parse_message(body).unwrap();
    assert_eq!(msg.header.create_time, 1_714_037_059);
    assert!(matches!(msg.event(), Some(Event::Unknown { event, .. }) if event == "debug_demo"));
    let text = br#"{"ToUserName":"a","FromUserName":"u","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":23456789012345678}"#;
    let msg = parse_message(text).unwrap();
    assert_eq!(msg.kind, MessageKind::Text { content: "hi".into() });
    assert_eq!(msg.dedup_key(), "23456789012345678:u:1");
    // MsgId / MsgID are one field: both spellings in one body are refused, as in XML.
    let twice =
        br#"{"ToUserName":"a","FromUserName":"u","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":1,"MsgID":2}"#;
    assert!(matches!(parse_message(twice), Err(MessageError::Malformed(why)) if why.contains("duplicate")));
}

#[test]
fn prefixed_field_names_match_by_their_local_name() {
    let msg = parse(
        "<xml><wx:ToUserName>gh_oa</wx:ToUserName><a:FromUserName>o_user</a:FromUserName>\
         <CreateTime>1348831860</CreateTime><MsgType>text</MsgType><wx:Content>hi</wx:Content>\
         <ns:x:MsgId>42</ns:x:MsgId></xml>",
    );
    assert_eq!(msg.header.to_user_name, "gh_oa");
    assert_eq!(msg.header.from_user_name, "o_user");
    // After the first colon only, as quick-xml's `local_name`: `x:MsgId` is no field of ours.
    assert_eq!(msg.header.msg_id, None);
    assert_eq!(msg.kind, MessageKind::Text { content: "hi".into() });
}
