//! Passive replies: the XML a callback may answer with, or `success` for "no reply".
//!
//! The output is WeChat's documented XML with every text in CDATA. CDATA cannot contain `]]>`, so such text
//! is split across sections (`]]` + `>` land in adjacent sections), which any XML parser joins back.

use serde::{Deserialize, Serialize};

use super::message::Header;

/// The body that tells WeChat "no passive reply": it neither retries nor shows an error (never encrypted).
pub const SUCCESS: &str = "success";

/// A rendered passive reply, before sealing: what the ledger stores for WeChat's retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "xml", rename_all = "snake_case")]
pub enum PassiveReply {
    /// No reply: the body `success`.
    Success,
    /// The reply XML, plaintext (sealing encrypts it when the request was encrypted).
    Xml(String),
}

/// Most articles a news reply may carry.
pub const MAX_ARTICLES: usize = 8;

/// One article of a news reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Article {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Picture URL.
    pub pic_url: String,
    /// Link URL.
    pub url: String,
}

/// A passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// No reply: the body is `success`, which WeChat accepts silently (answer later via customer service).
    Success,
    /// Text.
    Text {
        /// The text.
        content: String,
    },
    /// Image by media id.
    Image {
        /// Media id.
        media_id: String,
    },
    /// Voice by media id.
    Voice {
        /// Media id.
        media_id: String,
    },
    /// Video by media id.
    Video {
        /// Media id.
        media_id: String,
        /// Optional title.
        title: Option<String>,
        /// Optional description.
        description: Option<String>,
    },
    /// Music.
    Music {
        /// Optional title.
        title: Option<String>,
        /// Optional description.
        description: Option<String>,
        /// Optional music URL.
        music_url: Option<String>,
        /// Optional high-quality music URL (used on Wi-Fi).
        hq_music_url: Option<String>,
        /// Thumbnail media id (required).
        thumb_media_id: String,
    },
    /// News: 1 to [`MAX_ARTICLES`] articles.
    News {
        /// The articles.
        articles: Vec<Article>,
    },
    /// Hand the conversation to the customer-service system, optionally to one agent.
    TransferCustomerService {
        /// `KfAccount` of a specific agent.
        kf_account: Option<String>,
    },
}

/// A reply that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A news reply must carry 1 to 8 articles.
    #[error("news reply needs 1 to 8 articles, got {0}")]
    ArticleCount(usize),
}

impl Reply {
    /// A text reply.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// A news reply, validated.
    ///
    /// # Errors
    /// [`ReplyError::ArticleCount`] unless there are 1 to 8 articles.
    pub fn news(articles: Vec<Article>) -> Result<Self, ReplyError> {
        check_article_count(articles.len())?;
        Ok(Self::News { articles })
    }

    /// Whether this is the "no reply" case.
    pub const fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }

    /// Renders the reply to the sender of `inbound` (To/From swapped), stamped `create_time` (Unix seconds).
    ///
    /// # Errors
    /// As [`to_xml`](Self::to_xml).
    pub fn render(&self, inbound: &Header, create_time: u64) -> Result<PassiveReply, ReplyError> {
        if self.is_success() {
            return Ok(PassiveReply::Success);
        }
        self.to_xml(&inbound.from_user_name, &inbound.to_user_name, create_time)
            .map(PassiveReply::Xml)
    }

    /// Renders the reply XML; [`Reply::Success`] renders as `success`.
    ///
    /// `to_user` is the user's openid, `from_user` the account's original id.
    ///
    /// # Errors
    /// [`ReplyError::ArticleCount`] for a news reply without 1 to 8 articles.
    pub fn to_xml(&self, to_user: &str, from_user: &str, create_time: u64) -> Result<String, ReplyError> {
        let msg_type = match self {
            Self::Success => return Ok(SUCCESS.to_owned()),
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News { articles } => {
                check_article_count(articles.len())?;
                "news"
            }
            Self::TransferCustomerService { .. } => "transfer_customer_service",
        };
        let mut out = Xml(String::with_capacity(
            192 + to_user.len() + from_user.len() + self.payload_len_hint(),
        ));
        out.open("xml");
        out.cdata("ToUserName", to_user);
        out.cdata("FromUserName", from_user);
        out.element("CreateTime", itoa::Buffer::new().format(create_time));
        out.cdata("MsgType", msg_type);
        self.write_payload(&mut out);
        out.close("xml");
        Ok(out.0)
    }

    fn write_payload(&self, out: &mut Xml) {
        match self {
            Self::Success => {}
            Self::Text { content } => out.cdata("Content", content),
            Self::Image { media_id } => out.wrapped("Image", |o| o.cdata("MediaId", media_id)),
            Self::Voice { media_id } => out.wrapped("Voice", |o| o.cdata("MediaId", media_id)),
            Self::Video {
                media_id,
                title,
                description,
            } => out.wrapped("Video", |o| {
                o.cdata("MediaId", media_id);
                o.cdata_opt("Title", title.as_deref());
                o.cdata_opt("Description", description.as_deref());
            }),
            Self::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                out.wrapped("Music", |o| {
                    o.cdata_opt("Title", title.as_deref());
                    o.cdata_opt("Description", description.as_deref());
                    o.cdata_opt("MusicUrl", music_url.as_deref());
                    o.cdata_opt("HQMusicUrl", hq_music_url.as_deref());
                    o.cdata("ThumbMediaId", thumb_media_id);
                });
            }
            Self::News { articles } => {
                out.element("ArticleCount", &articles.len().to_string());
                out.wrapped("Articles", |o| {
                    for article in articles {
                        o.wrapped("item", |o| {
                            o.cdata("Title", &article.title);
                            o.cdata("Description", &article.description);
                            o.cdata("PicUrl", &article.pic_url);
                            o.cdata("Url", &article.url);
                        });
                    }
                });
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    out.wrapped("TransInfo", |o| o.cdata("KfAccount", account));
                }
            }
        }
    }

    /// Rough size of the variable content, to allocate the output once.
    fn payload_len_hint(&self) -> usize {
        match self {
            Self::Text { content } => content.len(),
            Self::News { articles } => articles
                .iter()
                .map(|a| 120 + a.title.len() + a.description.len() + a.pic_url.len() + a.url.len())
                .sum(),
            _ => 160,
        }
    }
}

fn check_article_count(count: usize) -> Result<(), ReplyError> {
    if (1..=MAX_ARTICLES).contains(&count) {
        Ok(())
    } else {
        Err(ReplyError::ArticleCount(count))
    }
}

/// Minimal writer for WeChat's reply XML (element names are fixed ASCII; all text goes through CDATA).
struct Xml(String);

impl Xml {
    fn open(&mut self, name: &str) {
        self.0.push('<');
        self.0.push_str(name);
        self.0.push('>');
    }

    fn close(&mut self, name: &str) {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
    }

    /// An element with text that needs no escaping (numbers).
    fn element(&mut self, name: &str, digits: &str) {
        self.open(name);
        self.0.push_str(digits);
        self.close(name);
    }

    fn cdata(&mut self, name: &str, text: &str) {
        self.open(name);
        push_cdata(&mut self.0, text);
        self.close(name);
    }

    fn cdata_opt(&mut self, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            self.cdata(name, text);
        }
    }

    fn wrapped(&mut self, name: &str, body: impl FnOnce(&mut Self)) {
        self.open(name);
        body(self);
        self.close(name);
    }
}

/// Appends `text` as CDATA, splitting the section at every `]]>`: `a]]>b` → `<![CDATA[a]]]]><![CDATA[>b]]>`.
pub(crate) fn push_cdata(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    // Nearly every text has no `]` at all: one memchr answers that, where `str::find` would set
    // up a substring searcher for every field of every reply (1,200 instructions a message).
    let mut rest = text;
    if memchr::memchr(b']', text.as_bytes()).is_some() {
        while let Some(at) = rest.find("]]>") {
            out.push_str(&rest[..at + 2]);
            out.push_str("]]><![CDATA[");
            rest = &rest[at + 2..];
        }
    }
    out.push_str(rest);
    out.push_str("]]>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{MessageKind, parse_message};

    fn render(reply: &Reply) -> String {
        reply.to_xml("o_user", "gh_oa", 12_345_678).unwrap()
    }

    const HEAD: &str = "<xml><ToUserName><![CDATA[o_user]]></ToUserName><FromUserName><![CDATA[gh_oa]]></FromUserName>\
                        <CreateTime>12345678</CreateTime>";

    #[test]
    fn text_reply_is_exact_wechat_xml() {
        let expected = format!("{HEAD}<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>");
        assert_eq!(render(&Reply::text("你好")), expected);
    }

    #[test]
    fn media_replies_are_exact_wechat_xml() {
        let image = render(&Reply::Image { media_id: "m".into() });
        assert_eq!(
            image,
            format!("{HEAD}<MsgType><![CDATA[image]]></MsgType><Image><MediaId><![CDATA[m]]></MediaId></Image></xml>")
        );
        let voice = render(&Reply::Voice { media_id: "m".into() });
        assert_eq!(
            voice,
            format!("{HEAD}<MsgType><![CDATA[voice]]></MsgType><Voice><MediaId><![CDATA[m]]></MediaId></Voice></xml>")
        );
        let video = render(&Reply::Video {
            media_id: "m".into(),
            title: Some("t".into()),
            description: Some("d".into()),
        });
        assert_eq!(
            video,
            format!(
                "{HEAD}<MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[m]]></MediaId>\
                 <Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description></Video></xml>"
            )
        );
        let music = render(&Reply::Music {
            title: Some("T".into()),
            description: Some("D".into()),
            music_url: Some("u".into()),
            hq_music_url: Some("hq".into()),
            thumb_media_id: "th".into(),
        });
        assert_eq!(
            music,
            format!(
                "{HEAD}<MsgType><![CDATA[music]]></MsgType><Music><Title><![CDATA[T]]></Title>\
                 <Description><![CDATA[D]]></Description><MusicUrl><![CDATA[u]]></MusicUrl>\
                 <HQMusicUrl><![CDATA[hq]]></HQMusicUrl><ThumbMediaId><![CDATA[th]]></ThumbMediaId></Music></xml>"
            )
        );
    }

    #[test]
    fn news_reply_needs_one_to_eight_articles() {
        let article = Article {
            title: "t".into(),
            description: "d".into(),
            pic_url: "p".into(),
            url: "u".into(),
        };
        let news = Reply::news(vec![article.clone()]).unwrap();
        assert_eq!(
            render(&news),
            format!(
                "{HEAD}<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item>\
                 <Title><![CDATA[t]]></Title><Description><![CDATA[d]]></Description><PicUrl><![CDATA[p]]></PicUrl>\
                 <Url><![CDATA[u]]></Url></item></Articles></xml>"
            )
        );
        assert!(Reply::news(vec![article.clone(); 8]).is_ok());
        assert_eq!(Reply::news(vec![]), Err(ReplyError::ArticleCount(0)));
        assert_eq!(Reply::news(vec![article.clone(); 9]), Err(ReplyError::ArticleCount(9)));
        let unchecked = Reply::News {
            articles: vec![article; 9],
        };
        assert_eq!(unchecked.to_xml("a", "b", 1), Err(ReplyError::ArticleCount(9)));
    }

    #[test]
    fn transfer_customer_service_optionally_names_the_agent() {
        let any = render(&Reply::TransferCustomerService { kf_account: None });
        assert_eq!(
            any,
            format!("{HEAD}<MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>")
        );
        let one = render(&Reply::TransferCustomerService {
            kf_account: Some("test1@test".into()),
        });
        assert!(one.ends_with("<TransInfo><KfAccount><![CDATA[test1@test]]></KfAccount></TransInfo></xml>"));
    }

    #[test]
    fn success_is_the_no_reply_body() {
        assert!(Reply::Success.is_success());
        assert_eq!(render(&Reply::Success), "success");
    }

    #[test]
    fn cdata_terminator_in_content_is_split_and_parses_back() {
        for content in [
            "a]]>b",
            "]]>",
            "]]>]]>",
            "x]]]>y",
            "]]",
            "<![CDATA[x]]>",
            "]",
            "",
            "   ",
            " \n\t ",
        ] {
            let xml = render(&Reply::text(content));
            let parsed = parse_message(xml.as_bytes()).unwrap();
            assert_eq!(
                parsed.kind,
                MessageKind::Text {
                    content: content.into()
                },
                "{xml}"
            );
        }
        let mut out = String::new();
        push_cdata(&mut out, "a]]>b");
        assert_eq!(out, "<![CDATA[a]]]]><![CDATA[>b]]>");
    }

    proptest::proptest! {
        /// Any text — `]` and `>` dense, so the fast path without `]` and the split path both run
        /// — parses back from its CDATA unchanged.
        #[test]
        fn any_text_parses_back_from_its_cdata(content in "[a-c\\]>< ]{0,24}") {
            let parsed = parse_message(render(&Reply::text(content.as_str())).as_bytes()).unwrap();
            proptest::prop_assert_eq!(parsed.kind, MessageKind::Text { content });
        }
    }

    #[test]
    fn reply_for_inbound_swaps_the_parties() {
        let inbound = Header {
            to_user_name: "gh_oa".into(),
            from_user_name: "o_user".into(),
            create_time: 1,
            msg_type: "text".into(),
            msg_id: None,
        };
        assert_eq!(
            Reply::text("x").render(&inbound, 12_345_678).unwrap(),
            PassiveReply::Xml(render(&Reply::text("x")))
        );
        assert_eq!(Reply::Success.render(&inbound, 1).unwrap(), PassiveReply::Success);
    }
}
