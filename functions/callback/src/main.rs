//! Lambda entry point for the WeChat callback: `GET /wechat` (verify) and `POST /wechat` (messages).

fn main() {}
