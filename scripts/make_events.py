#!/usr/bin/env python3
"""Regenerates the signed sample API Gateway (HTTP API v2) events in events/.

The events are committed; this script documents how their signatures and ciphertexts were made, so
they can be regenerated after a change of demo credentials. The committed events are dated
2023-11-14 (timestamp 1700000000) so the tests that replay them on a fixed clock stay
deterministic; a real callback refuses them (its freshness window is 300 s). For invoking a
deployed or `cargo lambda watch`ed function, sign them now into another directory:

  python3 scripts/make_events.py --now target/events   # then --data-file target/events/….json Safe mode needs the `cryptography`
package (AES-256-CBC); everything else is the standard library.

Demo credentials (also used by the tests that replay the events):
  WECHAT_TOKEN=wechat-ha-demo-token  WECHAT_APPID=wx0123456789abcdef
  WECHAT_ENCODING_AES_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
"""
import base64
import hashlib
import json
import os
import struct
import sys
import urllib.parse

TOKEN = "wechat-ha-demo-token"
APPID = "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events")
# The events' time (seconds): fixed for the committed events, now with --now.
BASE = 1700000000


def sign(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(msg: str, random16: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = base64.b64decode(AES_KEY + "=")
    body = msg.encode()
    plain = random16 + struct.pack(">I", len(body)) + body + APPID.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


IAM_AUTHORIZER = {"iam": {
    "accessKey": "AKIAIOSFODNN7EXAMPLE", "accountId": "123456789012", "callerId": "AIDACKCEVSQ6C2EXAMPLE",
    "cognitoIdentity": None, "principalOrgId": None,
    "userArn": "arn:aws:iam::123456789012:user/backend", "userId": "AIDACKCEVSQ6C2EXAMPLE"}}


def event(method, path, query, body=None, headers=None, request_id="req-sample", authorizer=None):
    raw_query = urllib.parse.urlencode(query)
    hdrs = {
        "host": "abc123defg.execute-api.us-east-1.amazonaws.com",
        "user-agent": "Mozilla/4.0",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        hdrs["content-type"] = "text/xml"
    hdrs.update(headers or {})
    ev = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": "abc123defg.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123defg",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "Mozilla/4.0"},
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": BASE * 1000,
        },
        "isBase64Encoded": False,
    }
    if authorizer:
        ev["requestContext"]["authorizer"] = authorizer
    if query:
        ev["queryStringParameters"] = query
    if body is not None:
        ev["body"] = body
    return ev


def text_xml(content, msg_id, create_time=None):
    create_time = BASE if create_time is None else create_time
    return ("<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
            "<FromUserName><![CDATA[oUser123]]></FromUserName>"
            f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>")


def write(name, ev):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(ev, f, indent=2, ensure_ascii=False)
        f.write("\n")


# The login samples: a fixed state, the browser's binding cookie and codes the tests issue at the mock.
AUTH_STATE = "5a" * 32
AUTH_BINDING = "b1" * 32
AUTH_OAUTH_CODE = "SAMPLE_OAUTH_CODE_0001"
AUTH_WXA_CODE = "SAMPLE_WXA_CODE_0001"


def auth_events():
    write("auth-authorize-get.json", event("GET", "/oauth/authorize",
                                           {"return_to": "/welcome", "scope": "snsapi_userinfo"},
                                           request_id="req-auth-authorize"))
    # HTTP API (payload 2.0) delivers the browser's cookies in `cookies`, not in a Cookie header.
    callback = event("GET", "/oauth/callback", {"code": AUTH_OAUTH_CODE, "state": AUTH_STATE},
                     request_id="req-auth-callback")
    callback["cookies"] = [f"__Host-wxha_login={AUTH_BINDING}", "theme=dark"]
    write("auth-callback-get.json", callback)
    login = event("GET", "/miniprogram/login", {}, body=json.dumps({"code": AUTH_WXA_CODE}),
                  headers={"content-type": "application/json"}, request_id="req-auth-wxa-login")
    login["routeKey"] = login["requestContext"]["routeKey"] = "POST /miniprogram/login"
    login["requestContext"]["http"]["method"] = "POST"
    write("auth-miniprogram-login-post.json", login)


IAM_CALLER = {"iam": {"accessKey": "AKIAIOSFODNN7EXAMPLE", "accountId": "123456789012",
                      "callerId": "AIDACKCEVSQ6C2EXAMPLE", "cognitoIdentity": None, "principalOrgId": None,
                      "userArn": "arn:aws:iam::123456789012:user/operator", "userId": "AIDACKCEVSQ6C2EXAMPLE"}}


def scheduled(rule, detail=None):
    return {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eab", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2023-11-14T22:15:00Z",
            "region": "us-east-1", "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
            "detail": detail or {}}


def operations_events():
    """One sample per operations function (HTTP ones signed by IAM at API Gateway)."""
    write("admin-breakers-get.json", event("GET", "/admin/breakers", {}, request_id="req-admin",
                                           authorizer=IAM_CALLER))
    write("followers-list-get.json", event("GET", "/followers", {"subscribed": "true", "limit": "10"},
                                           request_id="req-followers", authorizer=IAM_CALLER))
    write("health-ready-get.json", event("GET", "/health/ready", {}, request_id="req-health"))
    write("breaker-tuner-scheduled.json", scheduled("wechat-ha-breaker-tuner"))
    write("callback-ip-refresh-scheduled.json", scheduled("wechat-ha-callback-ip-refresh"))
    write("sync-tick-scheduled.json", scheduled("wechat-ha-sync-tick"))
    # The nightly rule's target input replaces the event: the function receives exactly this.
    write("sync-start-scheduled.json", {"action": "start"})
    write("pre-traffic-hook-lifecycle.json", {
        "DeploymentId": "d-EXAMPLE123",
        "LifecycleEventHookExecutionId": "eyJkZXBsb3ltZW50SWQiOiJkLUVYQU1QTEUxMjMifQ==",
    })


def main():
    ts, nonce = str(BASE), "12345"
    plain_q = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "oUser123"}

    write("callback-verify-get.json", event("GET", "/wechat", {
        "signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": "7130385893912361337"}))

    write("callback-text-post.json", event("POST", "/wechat", plain_q, text_xml("hello", "1234567890123456"),
                                           request_id="req-text"))

    subscribe = ("<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
                 f"<FromUserName><![CDATA[oUser123]]></FromUserName><CreateTime>{BASE + 100}</CreateTime>"
                 "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
                 "<EventKey><![CDATA[qrscene_42]]></EventKey><Ticket><![CDATA[TICKET123]]></Ticket></xml>")
    write("callback-subscribe-post.json", event("POST", "/wechat", plain_q, subscribe, request_id="req-sub"))

    bad_q = dict(plain_q, signature="0" * 40)
    write("callback-bad-signature-post.json", event("POST", "/wechat", bad_q, text_xml("hello", "1234567890123457"),
                                                    request_id="req-bad"))

    enc_ts, enc_nonce = str(BASE + 200), "67890"
    encrypt_value = encrypt(text_xml("safe hello", "1234567890123458", BASE + 200), b"0123456789abcdef")
    enc_body = ("<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt_value}]]></Encrypt></xml>")
    enc_q = {"signature": sign(TOKEN, enc_ts, enc_nonce), "timestamp": enc_ts, "nonce": enc_nonce,
             "openid": "oUser123", "encrypt_type": "aes",
             "msg_signature": sign(TOKEN, enc_ts, enc_nonce, encrypt_value)}
    write("callback-encrypted-post.json", event("POST", "/wechat", enc_q, enc_body, request_id="req-enc"))

    json_headers = {"content-type": "application/json"}
    custom = {"touser": "oUser123", "msgtype": "text", "text": {"content": "Your order has shipped"}}
    write("send-custom-post.json", event("POST", "/messages/custom", {}, json.dumps(custom, ensure_ascii=False),
                                         dict(json_headers, **{"idempotency-key": "order-1001-shipped"}),
                                         request_id="req-send-custom", authorizer=IAM_AUTHORIZER))
    template = {"touser": "oUser123", "template_id": "ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
                "url": "https://example.com/orders/1001",
                "data": {"first": {"value": "Order shipped"}, "keyword1": {"value": "1001"}}}
    write("send-template-post.json", event("POST", "/messages/template", {}, json.dumps(template),
                                           json_headers, request_id="req-send-template",
                                           authorizer=IAM_AUTHORIZER))
    subscribe = {"touser": "oUser123", "template_id": "TEMPLATE_ID", "page": "index",
                 "data": {"thing1": {"value": "Order 1001"}, "time2": {"value": "2023-11-14 22:13"}}}
    write("send-subscribe-post.json", event("POST", "/messages/subscribe", {}, json.dumps(subscribe),
                                            json_headers, request_id="req-send-subscribe",
                                            authorizer=IAM_AUTHORIZER))

    auth_events()
    operations_events()
    write("jssdk-config-get.json", event("GET", "/jssdk/config",
                                               {"url": "https://shop.example.com/orders/1001?from=menu"},
                                               request_id="req-jssdk"))
    write("token-refresh-scheduled.json", {
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2023-11-14T22:15:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/wechat-ha-token-refresh"], "detail": {}})

    def sqs_record(message_id, body, receive_count="1"):
        return {"messageId": message_id, "receiptHandle": f"AQEB{message_id}==", "body": body,
                "attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": str(BASE * 1000),
                               "SenderId": "AIDACKCEVSQ6C2EXAMPLE", "ApproximateFirstReceiveTimestamp": str(BASE * 1000 + 1)},
                "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:wechat-ha-send",
                "awsRegion": "us-east-1"}
    job1 = json.dumps({"type": "send", "id": "order-1001-shipped", "kind": "custom", "payload": custom},
                      ensure_ascii=False)
    job2 = json.dumps({"type": "send", "id": "order-1002-shipped", "kind": "template", "payload": template})
    with open(os.path.join(OUT, "send-worker-sqs-batch.json"), "w") as f:
        json.dump({"Records": [sqs_record("11111111-1111-4111-8111-111111111111", job1),
                               sqs_record("22222222-2222-4222-8222-222222222222", job2),
                               sqs_record("33333333-3333-4333-8333-333333333333", "not a job", "2")]},
                  f, indent=2, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--now":
        import time
        BASE = int(time.time())
        OUT = sys.argv[2]
        os.makedirs(OUT, exist_ok=True)
    elif len(sys.argv) != 1:
        sys.exit("usage: make_events.py [--now DIR]")
    sys.exit(main())
