"""Generate self-consistent (NOT upstream) full APIv3 notification vectors with a 32-byte APIv3 key (AES-256-GCM),
signed with the wechatpay-go public test key (whose public half is the notify_full vector's platform cert)."""
import base64, json
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
import os
HERE = os.path.dirname(os.path.abspath(__file__))
sv = json.load(open(os.path.join(HERE, "signing_vectors.json")))
key = serialization.load_pem_private_key(sv["pkcs8_pem"].encode(), password=None)
APIV3 = "0123456789abcdef0123456789abcdef"
def enc(pt, nonce, aad):
    return base64.b64encode(AESGCM(APIV3.encode()).encrypt(nonce.encode(), pt.encode(), aad.encode())).decode()
tx = {"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018",
      "transaction_id":"4200000000002104083200000488","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功",
      "bank_type":"CMC","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
      "amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}
rf = {"mchid":"1230000109","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000002104083200000488",
      "out_refund_no":"1217752501201407033233368019","refund_id":"50200207182018070300011301001","refund_status":"SUCCESS",
      "success_time":"2018-06-08T10:34:56+08:00","user_received_account":"招商银行信用卡0403",
      "amount":{"total":100,"refund":100,"payer_total":100,"payer_refund":100}}
out = []
for vid, ev, summ, otype, aad, nonce, res in (
    ("generated_local_notify_transaction_success", "TRANSACTION.SUCCESS", "支付成功", "transaction", "transaction", "fdasflkja484", tx),
    ("generated_local_notify_refund_success", "REFUND.SUCCESS", "退款成功", "refund", "refund", "fdasflkja485", rf)):
    pt = json.dumps(res, ensure_ascii=False, separators=(",", ":"))
    body = json.dumps({"id":"EV-2018022511223320873","create_time":"2018-06-08T10:34:56+08:00","resource_type":"encrypt-resource",
                       "event_type":ev,"summary":summ,"resource":{"original_type":otype,"algorithm":"AEAD_AES_256_GCM",
                       "ciphertext":enc(pt, nonce, aad),"associated_data":aad,"nonce":nonce}}, ensure_ascii=False, separators=(",", ":"))
    ts, wn = "1624523846", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz"
    sig = base64.b64encode(key.sign(f"{ts}\n{wn}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    # self-check
    r = json.loads(body)["resource"]
    assert AESGCM(APIV3.encode()).decrypt(r["nonce"].encode(), base64.b64decode(r["ciphertext"]), r["associated_data"].encode()).decode() == pt
    out.append({"id": vid, "kind": "pay_v3_notification", "source": "generated locally (python cryptography); signing key = wechatpay-go utils/sign_test.go test key; NOT upstream",
                "platform_cert_serial_hex": "D7CE59D1F522D701", "api_v3_key": APIV3,
                "headers": {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": wn, "Wechatpay-Serial": "D7CE59D1F522D701",
                            "Wechatpay-Signature": sig, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"},
                "fake_now_unix": 1624523846, "body": body, "expected_resource_plaintext": pt})
json.dump(out, open(os.path.join(HERE, "generated_notify_vectors.json"), "w"), ensure_ascii=False, indent=1)
print(json.dumps(out, ensure_ascii=False, indent=1)[:3000])

# /v3/certificates response vector (body signed like any response)
V = {v["id"]: v for v in json.load(open(os.path.join(HERE, "..", "wechat_vectors.json")))["vectors"]}
cert_pem = V["wechatpay_go_notify_full"]["platform_certificate_pem"]
cn = "61f9c719728a"
certs_body = json.dumps({"data":[{"serial_no":"D7CE59D1F522D701","effective_time":"2021-04-27T16:55:23+08:00",
    "expire_time":"2031-04-25T16:55:23+08:00","encrypt_certificate":{"algorithm":"AEAD_AES_256_GCM","nonce":cn,
    "associated_data":"certificate","ciphertext":enc(cert_pem, cn, "certificate")}}]}, separators=(",", ":"))
ts, rn = "1624523846", "c5ac7061fccab6bf3e254dcf98995b8c"
sig = base64.b64encode(key.sign(f"{ts}\n{rn}\n{certs_body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
out.append({"id": "generated_local_certificates_response", "kind": "pay_v3_certificates_response",
            "source": "generated locally; NOT upstream", "api_v3_key": APIV3,
            "headers": {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": rn, "Wechatpay-Serial": "D7CE59D1F522D701", "Wechatpay-Signature": sig},
            "body": certs_body, "expected_certificate_pem": cert_pem})
json.dump(out, open(os.path.join(HERE, "generated_notify_vectors.json"), "w"), ensure_ascii=False, indent=1)
print("certificates vector added; total", len(out))
