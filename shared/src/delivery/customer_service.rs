//! A passive reply → the customer-service message that delivers the same content later.
//!
//! Used when the business handler missed WeChat's 5 s: the callback answered `success`, and the
//! worker sends what the handler produced through `/cgi-bin/message/custom/send` instead.

use serde_json::{Value, json};

use crate::protocol::Reply;

/// The customer-service message to `openid` carrying `reply`; `None` for replies that have no
/// customer-service form (`success`, transfer to customer service).
pub fn reply_as_customer_service(openid: &str, reply: &Reply) -> Option<Value> {
    let (msgtype, body) = match reply {
        Reply::Text { content } => ("text", json!({"content": content})),
        Reply::Image { media_id } => ("image", json!({"media_id": media_id})),
        Reply::Voice { media_id } => ("voice", json!({"media_id": media_id})),
        Reply::Video {
            media_id,
            title,
            description,
        } => (
            "video",
            json!({"media_id": media_id, "title": title.clone().unwrap_or_default(),
                   "description": description.clone().unwrap_or_default()}),
        ),
        Reply::Music {
            title,
            description,
            music_url,
            hq_music_url,
            thumb_media_id,
        } => (
            "music",
            json!({"title": title.clone().unwrap_or_default(), "description": description.clone().unwrap_or_default(),
                   "musicurl": music_url.clone().unwrap_or_default(), "hqmusicurl": hq_music_url.clone().unwrap_or_default(),
                   "thumb_media_id": thumb_media_id}),
        ),
        // Customer-service news carries one article: send the first.
        Reply::News { articles } => {
            let article = articles.first()?;
            (
                "news",
                json!({"articles": [{"title": article.title, "description": article.description,
                                     "url": article.url, "picurl": article.pic_url}]}),
            )
        }
        _ => return None,
    };
    let mut message = json!({"touser": openid, "msgtype": msgtype});
    message[msgtype] = body;
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Article;

    #[test]
    fn text_reply_becomes_a_text_customer_service_message() {
        let message = reply_as_customer_service("o1", &Reply::text("hi")).unwrap();
        assert_eq!(
            message,
            json!({"touser": "o1", "msgtype": "text", "text": {"content": "hi"}})
        );
    }

    #[test]
    fn news_reply_sends_its_first_article() {
        let article = Article {
            title: "t".into(),
            description: "d".into(),
            pic_url: "p".into(),
            url: "https://u".into(),
        };
        let message = reply_as_customer_service(
            "o1",
            &Reply::News {
                articles: vec![article.clone(), article],
            },
        )
        .unwrap();
        assert_eq!(message["news"]["articles"].as_array().unwrap().len(), 1);
        assert_eq!(message["news"]["articles"][0]["picurl"], "p");
    }

    #[test]
    fn success_has_nothing_to_send() {
        assert!(reply_as_customer_service("o1", &Reply::Success).is_none());
    }
}
