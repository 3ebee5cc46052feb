"""Tests for scripts/iam_check.py.

Run from the repository root with a Python that has aws-sam-translator and PyYAML:
    python3 -m unittest scripts/test_iam_check.py
No network and no running moto are needed. With IAM_CHECK_LIVE=1 one more test starts moto's server
(from this Python's environment, which then also needs moto[server] and boto3), records real boto3
calls and checks them.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import iam_check as ic  # noqa: E402

T = "arn:aws:dynamodb:us-east-1:123456789012:table/Table"
Q = "arn:aws:sqs:us-east-1:123456789012:Queue"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/secret-AbCdEf"


# ------------------------------------------------------------------------------------------------
# Recording lines, written the way moto's recorder writes them
# ------------------------------------------------------------------------------------------------

def moto_line(key: str, service: str, target: str | None = None, body: dict | None = None, *,
              form: dict | None = None, url: str = "http://127.0.0.1:5000/", region: str = "us-east-1") -> str:
    if form is not None:
        raw = urlencode(form)
        ctype = "application/x-www-form-urlencoded; charset=utf-8"
    else:
        raw = json.dumps(body or {})
        ctype = "application/x-amz-json-1.1" if service == "secretsmanager" else "application/x-amz-json-1.0"
    headers = {
        "Host": "127.0.0.1:5000", "Accept-Encoding": "identity", "Content-Type": ctype,
        "User-Agent": "aws-sdk-rust/1.3.9 os/linux lang/rust/1.90.0", "X-Amz-Date": "20261201T214751Z",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261201/{region}/{service}/aws4_request, "
                         "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
        "Content-Length": str(len(raw.encode())),
    }
    if target:
        headers["X-Amz-Target"] = target
    return json.dumps({"headers": headers, "method": "POST", "url": url,
                       "body": base64.b64encode(raw.encode()).decode(), "body_encoded": True})


def ddb(key: str, op: str, body: dict) -> str:
    return moto_line(key, "dynamodb", f"DynamoDB_20120810.{op}", body)


def sqs(key: str, op: str, body: dict) -> str:
    return moto_line(key, "sqs", f"AmazonSQS.{op}", body)


def secret(key: str, op: str, body: dict) -> str:
    return moto_line(key, "secretsmanager", f"secretsmanager.{op}", body)


def item_key(pk: str, sk: str = "s") -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def rust_query(table: str, pk: str) -> dict:
    # What DynamoStore::query sends (shared/src/store/dynamo/mod.rs): `#n0 = :v0`, names and values.
    return {"TableName": table, "KeyConditionExpression": "#n0 = :v0", "ExpressionAttributeNames": {"#n0": "pk"},
            "ExpressionAttributeValues": {":v0": {"S": pk}}, "ConsistentRead": True}


QURL = "http://127.0.0.1:5000/123456789012/test-queue-1"


# ------------------------------------------------------------------------------------------------
# A small resolver without SAM, for the derivation tests
# ------------------------------------------------------------------------------------------------

MINI_CFN = {
    "Parameters": {"SecretArn": {"Type": "String"}},
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "GlobalSecondaryIndexes": [{"IndexName": "byOwner", "KeySchema": [
                {"AttributeName": "owner", "KeyType": "HASH"}]}]}},
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Dlq": {"Type": "AWS::SQS::Queue"},
        "Fn": {"Type": "AWS::Lambda::Function"},
    },
}


def mini_names(maps=(("Table", "test-state-*"), ("Queue", "test-queue-*")), secret_arn=SECRET) -> ic.Names:
    return ic.Names(ic.Resolver(MINI_CFN, {"SecretArn": secret_arn}), list(maps))


def derive(line: str, names: ic.Names | None = None) -> ic.Derived:
    entry = json.loads(line)
    key, region, scope = ic.credential_of(entry)
    return ic.derive_calls(entry, key, region, scope, "rec.jsonl:1", names or mini_names())


def calls_of(line: str, names: ic.Names | None = None) -> list[tuple]:
    d = derive(line, names)
    assert not d.problems, d.problems
    return [(c.action, c.resource, c.leading_keys) for c in d.calls]


class LeadingKeysTest(unittest.TestCase):
    def test_get_update_delete_use_key_pk(self):
        for op in ("GetItem", "UpdateItem", "DeleteItem"):
            body = {"TableName": "test-state-1", "Key": item_key("msg#wx1#42")}
            if op == "UpdateItem":
                body.update(UpdateExpression="SET #n0 = :v0", ExpressionAttributeNames={"#n0": "state"},
                            ExpressionAttributeValues={":v0": {"S": "done"}})
            with self.subTest(op=op):
                self.assertEqual(calls_of(ddb("F", op, body)), [(f"dynamodb:{op}", T, ["msg#wx1#42"])])

    def test_put_uses_item_pk(self):
        body = {"TableName": "test-state-1", "Item": {**item_key("out#a"), "n": {"N": "1"}},
                "ConditionExpression": "(attribute_not_exists(#n0) OR #n1 <= :v0)",
                "ExpressionAttributeNames": {"#n0": "pk", "#n1": "expires_at"},
                "ExpressionAttributeValues": {":v0": {"N": "42"}}}
        self.assertEqual(calls_of(ddb("F", "PutItem", body)), [("dynamodb:PutItem", T, ["out#a"])])

    def test_query_as_the_rust_store_sends_it(self):
        self.assertEqual(calls_of(ddb("F", "Query", rust_query("test-state-1", "config#breaker"))),
                         [("dynamodb:Query", T, ["config#breaker"])])

    def test_query_expression_variants(self):
        cases = [
            ("pk = :p AND begins_with(sk, :s)", {}, {":p": {"S": "a#1"}, ":s": {"S": "x"}}),
            (":p = #k", {"#k": "pk"}, {":p": {"S": "a#1"}}),
            ("#s <= :x AND #k = :p", {"#k": "pk", "#s": "sk"}, {":p": {"S": "a#1"}, ":x": {"S": "z"}}),
            ("#k=:p AND #s BETWEEN :a AND :b", {"#k": "pk", "#s": "sk"},
             {":p": {"S": "a#1"}, ":a": {"S": "1"}, ":b": {"S": "2"}}),
        ]
        for expr, names, values in cases:
            body = {"TableName": "test-state-1", "KeyConditionExpression": expr, "ExpressionAttributeValues": values}
            if names:
                body["ExpressionAttributeNames"] = names
            with self.subTest(expr=expr):
                self.assertEqual(calls_of(ddb("F", "Query", body)), [("dynamodb:Query", T, ["a#1"])])

    def test_query_on_sort_key_alias_only_is_a_problem(self):
        body = {"TableName": "test-state-1", "KeyConditionExpression": "#s = :v",
                "ExpressionAttributeNames": {"#s": "sk"}, "ExpressionAttributeValues": {":v": {"S": "x"}}}
        d = derive(ddb("F", "Query", body))
        self.assertEqual(d.calls, [])
        self.assertIn("no equality on the partition key 'pk'", d.problems[0])

    def test_legacy_key_conditions(self):
        body = {"TableName": "test-state-1", "KeyConditions": {
            "pk": {"AttributeValueList": [{"S": "token#wx1"}], "ComparisonOperator": "EQ"}}}
        self.assertEqual(calls_of(ddb("F", "Query", body)), [("dynamodb:Query", T, ["token#wx1"])])

    def test_query_on_an_index_uses_the_index_hash_key(self):
        body = {"TableName": "test-state-1", "IndexName": "byOwner", "KeyConditionExpression": "#o = :o",
                "ExpressionAttributeNames": {"#o": "owner"}, "ExpressionAttributeValues": {":o": {"S": "me"}}}
        self.assertEqual(calls_of(ddb("F", "Query", body)), [("dynamodb:Query", T + "/index/byOwner", ["me"])])

    def test_scan_has_no_leading_keys(self):
        self.assertEqual(calls_of(ddb("F", "Scan", {"TableName": "test-state-1"})), [("dynamodb:Scan", T, None)])

    def test_batch_operations_collect_all_keys_per_table(self):
        get = {"RequestItems": {"test-state-1": {"Keys": [item_key("b#2"), item_key("a#1"), item_key("a#1", "t")]}}}
        self.assertEqual(calls_of(ddb("F", "BatchGetItem", get)), [("dynamodb:BatchGetItem", T, ["a#1", "b#2"])])
        write = {"RequestItems": {"test-state-1": [{"PutRequest": {"Item": item_key("p#1")}},
                                                   {"DeleteRequest": {"Key": item_key("d#1")}}]}}
        self.assertEqual(calls_of(ddb("F", "BatchWriteItem", write)), [("dynamodb:BatchWriteItem", T, ["d#1", "p#1"])])

    def test_transactions_become_per_item_actions(self):
        body = {"TransactItems": [
            {"Put": {"TableName": "test-state-1", "Item": item_key("msg#1")}},
            {"Update": {"TableName": "test-state-1", "Key": item_key("quota#1"), "UpdateExpression": "ADD #n :v"}},
            {"ConditionCheck": {"TableName": "test-state-1", "Key": item_key("c#1"), "ConditionExpression": "x"}},
            {"Delete": {"TableName": "test-state-1", "Key": item_key("d#1")}}]}
        d = derive(ddb("F", "TransactWriteItems", body))
        self.assertEqual([(c.action, c.leading_keys, c.via) for c in d.calls], [
            ("dynamodb:PutItem", ["msg#1"], "dynamodb:TransactWriteItems"),
            ("dynamodb:UpdateItem", ["quota#1"], "dynamodb:TransactWriteItems"),
            ("dynamodb:ConditionCheckItem", ["c#1"], "dynamodb:TransactWriteItems"),
            ("dynamodb:DeleteItem", ["d#1"], "dynamodb:TransactWriteItems")])

    def test_missing_partition_key_is_a_problem(self):
        d = derive(ddb("F", "GetItem", {"TableName": "test-state-1", "Key": {"id": {"S": "x"}}}))
        self.assertEqual(d.calls, [])
        self.assertIn("partition key 'pk' not found", d.problems[0])

    def test_unmapped_table_keeps_its_name_and_gets_a_hint(self):
        d = derive(ddb("F", "GetItem", {"TableName": "other", "Key": item_key("k")}))
        self.assertEqual(d.calls[0].resource, "arn:aws:dynamodb:us-east-1:123456789012:table/other")
        self.assertIn("--map LogicalId=other", d.calls[0].notes[0])

    def test_table_named_like_its_logical_id_needs_no_map(self):
        self.assertEqual(calls_of(ddb("F", "GetItem", {"TableName": "Table", "Key": item_key("k")}), mini_names(maps=())),
                         [("dynamodb:GetItem", T, ["k"])])

    def test_other_dynamodb_operations(self):
        self.assertEqual(calls_of(ddb("F", "DescribeTable", {"TableName": "test-state-1"})),
                         [("dynamodb:DescribeTable", T, None)])
        self.assertEqual(calls_of(ddb("F", "ListTables", {})), [("dynamodb:ListTables", "*", None)])


class OtherServicesTest(unittest.TestCase):
    def test_sqs_json_protocol(self):
        self.assertEqual(calls_of(sqs("F", "SendMessage", {"QueueUrl": QURL, "MessageBody": "x"})),
                         [("sqs:SendMessage", Q, None)])
        self.assertEqual(calls_of(sqs("F", "ChangeMessageVisibility", {"QueueUrl": QURL, "ReceiptHandle": "r",
                                                                       "VisibilityTimeout": 10})),
                         [("sqs:ChangeMessageVisibility", Q, None)])

    def test_sqs_batch_is_authorized_as_the_single_action(self):
        d = derive(sqs("F", "SendMessageBatch", {"QueueUrl": QURL, "Entries": []}))
        self.assertEqual([(c.action, c.resource, c.via) for c in d.calls], [("sqs:SendMessage", Q, "sqs:SendMessageBatch")])

    def test_sqs_query_protocol(self):
        line = moto_line("F", "sqs", form={"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": QURL,
                                           "MessageBody": "x"})
        self.assertEqual(calls_of(line), [("sqs:SendMessage", Q, None)])
        to_path = moto_line("F", "sqs", form={"Action": "ReceiveMessage"}, url=QURL)
        self.assertEqual(calls_of(to_path), [("sqs:ReceiveMessage", Q, None)])

    def test_sqs_queue_names(self):
        self.assertEqual(calls_of(sqs("F", "GetQueueUrl", {"QueueName": "test-queue-9"})), [("sqs:GetQueueUrl", Q, None)])
        dlq = "arn:aws:sqs:us-east-1:123456789012:Dlq"
        names = mini_names(maps=(("Dlq", "test-dlq"), ("Queue", "test-*")))  # exact wins over an earlier glob
        self.assertEqual(calls_of(sqs("F", "SendMessage", {"QueueUrl": "http://h/123456789012/test-dlq"}), names),
                         [("sqs:SendMessage", dlq, None)])

    def test_secret_arn_as_given(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-Zz9Zz9"
        self.assertEqual(calls_of(secret("F", "GetSecretValue", {"SecretId": arn})),
                         [("secretsmanager:GetSecretValue", arn, None)])

    def test_secret_name_resolved_through_the_parameter(self):
        # A name matches the parameter's ARN minus its 6-character suffix (as Secrets Manager does).
        self.assertEqual(calls_of(secret("F", "GetSecretValue", {"SecretId": "app/secret"})),
                         [("secretsmanager:GetSecretValue", SECRET, None)])
        # --map ParameterName=name.
        names = mini_names(maps=(("SecretArn", "test-secret-*"),))
        self.assertEqual(calls_of(secret("F", "GetSecretValue", {"SecretId": "test-secret-7"}), names),
                         [("secretsmanager:GetSecretValue", SECRET, None)])
        # A parameter value equal to the SecretId (a name passed as the parameter).
        names = mini_names(maps=(), secret_arn="plain-name")
        self.assertEqual(calls_of(secret("F", "GetSecretValue", {"SecretId": "plain-name"}), names),
                         [("secretsmanager:GetSecretValue", "plain-name", None)])

    def test_anything_else_is_service_operation_on_star(self):
        line = moto_line("F", "sts", form={"Action": "GetCallerIdentity", "Version": "2011-06-15"})
        self.assertEqual(calls_of(line), [("sts:GetCallerIdentity", "*", None)])
        line = moto_line("F", "kms", "TrentService.Decrypt", {"CiphertextBlob": "eA=="})
        self.assertEqual(calls_of(line), [("kms:Decrypt", "*", None)])

    def test_rest_request_is_a_problem(self):
        line = moto_line("F", "lambda", None, {}, url="http://127.0.0.1:5000/2015-03-31/functions/x/invocations")
        d = derive(line)
        self.assertEqual(d.calls, [])
        self.assertIn("neither X-Amz-Target nor Action", d.problems[0])


def st(effect="Allow", **kw) -> ic.Statement:
    return ic.Statement(effect=effect, source="test", **kw)


def decide(stmts, action, resource, ctx=None) -> str:
    return ic.evaluate(stmts, action, resource, ctx or {}).decision


LK = "dynamodb:LeadingKeys"


class EvaluatorTest(unittest.TestCase):
    def test_actions(self):
        s = [st(actions=["dynamodb:GetItem", "sqs:SendMessage*", "dynamodb:?utItem"], resources=["*"])]
        self.assertEqual(decide(s, "dynamodb:GetItem", T), "Allow")
        self.assertEqual(decide(s, "DynamoDB:getitem", T), "Allow")  # actions are case-insensitive
        self.assertEqual(decide(s, "sqs:SendMessage", Q), "Allow")
        self.assertEqual(decide(s, "sqs:SendMessageBatch", Q), "Allow")
        self.assertEqual(decide(s, "dynamodb:PutItem", T), "Allow")
        self.assertEqual(decide(s, "dynamodb:Query", T), "ImplicitDeny")
        self.assertEqual(decide([st(actions=["*"], resources=["*"])], "kms:Decrypt", "*"), "Allow")

    def test_not_action(self):
        s = [st(not_actions=["iam:*", "sqs:Delete*"], resources=["*"])]
        self.assertEqual(decide(s, "sqs:SendMessage", Q), "Allow")
        self.assertEqual(decide(s, "sqs:DeleteQueue", Q), "ImplicitDeny")
        self.assertEqual(decide(s, "iam:PassRole", "*"), "ImplicitDeny")

    def test_resource_wildcards(self):
        def one(pattern, arn):
            return decide([st(actions=["*"], resources=[pattern])], "dynamodb:GetItem", arn)
        self.assertEqual(one(T, T), "Allow")
        self.assertEqual(one(T.lower(), T), "ImplicitDeny")  # resources are case-sensitive
        self.assertEqual(one("arn:aws:dynamodb:*:*:table/Tab*", T), "Allow")
        self.assertEqual(one("arn:aws:dynamodb:us-east-1:123456789012:table/T?ble", T), "Allow")
        self.assertEqual(one(T, T + "/index/byOwner"), "ImplicitDeny")  # a table ARN does not cover its indexes
        self.assertEqual(one(T + "/*", T + "/index/byOwner"), "Allow")
        self.assertEqual(one("arn:aws:sqs:*:Queue", Q), "Allow")  # a segment-final * may span ':'
        self.assertEqual(one("arn:aws:sqs:us-*1:Queue", Q), "ImplicitDeny")  # a mid-segment * may not
        self.assertEqual(one("arn:aws:sqs:us-east-?:123456789012:Queue", Q), "Allow")
        self.assertEqual(decide([st(actions=["*"], not_resources=[Q])], "sqs:SendMessage", Q), "ImplicitDeny")
        self.assertEqual(decide([st(actions=["*"], not_resources=[Q])], "dynamodb:GetItem", T), "Allow")

    def test_explicit_deny_wins(self):
        s = [st(actions=["sqs:*"], resources=["*"]), st("Deny", actions=["sqs:SendMessage"], resources=[Q])]
        self.assertEqual(decide(s, "sqs:SendMessage", Q), "ExplicitDeny")
        self.assertEqual(decide(s, "sqs:ReceiveMessage", Q), "Allow")
        d = ic.evaluate(s, "sqs:SendMessage", Q, {})
        self.assertEqual((d.denied_by, [i for i, _ in d.allowed_by]), ([1], [0]))
        s2 = [st(actions=["sqs:*"], resources=["*"]), st("Deny", actions=["sqs:SendMessage"], resources=[Q + "x"])]
        self.assertEqual(decide(s2, "sqs:SendMessage", Q), "Allow")

    def test_deny_with_leading_keys_condition(self):
        s = [st(actions=["dynamodb:*"], resources=[T]),
             st("Deny", actions=["dynamodb:*"], resources=[T], condition={"ForAnyValue:StringNotLike": {LK: ["msg#*"]}})]
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["msg#1"]}), "Allow")
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["token#1"]}), "ExplicitDeny")
        self.assertEqual(decide(s, "dynamodb:BatchGetItem", T, {LK: ["msg#1", "token#1"]}), "ExplicitDeny")

    def test_for_all_values_string_like_prefixes(self):
        s = [st(actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem", "dynamodb:Scan"],
                resources=[T], condition={"ForAllValues:StringLike": {LK: ["msg#*", "out#*"]}})]
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["msg#wx1#1"]}), "Allow")
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["out#1"]}), "Allow")
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["token#wx1"]}), "ImplicitDeny")
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["xmsg#1"]}), "ImplicitDeny")  # a prefix, not a substring
        self.assertEqual(decide(s, "dynamodb:PutItem", T, {LK: ["msg"]}), "ImplicitDeny")
        self.assertEqual(decide(s, "dynamodb:BatchGetItem", T, {LK: ["msg#1", "out#2"]}), "Allow")
        self.assertEqual(decide(s, "dynamodb:BatchGetItem", T, {LK: ["msg#1", "token#2"]}), "ImplicitDeny")

    def test_for_all_values_with_an_empty_or_absent_set_is_true(self):
        cond = {"ForAllValues:StringLike": {LK: ["msg#*"]}}
        s = [st(actions=["dynamodb:*"], resources=[T], condition=cond)]
        self.assertEqual(decide(s, "dynamodb:Scan", T, {}), "Allow")           # key absent
        self.assertEqual(decide(s, "dynamodb:BatchGetItem", T, {LK: []}), "Allow")  # empty set
        self.assertEqual(ic.condition_holds(cond, {LK: []}), (True, []))
        self.assertEqual(ic.condition_holds({"ForAllValues:StringEquals": {LK: ["a"]}}, {}), (True, []))

    def test_for_any_value_with_an_empty_or_absent_set_is_false(self):
        cond = {"ForAnyValue:StringLike": {LK: ["msg#*"]}}
        self.assertEqual(ic.condition_holds(cond, {}), (False, []))
        self.assertEqual(ic.condition_holds(cond, {LK: []}), (False, []))
        self.assertEqual(ic.condition_holds(cond, {LK: ["x", "msg#1"]}), (True, []))

    def test_for_all_values_string_equals_is_exact(self):
        s = [st(actions=["dynamodb:Query"], resources=[T],
                condition={"ForAllValues:StringEquals": {LK: ["config#breaker", "config#*"]}})]
        self.assertEqual(decide(s, "dynamodb:Query", T, {LK: ["config#breaker"]}), "Allow")
        self.assertEqual(decide(s, "dynamodb:Query", T, {LK: ["config#other"]}), "ImplicitDeny")  # no globbing
        self.assertEqual(decide(s, "dynamodb:Query", T, {LK: ["Config#breaker"]}), "ImplicitDeny")  # case matters

    def test_plain_string_like_and_string_equals(self):
        like = [st(actions=["dynamodb:GetItem"], resources=[T], condition={"StringLike": {LK: "token#*"}})]
        self.assertEqual(decide(like, "dynamodb:GetItem", T, {LK: ["token#wx1"]}), "Allow")
        self.assertEqual(decide(like, "dynamodb:GetItem", T, {LK: ["msg#1"]}), "ImplicitDeny")
        self.assertEqual(decide(like, "dynamodb:GetItem", T, {}), "ImplicitDeny")  # absent key: false
        self.assertEqual(decide(like, "dynamodb:GetItem", T, {LK: []}), "ImplicitDeny")
        eq = [st(actions=["dynamodb:GetItem"], resources=[T], condition={"StringEquals": {LK: ["a", "b"]}})]
        self.assertEqual(decide(eq, "dynamodb:GetItem", T, {LK: ["b"]}), "Allow")  # values are ORed
        self.assertEqual(decide(eq, "dynamodb:GetItem", T, {LK: ["b*"]}), "ImplicitDeny")
        # A plain operator on several values: all must match in an Allow (conservative).
        self.assertEqual(decide(eq, "dynamodb:GetItem", T, {LK: ["a", "c"]}), "ImplicitDeny")
        # ...and one is enough in a Deny (conservative).
        deny = [st(actions=["*"], resources=["*"]), st("Deny", actions=["*"], resources=["*"],
                                                        condition={"StringEquals": {LK: "c"}})]
        self.assertEqual(decide(deny, "dynamodb:GetItem", T, {LK: ["a", "c"]}), "ExplicitDeny")

    def test_negated_ifexists_null_and_blocks(self):
        self.assertEqual(ic.condition_holds({"StringNotLike": {LK: "token#*"}}, {}), (True, []))
        self.assertEqual(ic.condition_holds({"StringNotLike": {LK: ["token#*", "msg#*"]}}, {LK: ["msg#1"]}), (False, []))
        self.assertEqual(ic.condition_holds({"StringLikeIfExists": {LK: "token#*"}}, {}), (True, []))
        self.assertEqual(ic.condition_holds({"Null": {LK: "true"}}, {}), (True, []))
        self.assertEqual(ic.condition_holds({"Null": {LK: "false"}}, {}), (False, []))
        two = {"ForAllValues:StringLike": {LK: "msg#*"}, "Bool": {"aws:SecureTransport": "true"}}
        self.assertEqual(ic.condition_holds(two, {LK: ["msg#1"], "aws:SecureTransport": "true"}), (True, []))
        self.assertEqual(ic.condition_holds(two, {LK: ["msg#1"], "aws:SecureTransport": "false"}), (False, []))
        self.assertEqual(ic.condition_holds({"ForAllValues:StringLike": {"DynamoDB:leadingKEYS": "msg#*"}},
                                            {LK: ["token#1"]}), (False, []))  # key names ignore case

    def test_unevaluable_conditions_are_errors(self):
        holds, errors = ic.condition_holds({"StringEquals": {"dynamodb:Attributes": "pk"}}, {})
        self.assertFalse(holds)
        self.assertIn("not derived from recordings", errors[0])
        holds, errors = ic.condition_holds({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}, {})
        self.assertEqual((holds, errors), (False, ["unsupported condition operator DateGreaterThan"]))
        holds, errors = ic.condition_holds({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}, {}, "Deny")
        self.assertTrue(holds)  # an unevaluable Deny is taken to apply


class AttributionTest(unittest.TestCase):
    def read(self, lines: list[str], checked=("CallbackFunction", "SendFunction", "SendWorkerFunction")) -> ic.Recording:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d, "rec.jsonl")
            path.write_text("\n".join(lines) + "\n")
            return ic.read_recording(str(path), list(checked), mini_names())

    def test_calls_are_attributed_by_access_key_id(self):
        rec = self.read([
            ddb("CallbackFunction", "GetItem", {"TableName": "test-state-1", "Key": item_key("msg#1")}),
            sqs("SendWorkerFunction", "ChangeMessageVisibility", {"QueueUrl": QURL, "ReceiptHandle": "r"}),
            ddb("test", "CreateTable", {"TableName": "test-state-1"}),   # the harness: ignored
            ddb("AKIAOTHERTEST", "GetItem", {"TableName": "x", "Key": item_key("y")}),  # another test: ignored
            ddb("TokenRefreshFunction", "GetItem", {"TableName": "test-state-1", "Key": item_key("token#1")}),
        ])
        self.assertEqual([(c.function, c.action) for c in rec.calls],
                         [("CallbackFunction", "dynamodb:GetItem"), ("SendWorkerFunction", "sqs:ChangeMessageVisibility")])
        self.assertEqual(dict(rec.other_keys), {"test": 1, "AKIAOTHERTEST": 1, "TokenRefreshFunction": 1})
        self.assertEqual(rec.problems, [])

    def test_credential_parsing(self):
        entry = json.loads(ddb("SendFunction", "GetItem", {}))
        self.assertEqual(ic.credential_of(entry), ("SendFunction", "us-east-1", "dynamodb"))
        entry["headers"] = {k.lower(): v for k, v in entry["headers"].items()}  # the Rust SDK sends lower case
        self.assertEqual(ic.credential_of(entry), ("SendFunction", "us-east-1", "dynamodb"))
        self.assertIsNone(ic.credential_of({"headers": {}, "method": "GET", "url": "http://h/"}))

    def test_unreadable_lines(self):
        good = ddb("CallbackFunction", "GetItem", {"TableName": "test-state-1", "Key": item_key("msg#1")})
        rec = self.read([
            good[: len(good) // 2],                          # names CallbackFunction: a problem
            ddb("test", "PutItem", {"TableName": "t"})[:80] + "garbage",  # names no checked function: ignored
            '{"headers": {"Authorization": "Credential=test/2026',           # ditto
            good,
        ])
        self.assertEqual(len(rec.calls), 1)
        self.assertEqual(rec.unreadable_ignored, 2)
        self.assertEqual(len(rec.problems), 1)
        self.assertIn("rec.jsonl:1: not a valid JSON object and it names CallbackFunction", rec.problems[0])

    def test_unreadable_line_of_an_unchecked_function_is_ignored(self):
        line = ddb("SendFunction", "GetItem", {"TableName": "t", "Key": item_key("k")})[:-10]
        rec = self.read([line], checked=("CallbackFunction",))
        self.assertEqual((rec.problems, rec.unreadable_ignored), ([], 1))


# ------------------------------------------------------------------------------------------------
# End to end: an inline template and an inline recording through main()
# ------------------------------------------------------------------------------------------------

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  SecretArn: {Type: String, Default: ""}
  Token: {Type: String}
Conditions:
  HasSecret: !Not [!Equals [!Ref SecretArn, ""]]
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Tracing: Active
    Environment: {Variables: {TABLE: !Ref Table, QUEUE: !Ref Queue, TOKEN: !Ref Token}}
Resources:
  Writer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - Sid: Ledger
              Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem]
              Resource: !GetAtt Table.Arn
              Condition: {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["msg#*"]}}
            - Sid: Config
              Effect: Allow
              Action: dynamodb:Query
              Resource: !Sub "${Table.Arn}"
              Condition: {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["config#breaker"]}}
        - SQSSendMessagePolicy: {QueueName: !GetAtt Queue.QueueName}
        - !If
          - HasSecret
          - Statement:
              - {Sid: ReadSecret, Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: !Ref SecretArn}
          - !Ref AWS::NoValue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - {Sid: Backoff, Effect: Allow, Action: sqs:ChangeMessageVisibility, Resource: !GetAtt Queue.Arn}
            - {Sid: NoTable, Effect: Deny, Action: "dynamodb:*", Resource: "*"}
            - {Sid: Poll, Effect: Allow, Action: sqs:DeleteMessage, Resource: !GetAtt Queue.Arn}
      Events:
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 10}}
  Queue:
    Type: AWS::SQS::Queue
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
"""


def clean_recording() -> list[str]:
    tbl = "wechat-test-3f2a"
    return [
        ddb("test", "CreateTable", {"TableName": tbl}),                      # harness set-up: ignored
        sqs("test", "CreateQueue", {"QueueName": "wechat-test-q-3f2a"}),
        ddb("Writer", "PutItem", {"TableName": tbl, "Item": item_key("msg#wx1#1"),
                                  "ConditionExpression": "attribute_not_exists(#n0)",
                                  "ExpressionAttributeNames": {"#n0": "pk"}}),
        ddb("Writer", "GetItem", {"TableName": tbl, "Key": item_key("msg#wx1#1"), "ConsistentRead": True}),
        ddb("Writer", "UpdateItem", {"TableName": tbl, "Key": item_key("msg#wx1#1"), "UpdateExpression": "SET #n0 = :v0",
                                     "ExpressionAttributeNames": {"#n0": "state"},
                                     "ExpressionAttributeValues": {":v0": {"S": "done"}}, "ReturnValues": "ALL_NEW"}),
        ddb("Writer", "DeleteItem", {"TableName": tbl, "Key": item_key("msg#wx1#2")}),
        ddb("Writer", "Query", rust_query(tbl, "config#breaker")),
        sqs("Writer", "SendMessage", {"QueueUrl": "http://127.0.0.1:5000/123456789012/wechat-test-q-3f2a",
                                      "MessageBody": "{}"}),
        secret("Writer", "GetSecretValue", {"SecretId": SECRET}),
        sqs("Worker", "ReceiveMessage", {"QueueUrl": "http://127.0.0.1:5000/123456789012/wechat-test-q-3f2a"}),
        sqs("Worker", "ChangeMessageVisibility", {"QueueUrl": "http://127.0.0.1:5000/123456789012/wechat-test-q-3f2a",
                                                  "ReceiptHandle": "r", "VisibilityTimeout": 20}),
        ddb("OtherSuite", "GetItem", {"TableName": "elsewhere", "Key": item_key("x")}),  # another test: ignored
        '{"headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/dynamo',  # ignored
    ]


class EndToEndTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.template = Path(self.dir.name, "template.yaml")
        self.template.write_text(TEMPLATE)

    def run_check(self, lines: list[str], *extra: str, maps=("Table=wechat-test-????", "Queue=wechat-test-q-*"),
                  secret_param=True) -> tuple[int, str, str]:
        rec = Path(self.dir.name, "rec.jsonl")
        rec.write_text("\n".join(lines) + "\n")
        argv = ["check", "--template", str(self.template), "--recording", str(rec), "--param", "Token=tok"]
        if secret_param:
            argv += ["--param", f"SecretArn={SECRET}"]
        for m in maps:
            argv += ["--map", m]
        return run_main(argv + list(extra))

    def test_clean_recording_passes(self):
        code, out, err = self.run_check(clean_recording())
        self.assertEqual(code, 0, out + err)
        self.assertIn("conditions: HasSecret=true", out)
        self.assertIn("allowed  dynamodb:Query on " + T + "  x1  keys: config#breaker  <- WriterRolePolicy0/Config", out)
        self.assertIn("allowed  sqs:ReceiveMessage on " + Q + "  x1", out)  # via the managed SQS poller policy
        # An inline grant of what Lambda itself does for the SQS event source need not be used.
        self.assertIn("(granted, not required to be used: sqs:DeleteMessage (used by Lambda: event source "
                      "mapping WorkerJobs))", out)
        self.assertIn("ignored: 3 entries signed with other keys (OtherSuite: 1, test: 2); "
                      "1 unreadable lines naming no checked function", out)
        self.assertTrue(out.rstrip().endswith("OK: 0 denied call(s) in 0 group(s), 0 grant(s) never used, "
                                              "0 other problem(s)"), out)

    def test_denied_calls(self):
        lines = clean_recording() + [
            ddb("Writer", "PutItem", {"TableName": "wechat-test-3f2a", "Item": item_key("token#wx1")}),
            ddb("Writer", "Query", rust_query("wechat-test-3f2a", "msg#wx1")),
            ddb("Worker", "GetItem", {"TableName": "wechat-test-3f2a", "Key": item_key("msg#1")}),
            sqs("Writer", "SendMessage", {"QueueUrl": "http://127.0.0.1:5000/123456789012/unknown-queue"}),
        ]
        code, out, _ = self.run_check(lines)
        self.assertEqual(code, 1)
        self.assertIn(f"DENIED: Writer dynamodb:PutItem on {T} (implicit deny: no statement allows it; "
                      "keys: token#wx1; x1, at ", out)
        self.assertIn(f"DENIED: Writer dynamodb:Query on {T} (implicit deny: no statement allows it; keys: msg#wx1;", out)
        self.assertIn(f"DENIED: Worker dynamodb:GetItem on {T} (explicit deny by WorkerRolePolicy0/NoTable;", out)
        self.assertIn("DENIED: Writer sqs:SendMessage on arn:aws:sqs:us-east-1:123456789012:unknown-queue", out)
        self.assertIn("hint: 'unknown-queue' is not mapped to a template resource", out)
        self.assertIn("FAIL: 4 denied call(s) in 4 group(s), 0 grant(s) never used", out)

    def test_unused_grant(self):
        lines = [ln for ln in clean_recording() if '"DynamoDB_20120810.DeleteItem"' not in ln]
        code, out, _ = self.run_check(lines)
        self.assertEqual(code, 1)
        self.assertIn(f"GRANTED BUT NEVER USED: Writer dynamodb:DeleteItem on {T}  (WriterRolePolicy0/Ledger)", out)
        self.assertIn("FAIL: 0 denied call(s) in 0 group(s), 1 grant(s) never used", out)
        code, out, _ = self.run_check(lines, "--allow-unused", "dynamodb:Delete*")
        self.assertEqual(code, 0, out)

    def test_unused_secret_grant_follows_the_condition(self):
        lines = [ln for ln in clean_recording() if "secretsmanager" not in ln]
        code, out, _ = self.run_check(lines)
        self.assertEqual(code, 1)
        self.assertIn(f"GRANTED BUT NEVER USED: Writer secretsmanager:GetSecretValue on {SECRET}", out)
        code, out, _ = self.run_check(lines, secret_param=False)  # HasSecret false: no such statement
        self.assertEqual(code, 0, out)

    def test_many_keys_are_summarised_by_prefix(self):
        extra = [ddb("Writer", "GetItem", {"TableName": "wechat-test-3f2a", "Key": item_key(f"msg#wx1#{i}")})
                 for i in range(10)]
        code, out, _ = self.run_check(clean_recording() + extra)
        self.assertEqual(code, 0, out)
        self.assertIn(f"allowed  dynamodb:GetItem on {T}  x11  keys: msg#* (10); 10 distinct  <-", out)

    def test_corrupted_line_of_a_checked_function_fails(self):
        bad = ddb("Writer", "GetItem", {"TableName": "wechat-test-3f2a", "Key": item_key("msg#1")})[:-40]
        self.assertIn("Credential=Writer/", bad)
        code, out, _ = self.run_check(clean_recording() + [bad])
        self.assertEqual(code, 1)
        self.assertIn("not a valid JSON object and it names Writer", out)

    def test_functions_option(self):
        lines = clean_recording() + [ddb("Worker", "GetItem", {"TableName": "wechat-test-3f2a", "Key": item_key("m#1")})]
        code, out, _ = self.run_check(lines, "--functions", "Writer")
        self.assertEqual(code, 0, out)
        self.assertIn("functions: Writer\n", out)
        self.assertIn("Worker: 3", out)  # the worker's calls are now ignored ones

    def test_json_report(self):
        lines = [ln for ln in clean_recording() if '"DynamoDB_20120810.DeleteItem"' not in ln]
        code, out, _ = self.run_check(lines, "--json")
        self.assertEqual(code, 1)
        report = json.loads(out)
        self.assertEqual(report["summary"]["unused_grants"], 1)
        self.assertFalse(report["summary"]["ok"])
        self.assertEqual(report["functions"]["Writer"]["unused"],
                         [{"action": "dynamodb:DeleteItem", "resources": [T], "statement": "WriterRolePolicy0/Ledger"}])
        self.assertEqual(report["recording"]["ignored_other_keys"], {"test": 2, "OtherSuite": 1})
        self.assertEqual(report["conditions"], {"HasSecret": True})

    def test_calls_and_policies_subcommands(self):
        rec = Path(self.dir.name, "rec.jsonl")
        rec.write_text("\n".join(clean_recording()) + "\n")
        code, out, _ = run_main(["calls", "-t", str(self.template), "-r", str(rec), "-p", "Token=t",
                                 "--map", "Table=wechat-test-*", "--functions", "Writer"])
        self.assertEqual(code, 0)
        first = json.loads(out.splitlines()[0])
        self.assertEqual((first["action"], first["resource"], first["leading_keys"], first["mapped_to"]),
                         ("dynamodb:PutItem", T, ["msg#wx1#1"], "Table"))
        code, out, _ = run_main(["policies", "-t", str(self.template), "-p", "Token=t", "--functions", "Worker"])
        self.assertEqual(code, 0)
        stmts = json.loads(out)["functions"]["Worker"]["Statement"]
        self.assertEqual(stmts[0], {"Effect": "Allow", "Sid": "Backoff", "Action": ["sqs:ChangeMessageVisibility"],
                                    "Resource": [Q], "_source": "WorkerRolePolicy0"})
        self.assertIn({"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                                                     "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                       "Resource": ["*"], "_source": "managed AWSLambdaSQSQueueExecutionRole", "_managed": True}, stmts)

    def test_bad_input_exits_2(self):
        lines = clean_recording()
        cases = [
            (("--param", "Nope=1"), "parameter Nope is not declared"),
            (("--functions", "Writer,Nope"), "--functions: Nope not a function"),
            (("--map", "Nope=x"), "Nope is neither a resource nor a parameter"),
            (("--map", "Writer=x"), "Writer is a AWS::Lambda::Function"),
            (("--map", "Table"), "expected NAME=VALUE"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                code, out, err = self.run_check(lines, *extra)
                self.assertEqual(code, 2, out)
                self.assertIn(message, err)
        code, _, err = run_main(["check", "-t", str(self.template), "-r", "/nonexistent/rec.jsonl", "-p", "Token=t"])
        self.assertEqual(code, 2)
        self.assertIn("cannot read recording", err)
        code, _, err = run_main(["check", "-t", "/nonexistent/template.yaml", "-r", "x"])
        self.assertEqual(code, 2)
        self.assertIn("cannot read template", err)
        code, _, _ = run_main(["check", "-t", str(self.template)])  # --recording missing
        self.assertEqual(code, 2)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = ic.main(argv)
    return code, out.getvalue(), err.getvalue()


HOOK_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    AutoPublishAlias: live
Resources:
  Target:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - {Sid: Poll, Effect: Allow, Action: sqs:DeleteMessage, Resource: !GetAtt Queue.Arn}
      Events:
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
  PreTrafficHookFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      FunctionName: !Sub "CodeDeployHook_${AWS::StackName}"
      Policies:
        - Statement:
            - {Sid: Invoke, Effect: Allow, Action: lambda:InvokeFunction, Resource: !Ref Target.Version}
            - Sid: Report
              Effect: Allow
              Action: codedeploy:PutLifecycleEventHookExecutionStatus
              Resource: !Sub "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:app/*"
  Other:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Policies:
        - Statement:
            - {Sid: Invoke, Effect: Allow, Action: lambda:InvokeFunction, Resource: !Ref Target.Version}
  Queue:
    Type: AWS::SQS::Queue
"""


class ProvenElsewhereTest(unittest.TestCase):
    """Versions and aliases resolve to ARNs; grants no recording can show are exempt for the
    listed (function, action) pairs only."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.template = Path(self.dir.name, "template.yaml")

    def load(self, text: str) -> ic.Loaded:
        self.template.write_text(text)
        return ic.load(str(self.template), [], None)

    def test_versions_and_aliases_are_arns_and_event_sources_name_the_alias(self):
        loaded = self.load(HOOK_TEMPLATE)
        fn = "arn:aws:lambda:us-east-1:123456789012:function:Target"
        hook = loaded.policies["PreTrafficHookFunction"].statements
        self.assertEqual(ic.evaluate(hook, "lambda:InvokeFunction", fn + ":1", {}).decision, "Allow")
        for other in (fn, fn + ":live", fn + ":2", "arn:aws:lambda:us-east-1:123456789012:function:Other:1"):
            self.assertEqual(ic.evaluate(hook, "lambda:InvokeFunction", other, {}).decision, "ImplicitDeny", other)
        alias = next(lid for lid, r in loaded.cfn["Resources"].items()
                     if r["Type"] == "AWS::Lambda::Alias" and lid.startswith("Target"))
        self.assertEqual(loaded.resolver.ref(alias), fn + ":live")
        self.assertEqual(loaded.resolver.ref("PreTrafficHookFunction"), "CodeDeployHook_iam-check")
        # The SQS mapping names the alias; Lambda's own DeleteMessage is still recognised.
        self.assertIn(("sqs:DeleteMessage", "event source mapping TargetJobs"), loaded.policies["Target"].implied)

    def test_the_hooks_unrecordable_grants_are_exempt_and_no_one_elses(self):
        loaded = self.load(HOOK_TEMPLATE)
        report = ic.run_check(loaded.policies, loaded.checked, ic.Recording())
        hook = report["functions"]["PreTrafficHookFunction"]
        self.assertEqual(hook["unused"], [])
        self.assertTrue(any(n.startswith("lambda:InvokeFunction (not in a recording: ") for n in hook["not_required"]),
                        hook["not_required"])
        self.assertTrue(any(n.startswith("codedeploy:PutLifecycleEventHookExecutionStatus (not in a recording: ")
                            for n in hook["not_required"]), hook["not_required"])
        # The same grant in another function is still reported.
        self.assertEqual([u["action"] for u in report["functions"]["Other"]["unused"]], ["lambda:InvokeFunction"])
        self.assertEqual(report["functions"]["Target"]["unused"], [])  # DeleteMessage: Lambda's (via the alias)
        self.assertFalse(report["summary"]["ok"])
        # An empty table exempts nothing.
        report = ic.run_check(loaded.policies, loaded.checked, ic.Recording(), proven_elsewhere={})
        self.assertEqual(sorted(u["action"] for u in report["functions"]["PreTrafficHookFunction"]["unused"]),
                         ["codedeploy:PutLifecycleEventHookExecutionStatus", "lambda:InvokeFunction"])

    def test_a_wildcard_grant_is_never_exempt(self):
        text = HOOK_TEMPLATE.replace("Resource: !Ref Target.Version}", 'Resource: "*"}', 1)
        self.assertNotEqual(text, HOOK_TEMPLATE)
        loaded = self.load(text)
        report = ic.run_check(loaded.policies, ["PreTrafficHookFunction"], ic.Recording())
        self.assertEqual([(u["action"], u["resources"]) for u in report["functions"]["PreTrafficHookFunction"]["unused"]],
                         [("lambda:InvokeFunction", ["*"])])

    def test_the_report_says_why(self):
        self.template.write_text(HOOK_TEMPLATE)
        rec = Path(self.dir.name, "rec.jsonl")
        rec.write_text("")
        code, out, _ = run_main(["check", "-t", str(self.template), "-r", str(rec),
                                 "--functions", "PreTrafficHookFunction"])
        self.assertEqual(code, 0, out)
        self.assertIn("(granted, not required to be used: codedeploy:PutLifecycleEventHookExecutionStatus "
                      "(not in a recording: moto has no CodeDeploy lifecycle hooks;", out)


class ProjectTemplateTest(unittest.TestCase):
    """The repository's own template expands, with and without the app secret."""

    path = HERE.parent / "template.yaml"
    functions = {"CallbackFunction", "SendFunction", "SendWorkerFunction", "TokenRefreshFunction", "JssdkFunction",
                 "HealthFunction", "AdminFunction", "BreakerTunerFunction", "SyncFunction", "FollowersFunction",
                 "PreTrafficHookFunction"}

    def setUp(self):
        if not self.path.exists():
            self.skipTest(f"{self.path} not found")

    def test_every_alarm_expression_is_metric_math_over_its_own_metrics(self):
        """CloudWatch rejects an expression naming an id the alarm lacks, or an unfilled placeholder
        (neither cfn-lint nor the SAM translator notices)."""
        import re
        import yaml  # noqa: PLC0415 (only this test reads the template as YAML)

        class Loader(yaml.SafeLoader):
            pass

        Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
        resources = yaml.load(self.path.read_text(), Loader=Loader)["Resources"]
        checked = 0
        for name, resource in resources.items():
            if resource.get("Type") != "AWS::CloudWatch::Alarm":
                continue
            metrics = resource["Properties"].get("Metrics") or []
            ids = {m["Id"] for m in metrics}
            for metric in metrics:
                expression = metric.get("Expression")
                if expression is None:
                    continue
                checked += 1
                with self.subTest(alarm=name):
                    self.assertNotRegex(expression, r"[{}]")
                    named = set(re.findall(r"\b([a-z][a-zA-Z0-9_]*)\b", expression)) - {
                        "SUM", "FILL", "MAX", "MIN", "AVG", "IF", "METRICS"}
                    self.assertTrue(named <= ids, f"{expression} names {named - ids}")
        self.assertGreater(checked, 5)

    def test_expands_with_all_functions(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/appsecret-AbCdEf"
        callback_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/callback-AbCdEf"
        common = [f"WechatCallbackSecretArn={callback_arn}", "WechatAppId=wx0123456789abcdef"]
        loaded = ic.load(str(self.path), common + [f"WechatAppSecretArn={arn}"], None)
        self.assertEqual(set(loaded.checked), self.functions)
        table = "arn:aws:dynamodb:us-east-1:123456789012:table/StateTable"
        # Each function reads its own partitions and no other's (the callback never sees tokens).
        own = {"CallbackFunction": "msg#x", "SendFunction": "out#x", "SendWorkerFunction": "out#x",
               "TokenRefreshFunction": "token#wx", "JssdkFunction": "token#wx",
               "HealthFunction": "breaker#x", "AdminFunction": "breaker#x", "BreakerTunerFunction": "breaker#x",
               "SyncFunction": "follower#x", "FollowersFunction": "follower#x"}
        for name, info in loaded.policies.items():
            with self.subTest(function=name):
                self.assertEqual(info.problems, [])
                self.assertIn("AWSLambdaBasicExecutionRole", info.managed)
                # The pre-traffic hook has no partition: it invokes the new versions, which do.
                self.assertEqual(ic.evaluate(info.statements, "dynamodb:GetItem", table,
                                             {"dynamodb:LeadingKeys": [own.get(name, "msg#x")]}).decision,
                                 "ImplicitDeny" if name == "PreTrafficHookFunction" else "Allow")
        self.assertEqual(ic.evaluate(loaded.policies["CallbackFunction"].statements, "dynamodb:GetItem", table,
                                     {"dynamodb:LeadingKeys": ["token#wx"]}).decision, "ImplicitDeny")
        self.assertEqual(ic.evaluate(loaded.policies["CallbackFunction"].statements,
                                     "secretsmanager:GetSecretValue", callback_arn, {}).decision, "Allow")
        self.assertEqual(ic.evaluate(loaded.policies["CallbackFunction"].statements,
                                     "secretsmanager:GetSecretValue", arn, {}).decision, "ImplicitDeny")
        self.assertEqual(ic.evaluate(loaded.policies["TokenRefreshFunction"].statements,
                                     "secretsmanager:GetSecretValue", arn, {}).decision, "Allow")
        self.assertIn("AWSLambdaSQSQueueExecutionRole", loaded.policies["SendWorkerFunction"].managed)
        # Callback-only: without an AppSecret the API functions are not deployed at all.
        callback_only = ic.load(str(self.path), common, None)
        self.assertEqual(set(callback_only.checked), {"CallbackFunction", "HealthFunction", "PreTrafficHookFunction"})

    def test_the_follower_functions_keep_to_their_partitions(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/appsecret-AbCdEf"
        callback_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/callback-AbCdEf"
        params = [f"WechatCallbackSecretArn={callback_arn}", "WechatAppId=wx0123456789abcdef",
                  f"WechatAppSecretArn={arn}"]
        loaded = ic.load(str(self.path), params, None)
        table = "arn:aws:dynamodb:us-east-1:123456789012:table/StateTable"

        def decision(function, action, keys, resource=table):
            return ic.evaluate(loaded.policies[function].statements, action, resource,
                               {"dynamodb:LeadingKeys": keys}).decision

        # The read API reads followers and writes nothing, not even its own partition.
        for action in ("dynamodb:GetItem", "dynamodb:Query"):
            self.assertEqual(decision("FollowersFunction", action, ["follower#x"]), "Allow", action)
        for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
            self.assertEqual(decision("FollowersFunction", action, ["follower#x"]), "ImplicitDeny", action)
        for key in ("sync#state", "token#wx", "out#x"):
            self.assertEqual(decision("FollowersFunction", "dynamodb:GetItem", [key]), "ImplicitDeny", key)
        self.assertEqual(decision("FollowersFunction", "secretsmanager:GetSecretValue", [], arn), "ImplicitDeny")
        # The sync writes followers and its lease/checkpoint, uses the WeChat client's records,
        # and nothing of the send path's.
        for key in ("follower#x", "sync#state"):
            for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"):
                self.assertEqual(decision("SyncFunction", action, [key]), "Allow", (key, action))
            self.assertEqual(decision("SyncFunction", "dynamodb:DeleteItem", [key]), "ImplicitDeny", key)
        self.assertEqual(decision("SyncFunction", "dynamodb:UpdateItem", ["token#wx"]), "Allow")
        for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"):
            self.assertEqual(decision("SyncFunction", action, ["out#x"]), "ImplicitDeny", action)
        self.assertEqual(decision("SyncFunction", "secretsmanager:GetSecretValue", [], arn), "Allow")
        self.assertEqual(decision("SyncFunction", "secretsmanager:GetSecretValue", [], callback_arn), "ImplicitDeny")
        # Subscribe/unsubscribe events: the callback updates follower items; the admin API the
        # sync's checkpoint item, never a follower.
        self.assertEqual(decision("CallbackFunction", "dynamodb:UpdateItem", ["follower#x"]), "Allow")
        self.assertEqual(decision("CallbackFunction", "dynamodb:UpdateItem", ["sync#state"]), "ImplicitDeny")
        self.assertEqual(decision("AdminFunction", "dynamodb:UpdateItem", ["sync#state"]), "Allow")
        self.assertEqual(decision("AdminFunction", "dynamodb:GetItem", ["follower#x"]), "ImplicitDeny")

    def test_the_login_function_only_with_a_login_and_only_its_secrets(self):
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/appsecret-AbCdEf"
        mp_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/miniprogram-AbCdEf"
        callback_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat/callback-AbCdEf"
        common = [f"WechatCallbackSecretArn={callback_arn}", "WechatAppId=wx0123456789abcdef"]
        api = common + [f"WechatAppSecretArn={arn}"]
        web = ["OauthRedirectUri=https://login.example.com/oauth/callback"]
        mini = ["MiniProgramAppId=wx1111111111111111", f"MiniProgramSecretArn={mp_arn}"]
        table = "arn:aws:dynamodb:us-east-1:123456789012:table/StateTable"
        # Neither login: no login function (with or without the Official Account's AppSecret).
        self.assertNotIn("AuthFunction", ic.load(str(self.path), api, None).checked)
        self.assertNotIn("AuthFunction", ic.load(str(self.path), common, None).checked)
        # The web login needs the Official Account's AppSecret; the mini-program login does not.
        cases = [("web", api + web, {arn}), ("miniprogram", api + mini, {mp_arn}),
                 ("both", api + web + mini, {arn, mp_arn}), ("miniprogram, callback-only", common + mini, {mp_arn})]
        for name, params, secrets in cases:
            with self.subTest(logins=name):
                loaded = ic.load(str(self.path), params, None)
                self.assertIn("AuthFunction", loaded.checked)
                info = loaded.policies["AuthFunction"]
                self.assertEqual(info.problems, [])

                def decision(action, resource, keys=None):
                    context = {"dynamodb:LeadingKeys": keys} if keys is not None else {}
                    return ic.evaluate(info.statements, action, resource, context).decision

                for secret in (arn, mp_arn, callback_arn):
                    self.assertEqual(decision("secretsmanager:GetSecretValue", secret),
                                     "Allow" if secret in secrets else "ImplicitDeny", secret)
                for key in ("auth#session#x", "auth#state#x", "authonce#miniprogram"):
                    self.assertEqual(decision("dynamodb:PutItem", table, [key]), "Allow", key)
                    self.assertEqual(decision("dynamodb:DeleteItem", table, [key]), "Allow", key)
                for key in ("token#wx1111111111111111", "breaker#wechat.miniprogram", "quota#wx1", "config#breaker"):
                    self.assertEqual(decision("dynamodb:UpdateItem", table, [key]), "Allow", key)
                    self.assertEqual(decision("dynamodb:PutItem", table, [key]), "ImplicitDeny", key)
                self.assertEqual(decision("dynamodb:Query", table, ["config#breaker"]), "Allow")
                for key in ("msg#x", "out#x", "pay#x", "config#pinned"):
                    self.assertEqual(decision("dynamodb:GetItem", table, [key]), "ImplicitDeny", key)


@unittest.skipUnless(os.environ.get("IAM_CHECK_LIVE") == "1", "set IAM_CHECK_LIVE=1 to record real calls with moto")
class LiveMotoTest(unittest.TestCase):
    """Starts moto_server with its recorder, makes real boto3 calls signed per function, and checks them."""

    def test_real_recording(self):
        try:
            import boto3
            import moto  # noqa: F401
        except ImportError as e:
            self.skipTest(f"needs boto3 and moto[server]: {e}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        env = dict(os.environ, MOTO_ENABLE_RECORDING="true",
                   MOTO_RECORDER_FILEPATH=str(Path(tmp.name, "moto_recording")))
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).read()
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    self.fail("moto server did not start")
                time.sleep(0.2)

        def client(service: str, key: str):
            return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                                aws_access_key_id=key, aws_secret_access_key="test")

        ddb_admin, sqs_admin, sm_admin = client("dynamodb", "test"), client("sqs", "test"), client("secretsmanager", "test")
        ddb_admin.create_table(TableName="wechat-test-live", BillingMode="PAY_PER_REQUEST",
                               AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                     {"AttributeName": "sk", "AttributeType": "S"}],
                               KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                          {"AttributeName": "sk", "KeyType": "RANGE"}])
        qurl = sqs_admin.create_queue(QueueName="wechat-test-q-live")["QueueUrl"]
        arn = sm_admin.create_secret(Name="app/secret", SecretString="s3cret")["ARN"]

        w_ddb, w_sqs, w_sm = client("dynamodb", "Writer"), client("sqs", "Writer"), client("secretsmanager", "Writer")
        key = {"pk": {"S": "msg#wx1#1"}, "sk": {"S": "s"}}
        w_ddb.put_item(TableName="wechat-test-live", Item=key)
        w_ddb.get_item(TableName="wechat-test-live", Key=key, ConsistentRead=True)
        w_ddb.update_item(TableName="wechat-test-live", Key=key, UpdateExpression="SET #n0 = :v0",
                          ExpressionAttributeNames={"#n0": "state"}, ExpressionAttributeValues={":v0": {"S": "x"}})
        w_ddb.delete_item(TableName="wechat-test-live", Key=key)
        w_ddb.query(TableName="wechat-test-live", KeyConditionExpression="#n0 = :v0",
                    ExpressionAttributeNames={"#n0": "pk"}, ExpressionAttributeValues={":v0": {"S": "config#breaker"}})
        w_sqs.send_message(QueueUrl=qurl, MessageBody="{}")
        w_sm.get_secret_value(SecretId=arn)
        worker = client("sqs", "Worker")
        msgs = worker.receive_message(QueueUrl=qurl, MaxNumberOfMessages=1).get("Messages", [])
        self.assertTrue(msgs)
        worker.change_message_visibility(QueueUrl=qurl, ReceiptHandle=msgs[0]["ReceiptHandle"], VisibilityTimeout=5)

        rec = Path(tmp.name, "rec.jsonl")
        with urllib.request.urlopen(endpoint + "/moto-api/recorder/download-recording", timeout=10) as resp:
            rec.write_bytes(resp.read())
        template = Path(tmp.name, "template.yaml")
        template.write_text(TEMPLATE)
        code, out, err = run_main(["check", "-t", str(template), "-r", str(rec), "-p", "Token=t",
                                   "-p", f"SecretArn={arn}", "--map", "Table=wechat-test-live",
                                   "--map", "Queue=wechat-test-q-live"])
        self.assertEqual(code, 0, out + err)
        self.assertIn("ignored: 3 entries signed with other keys (test: 3)", out)
        self.assertIn(f"allowed  secretsmanager:GetSecretValue on {arn}", out)


if __name__ == "__main__":
    unittest.main()
