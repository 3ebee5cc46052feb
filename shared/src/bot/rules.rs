//! A rule-based handler configured by a small JSON file: keywords, a welcome text, a default.
//!
//! ```json
//! { "subscribe": {"type": "text", "content": "Welcome!"},
//!   "keywords": [{"keyword": "help", "match": "exact", "reply": {"type": "text", "content": "…"}}],
//!   "default": {"type": "echo"} }
//! ```
//! Keywords match case-insensitively, first rule wins. `echo` answers a text with the same text
//! (and a voice message with its recognised text). The demo rule set is `shared/rules/demo.json`.

use async_trait::async_trait;
use serde::Deserialize;

use super::{HandlerError, MessageHandler};
use crate::protocol::{Article, Event, Message, MessageKind, Reply};

/// The demo rule set, built into the binary.
pub const DEMO_RULES: &str = include_str!("../../rules/demo.json");

/// A rule set that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The JSON does not describe rules.
    #[error("invalid rules: {0}")]
    Invalid(String),
}

/// How a keyword matches the text.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The whole text equals the keyword (ignoring case and surrounding spaces).
    #[default]
    Exact,
    /// The text contains the keyword (ignoring case).
    Contains,
}

/// What to answer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplySpec {
    /// A fixed text.
    Text {
        /// The text.
        content: String,
    },
    /// The user's own text back.
    Echo,
    /// A news card.
    News {
        /// 1 to 8 articles.
        articles: Vec<ArticleSpec>,
    },
    /// An image by media id.
    Image {
        /// Media id.
        media_id: String,
    },
    /// Hand over to customer service.
    TransferCustomerService,
    /// No reply (`success`).
    Success,
}

/// One article of a news reply.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ArticleSpec {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    pic_url: String,
    #[serde(default)]
    url: String,
}

/// A keyword rule.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct KeywordRule {
    /// The keyword.
    pub keyword: String,
    /// How it matches.
    #[serde(default, rename = "match")]
    pub match_kind: MatchKind,
    /// The answer.
    pub reply: ReplySpec,
}

/// A whole rule set.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Answer to a new follower.
    #[serde(default)]
    pub subscribe: Option<ReplySpec>,
    /// Keyword rules, first match wins.
    #[serde(default)]
    pub keywords: Vec<KeywordRule>,
    /// Answer to any other text (and, when `echo`, voice with recognition).
    #[serde(default = "default_reply")]
    pub default: ReplySpec,
}

fn default_reply() -> ReplySpec {
    ReplySpec::Success
}

impl Rules {
    /// The demo rule set (echo), built into the binary.
    pub fn demo() -> Self {
        // The demo file is part of the binary and covered by a test, so it always parses.
        Self::parse(DEMO_RULES).unwrap_or(Self {
            subscribe: None,
            keywords: vec![],
            default: ReplySpec::Echo,
        })
    }

    /// Parses and validates a rule set (news replies need 1 to 8 articles).
    pub fn parse(json: &str) -> Result<Self, RuleError> {
        let rules: Self = serde_json::from_str(json).map_err(|e| RuleError::Invalid(e.to_string()))?;
        let specs = rules
            .subscribe
            .iter()
            .chain(rules.keywords.iter().map(|k| &k.reply))
            .chain([&rules.default]);
        for spec in specs {
            if let ReplySpec::News { articles } = spec
                && !(1..=crate::protocol::MAX_ARTICLES).contains(&articles.len())
            {
                return Err(RuleError::Invalid(format!(
                    "a news reply needs 1 to 8 articles, got {}",
                    articles.len()
                )));
            }
        }
        Ok(rules)
    }
}

/// The built-in business handler: answers from a [`Rules`] set.
#[derive(Debug, Clone)]
pub struct RuleHandler {
    /// The rules, each keyword trimmed and lowercased once, at load: a message is lowercased
    /// once and compared, no keyword is converted per message.
    rules: Rules,
}

impl RuleHandler {
    /// A handler over `rules`.
    pub fn new(mut rules: Rules) -> Self {
        for rule in &mut rules.keywords {
            rule.keyword = rule.keyword.trim().to_lowercase();
        }
        Self { rules }
    }

    /// The demo rule set (echo).
    pub fn demo() -> Self {
        Self::new(Rules::demo())
    }

    fn reply_for_text(&self, text: &str) -> Reply {
        let wanted = text.trim().to_lowercase();
        let rule = self.rules.keywords.iter().find(|rule| match rule.match_kind {
            MatchKind::Exact => wanted == rule.keyword,
            MatchKind::Contains => wanted.contains(rule.keyword.as_str()),
        });
        render(rule.map_or(&self.rules.default, |rule| &rule.reply), Some(text))
    }
}

fn render(spec: &ReplySpec, text: Option<&str>) -> Reply {
    match spec {
        ReplySpec::Text { content } => Reply::text(content.clone()),
        ReplySpec::Echo => text.filter(|t| !t.is_empty()).map_or(Reply::Success, Reply::text),
        ReplySpec::News { articles } => Reply::News {
            articles: articles
                .iter()
                .map(|a| Article {
                    title: a.title.clone(),
                    description: a.description.clone(),
                    pic_url: a.pic_url.clone(),
                    url: a.url.clone(),
                })
                .collect(),
        },
        ReplySpec::Image { media_id } => Reply::Image {
            media_id: media_id.clone(),
        },
        ReplySpec::TransferCustomerService => Reply::TransferCustomerService { kf_account: None },
        ReplySpec::Success => Reply::Success,
    }
}

#[async_trait]
impl MessageHandler for RuleHandler {
    async fn handle(&self, message: &Message) -> Result<Reply, HandlerError> {
        Ok(match &message.kind {
            MessageKind::Text { content } => self.reply_for_text(content),
            MessageKind::Voice {
                recognition: Some(text),
                ..
            } => self.reply_for_text(text),
            MessageKind::Event(Event::Subscribe { .. }) => self
                .rules
                .subscribe
                .as_ref()
                .map_or(Reply::Success, |spec| render(spec, None)),
            _ => Reply::Success,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_message;

    fn text(content: &str) -> Message {
        let xml = format!(
            "<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>text</MsgType><Content><![CDATA[{content}]]></Content><MsgId>9</MsgId></xml>"
        );
        parse_message(xml.as_bytes()).expect("valid message")
    }

    #[tokio::test]
    async fn demo_rules_echo_text_and_welcome_followers() {
        let handler = RuleHandler::demo();
        assert_eq!(handler.handle(&text("hello")).await.unwrap(), Reply::text("hello"));
        let subscribe = parse_message(
            b"<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>\
              <MsgType>event</MsgType><Event>subscribe</Event></xml>",
        )
        .unwrap();
        let Reply::Text { content } = handler.handle(&subscribe).await.unwrap() else {
            panic!("text expected")
        };
        assert!(content.starts_with("Welcome"));
    }

    #[tokio::test]
    async fn keywords_match_case_insensitively_first_rule_wins() {
        let rules = Rules::parse(
            r#"{"keywords":[{"keyword":"Price","match":"contains","reply":{"type":"text","content":"10 yuan"}},
                            {"keyword":"price list","reply":{"type":"text","content":"never reached"}}],
                "default":{"type":"success"}}"#,
        )
        .unwrap();
        let handler = RuleHandler::new(rules);
        assert_eq!(
            handler.handle(&text("what is the PRICE list?")).await.unwrap(),
            Reply::text("10 yuan")
        );
        assert_eq!(handler.handle(&text("hi")).await.unwrap(), Reply::Success);
    }

    #[test]
    fn invalid_rules_are_rejected_with_a_reason() {
        assert!(matches!(Rules::parse("{"), Err(RuleError::Invalid(_))));
        let empty_news = r#"{"default":{"type":"news","articles":[]}}"#;
        assert!(
            Rules::parse(empty_news)
                .unwrap_err()
                .to_string()
                .contains("1 to 8 articles")
        );
        assert!(Rules::parse(r#"{"unknown": 1}"#).is_err());
    }

    #[test]
    fn demo_rules_parse() {
        assert!(Rules::parse(DEMO_RULES).is_ok());
    }
}
