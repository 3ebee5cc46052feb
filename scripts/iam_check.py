#!/usr/bin/env python3
"""iam_check.py: check the IAM grants of each Lambda function in a SAM template against the AWS calls
the function really made, as recorded by moto's request recorder.

Usage (from the repository root; Python 3.11 with aws-sam-translator and PyYAML installed):

  python3 scripts/iam_check.py check --template template.yaml --recording REC.jsonl \\
      [--param Name=Value ...] [--map LogicalId=physical-name ...] [--functions A,B] \\
      [--allow-unused ACTION_GLOB ...] [--json]
  python3 scripts/iam_check.py calls    --template T --recording REC [--param ..] [--map ..] [--functions ..]
  python3 scripts/iam_check.py policies --template T [--param ..] [--functions ..]
  python3 scripts/iam_check.py expand   --template T [--param ..]

  check     Replays every recorded call of the checked functions through an IAM evaluator and checks
            that every action the functions' own statements grant was used. Prints a per-function
            report (or JSON with --json).
  calls     Prints the calls derived from the recording, one JSON object per line (function, origin,
            action, resource, leading_keys, the recorded name and what it was mapped to): what `check`
            evaluates. Exit 1 if some entry of a checked function could not be turned into a call.
  policies  Prints each function's effective statements after expansion and resolution (JSON).
  expand    Prints the template as the SAM translator expands it (CloudFormation JSON).

Options:
  --template, -t FILE      SAM template (default: template.yaml).
  --recording, -r FILE     moto's recorder download (GET /moto-api/recorder/download-recording), one
                           JSON object per line with headers, method, url, body, body_encoded.
                           Repeatable; '-' reads stdin.
  --param, -p NAME=VALUE   Template parameter (repeatable). Unset parameters take their Default; a
                           parameter with neither gets "placeholder-NAME" (noted on stderr).
  --map LogicalId=NAME     The recording's physical NAME (a DynamoDB table, SQS queue or Secrets
                           Manager secret name; shell-style globs allowed, e.g. 'wechat-test-*')
                           stands for the template resource LogicalId. For secrets LogicalId may
                           also be a parameter holding the secret's ARN (e.g. WechatAppSecretArn).
                           Repeatable. A name equal to a logical id (or to the resource's own name
                           property) maps to it without --map.
  --functions A,B          Check only these functions (default: every AWS::Serverless::Function).
  --allow-unused GLOB      A granted action that need not appear in the recording (repeatable).
  --json                   Print the report as JSON.

Attribution. A recorded call belongs to the function whose logical id equals the access key id in
the request's SigV4 `Authorization: ... Credential=<KEY>/<date>/<region>/<service>/aws4_request`
header (so the tests sign each function's SDK client with its logical id as access key id). Calls
with any other key (test set-up, other tests sharing moto) are ignored and counted. A line that is
not valid JSON (moto can interleave concurrent entries) is a problem only if it contains one of the
checked logical ids as a substring; otherwise it is ignored and counted. Hand-written lines of the
form {"function": F, "action": "dynamodb:GetItem", "resource": ARN|LogicalId|name,
"leading_keys": [...]} are accepted as well.

What a recorded call becomes (action, resource, dynamodb:LeadingKeys):
  DynamoDB  X-Amz-Target DynamoDB_20120810.<Op> -> dynamodb:<Op> on the ARN of the table's logical
            id (TableName mapped through --map). LeadingKeys: Key.<pk> (GetItem, UpdateItem,
            DeleteItem), Item.<pk> (PutItem), the value bound to <pk> by `=` in a Query's
            KeyConditionExpression (or legacy KeyConditions), all keys per table for BatchGetItem /
            BatchWriteItem. TransactWriteItems / TransactGetItems become one call per item with the
            per-item action IAM authorizes (PutItem, UpdateItem, DeleteItem, ConditionCheckItem,
            GetItem). <pk> is the table's HASH key in the template (pk here). Scan has no LeadingKeys.
  SQS       X-Amz-Target AmazonSQS.<Op> (JSON protocol) or Action=<Op> (query protocol) -> sqs:<Op>
            (the *Batch operations are authorized as their single-message action) on the ARN of the
            queue's logical id (last path segment of QueueUrl, mapped through --map).
  Secrets   X-Amz-Target secretsmanager.<Op> -> secretsmanager:<Op> on SecretId: mapped through
            --map if a mapping matches, else the ARN as given, else the parameter or template secret
            whose ARN is that name plus the 6-character suffix, else a parameter value equal to it.
  others    <service>:<Op> on "*". Requests whose operation cannot be identified (REST APIs) are
            reported as problems.

Policies. The template is expanded offline by the real SAM translator (region us-east-1, account
123456789012; local CodeUri values rewritten to s3:// placeholders; the managed-policy lookup is
stubbed). Conditions, Fn::If, Ref, GetAtt and Sub are resolved to fake but consistent ARNs: a table
is arn:aws:dynamodb:us-east-1:123456789012:table/<LogicalId>, a queue
arn:aws:sqs:us-east-1:123456789012:<LogicalId> (or the name property when the template sets one), a
Lambda version's Ref arn:aws:lambda:us-east-1:123456789012:function:<Name>:1 and an alias's
…:function:<Name>:<alias>.
A function's statements are its role's inline policies, AWS::IAM::Policy/ManagedPolicy resources
attached to the role, and the AWS managed policies SAM attaches (AWSLambdaBasicExecutionRole,
AWSXrayWriteOnlyAccess, AWSLambdaSQSQueueExecutionRole, ...; their documents are built in).

Evaluation. Explicit Deny wins, then Allow, else implicit deny. Action/NotAction match
case-insensitively with * and ? wildcards; Resource/NotResource case-sensitively, a * that ends an
ARN segment may span ':' (IAM's rule). Conditions: String*, Arn*, Bool, Numeric*, Null, each with
IfExists and the ForAllValues:/ForAnyValue: set operators. ForAllValues is true when the key is
absent or its set is empty; ForAnyValue is then false; a plain operator is false on an absent key
(negated ones true). A plain operator on several values must hold for all of them in an Allow and
for one of them in a Deny (the conservative reading). Condition keys the recording cannot provide
(anything but aws:SecureTransport, aws:RequestedRegion, aws:PrincipalAccount, dynamodb:LeadingKeys,
dynamodb:Select, dynamodb:ReturnValues, dynamodb:ReturnConsumedCapacity) are reported as problems.

Unused grants. Each action pattern of each Allow statement of the function's own policies (not the
AWS managed ones) must match, together with the statement's Resource, at least one recorded call of
that function (conditions are not considered); otherwise the report says
"GRANTED BUT NEVER USED: <Function> <action> on <resource>". Exempt: logs:* / xray:* patterns (the
Lambda runtime uses them), actions Lambda performs for an event source mapping or a destination
(also when the mapping names the function's alias or a version), --allow-unused globs, and the
(function, action) pairs of PROVEN_ELSEWHERE on named resources (grants whose calls never reach a
recording in a checkable form, e.g. the pre-traffic hook's lambda:InvokeFunction and
codedeploy:PutLifecycleEventHookExecutionStatus; each entry says what proves it instead).

Report. A header (parameters, resolved conditions, checked functions, what was ignored), then per
function: "allowed <action> on <resource> xN keys: ... <- <statement>" groups, then
"DENIED: <Function> <action> on <resource> (implicit deny | explicit deny by <statement>; keys;
xN, at FILE:LINE...)" with a hint when the name was not mapped, "GRANTED BUT NEVER USED: ...", and
"PROBLEM: ..." lines; finally "OK: ..." or "FAIL: ..." with the totals. --json prints the same data.
Tests: python3 -m unittest scripts/test_iam_check.py (IAM_CHECK_LIVE=1 adds a run against moto).

Exit status: 0 clean; 1 a denied call, an unused grant or another problem (an unreadable line of a
checked function, an unidentifiable call, an unevaluable condition, a role or managed policy the
tool cannot see); 2 bad input (unreadable template or recording, undeclared parameter, bad --map,
unknown function).
"""
from __future__ import annotations

import argparse
import base64
import binascii
import copy
import fnmatch
import functools
import json
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
STACK_NAME = "iam-check"
DEFAULT_PK = "pk"


class InputError(Exception):
    """Bad template, recording, parameter or argument: exit status 2."""


# ------------------------------------------------------------------------------------------------
# YAML with CloudFormation short-form tags
# ------------------------------------------------------------------------------------------------

def _yaml_loader():
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    # CloudFormation reads 2010-09-09 as a string, not as a date.
    CfnLoader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct(loader, tag, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag in ("Ref", "Condition"):
            return {tag: value}
        if tag == "GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [resource, attribute]}
        return {f"Fn::{tag}": value}

    CfnLoader.add_multi_constructor("!", construct)
    return CfnLoader


def parse_template(text: str, origin: str = "template") -> dict:
    import yaml

    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InputError(f"{origin}: not valid JSON: {e}") from e
    else:
        try:
            data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as e:
            raise InputError(f"{origin}: not valid YAML: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise InputError(f"{origin}: not a CloudFormation/SAM template (no Resources)")
    return json.loads(json.dumps(data, default=str))


def load_template(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise InputError(f"cannot read template {path}: {e.strerror}") from e
    return parse_template(text, path)


# ------------------------------------------------------------------------------------------------
# AWS managed policies SAM attaches. They are "runtime" policies: Lambda itself uses them, the
# function code does not, so they are left out of the unused-grant check.
# ------------------------------------------------------------------------------------------------

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES: dict[str, dict] = {
    "AWSLambdaBasicExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "Statement": [{"Effect": "Allow", "Action": _LOGS, "Resource": "*"}],
    },
    "AWSXrayWriteOnlyAccess": {
        "arn": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "Statement": [{"Sid": "AWSXrayWriteOnlyAccess", "Effect": "Allow", "Action": [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
            "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": ["*"]}],
    },
    "AWSXRayDaemonWriteAccess": {
        "arn": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
        "Statement": [{"Effect": "Allow", "Action": [
            "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
            "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "Resource": ["*"]}],
    },
    "AWSLambdaSQSQueueExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
        "Statement": [{"Effect": "Allow", "Action": [
            "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS], "Resource": "*"}],
    },
    "AWSLambdaDynamoDBExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
        "Statement": [{"Effect": "Allow", "Action": [
            "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
            "dynamodb:ListStreams", *_LOGS], "Resource": "*"}],
    },
    "AWSLambdaKinesisExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaKinesisExecutionRole",
        "Statement": [{"Effect": "Allow", "Action": [
            "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
            "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams",
            "kinesis:SubscribeToShard", *_LOGS], "Resource": "*"}],
    },
    "AWSLambdaVPCAccessExecutionRole": {
        "arn": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
        "Statement": [{"Effect": "Allow", "Action": [
            *_LOGS, "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses"], "Resource": "*"}],
    },
}
MANAGED_BY_ARN = {p["arn"]: name for name, p in MANAGED_POLICIES.items()}

# Actions Lambda performs with the function's role on its behalf (never in the function's own calls).
ESM_IMPLIED = {
    "sqs": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
    "dynamodb": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                 "dynamodb:ListStreams"],
    "kinesis": ["kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
                "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams",
                "kinesis:SubscribeToShard"],
}
DESTINATION_IMPLIED = {"sqs": ["sqs:SendMessage"], "sns": ["sns:Publish"],
                       "lambda": ["lambda:InvokeFunction"], "events": ["events:PutEvents"]}
RUNTIME_ACTION_GLOBS = ["logs:*", "xray:*"]

# Grants a moto recording cannot prove, each with the reason and what proves it instead. The
# permission test records only what the functions send to moto, and two calls of the pre-traffic
# hook never get there in a checkable form: Lambda's Invoke is a REST call (no X-Amz-Target, no
# Action; iam_check reports such a request as a problem, and moto would have to run the target),
# and moto has no CodeDeploy PutLifecycleEventHookExecutionStatus (and the request names a
# deployment id, not the deployment group its IAM resource is). So the test sends those calls
# elsewhere, and without this table the grants would read "GRANTED BUT NEVER USED".
# An entry exempts one (function logical id, action) pair only, and only on named resources:
# the same action granted to another function, or granted on Resource "*" (or by NotResource),
# is still reported. Checked functions that are not in the template are simply not matched.
PROVEN_ELSEWHERE: dict[tuple[str, str], str] = {
    ("PreTrafficHookFunction", "lambda:InvokeFunction"):
        "a REST call the recording cannot check; the hook's own tests (functions/pre-traffic-hook) invoke "
        "the versions, scripts/test_template.py proves the grant names only the new versions' ARNs",
    ("PreTrafficHookFunction", "codedeploy:PutLifecycleEventHookExecutionStatus"):
        "moto has no CodeDeploy lifecycle hooks; the hook's own tests (functions/pre-traffic-hook) report "
        "both verdicts, scripts/test_template.py proves the grant names only this stack's deployment groups",
}


# ------------------------------------------------------------------------------------------------
# SAM expansion (offline)
# ------------------------------------------------------------------------------------------------

def _policy_loader():
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader

    class OfflinePolicyMap(dict):
        """Known names map to their ARNs; any other plausible name to arn:aws:iam::aws:policy/NAME."""

        def get(self, key, default=None):
            if key in self:
                return self[key]
            if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9+=,.@_-]+", key):
                return f"arn:{PARTITION}:iam::aws:policy/{key}"
            return default

    class OfflineManagedPolicyLoader(ManagedPolicyLoader):
        def __init__(self) -> None:
            super().__init__(iam_client=None)  # type: ignore[arg-type]

        def load(self) -> dict[str, str]:
            return OfflinePolicyMap({name: p["arn"] for name, p in MANAGED_POLICIES.items()})

    return OfflineManagedPolicyLoader()


def effective_parameters(template: dict, given: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    declared = template.get("Parameters") or {}
    for name in given:
        if name not in declared:
            raise InputError(f"parameter {name} is not declared in the template "
                             f"(declared: {', '.join(declared) or 'none'})")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            value = f"placeholder-{name}"
            notes.append(f"parameter {name} has no value and no default: using {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        allowed = spec.get("AllowedValues")
        if allowed and str(value) not in [str(a) for a in allowed]:
            raise InputError(f"parameter {name}={value!r} is not one of {allowed}")
        values[name] = value
    return values, notes


def expand(template: dict, params: dict[str, Any]) -> dict:
    """The template expanded by the SAM translator, without network access."""
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.setdefault("AWS_REGION", REGION)
    # The translator warns "There are unpublished metrics" when its metrics object is collected.
    logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)
    from samtranslator.translator.transform import transform

    t = copy.deepcopy(template)
    globals_fn = (t.get("Globals") or {}).get("Function") or {}
    globals_fn.pop("CodeUri", None)
    for lid, res in (t.get("Resources") or {}).items():
        if not isinstance(res, dict):
            raise InputError(f"resource {lid} is not an object")
        props = res.setdefault("Properties", {})
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function":
            if "InlineCode" not in props and "ImageUri" not in props and props.get("PackageType") != "Image":
                uri = props.get("CodeUri")
                if not (isinstance(uri, str) and uri.startswith("s3://")) and not isinstance(uri, dict):
                    props["CodeUri"] = f"s3://iam-check-artifacts/{lid}.zip"
        elif kind == "AWS::Serverless::LayerVersion":
            uri = props.get("ContentUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props["ContentUri"] = f"s3://iam-check-artifacts/{lid}.zip"
        elif kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::Serverless::StateMachine"):
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props["DefinitionUri"] = f"s3://iam-check-artifacts/{lid}.json"
    try:
        return transform(t, dict(params), _policy_loader())
    except Exception as e:  # the translator raises InvalidDocumentException with causes
        causes = getattr(e, "causes", None)
        detail = "; ".join(getattr(c, "message", str(c)) for c in causes) if causes else str(e)
        raise InputError(f"SAM translator: {detail}") from e


# ------------------------------------------------------------------------------------------------
# Intrinsic functions -> fake concrete values
# ------------------------------------------------------------------------------------------------

class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NOVALUE = _NoValue()

_SERVICE_OF_TYPE = {"DynamoDB": "dynamodb", "SQS": "sqs", "SNS": "sns", "Lambda": "lambda", "IAM": "iam",
                    "SecretsManager": "secretsmanager", "KMS": "kms", "S3": "s3", "Events": "events",
                    "Kinesis": "kinesis", "StepFunctions": "states", "SSM": "ssm", "Logs": "logs"}
_NAME_PROPERTY = {"AWS::DynamoDB::Table": "TableName", "AWS::DynamoDB::GlobalTable": "TableName",
                  "AWS::SQS::Queue": "QueueName", "AWS::WAFv2::IPSet": "Name", "AWS::WAFv2::WebACL": "Name",
                  "AWS::SNS::Topic": "TopicName", "AWS::Lambda::Function": "FunctionName",
                  "AWS::IAM::Role": "RoleName", "AWS::SecretsManager::Secret": "Name",
                  "AWS::S3::Bucket": "BucketName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
                  "AWS::Kinesis::Stream": "Name", "AWS::Events::Rule": "Name"}


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


class Resolver:
    """Evaluates Conditions and resolves intrinsics to fake ARNs in REGION / ACCOUNT."""

    def __init__(self, cfn: dict, params: dict[str, Any]):
        self.cfn = cfn
        self.resources: dict = cfn.get("Resources") or {}
        self.params = params
        self.mappings = cfn.get("Mappings") or {}
        self._conditions: dict[str, bool] = {}
        self.pseudo = {
            "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK_NAME}/"
                            "00000000-0000-0000-0000-000000000000",
            "AWS::NotificationARNs": [],
        }

    # -- conditions
    def condition(self, name: str, _seen: tuple = ()) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        conds = self.cfn.get("Conditions") or {}
        if name not in conds:
            raise InputError(f"unknown condition {name}")
        if name in _seen:
            raise InputError(f"condition {name} refers to itself")
        value = self._cond_expr(conds[name], _seen + (name,))
        self._conditions[name] = value
        return value

    def _cond_expr(self, node: Any, seen: tuple) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (k, v), = node.items()
            if k == "Condition":
                return self.condition(v, seen)
            if k == "Fn::Equals":
                a, b = (self.resolve(x) for x in v)
                return _scalar_str(a) == _scalar_str(b)
            if k == "Fn::Not":
                return not self._cond_expr(v[0], seen)
            if k == "Fn::And":
                return all(self._cond_expr(x, seen) for x in v)
            if k == "Fn::Or":
                return any(self._cond_expr(x, seen) for x in v)
        if isinstance(node, bool):
            return node
        raise InputError(f"unsupported condition expression {node!r}")

    def conditions(self) -> dict[str, bool]:
        return {name: self.condition(name) for name in (self.cfn.get("Conditions") or {})}

    def resource_enabled(self, lid: str) -> bool:
        res = self.resources.get(lid) or {}
        return "Condition" not in res or self.condition(res["Condition"])

    # -- names, Ref, GetAtt
    def type_of(self, lid: str) -> str:
        return (self.resources.get(lid) or {}).get("Type", "")

    def physical_name(self, lid: str) -> str:
        kind = self.type_of(lid)
        prop = _NAME_PROPERTY.get(kind)
        props = (self.resources.get(lid) or {}).get("Properties") or {}
        if prop and prop in props:
            value = self.resolve(props[prop])
            if isinstance(value, str) and value:
                return value
        if kind == "AWS::S3::Bucket":
            return lid.lower()
        if kind == "AWS::SQS::Queue" and props.get("FifoQueue") in (True, "true"):
            return lid + ".fifo"
        return lid

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NOVALUE
        if name in self.params:
            value = self.params[name]
            spec = (self.cfn.get("Parameters") or {}).get(name) or {}
            ptype = str(spec.get("Type", "String"))
            if isinstance(value, str) and (ptype == "CommaDelimitedList" or ptype.startswith("List<")):
                return [x.strip() for x in value.split(",")] if value else []
            return value
        if name not in self.resources:
            raise InputError(f"Ref to unknown name {name}")
        kind = self.type_of(name)
        pname = self.physical_name(name)
        return {
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{pname}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{pname}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{pname}-AbCdEf",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{ACCOUNT}:policy/{pname}",
            "AWS::KMS::Key": f"{name}-0000-key-id",
        }.get(kind) or self._ref_of_kind(name, kind, pname)

    def _ref_of_kind(self, lid: str, kind: str, pname: str) -> str:
        # A version's Ref is its ARN (…:function:Name:N), an alias's too (…:function:Name:alias).
        if kind == "AWS::Lambda::Version":
            return f"{self._function_arn_of(lid)}:1"
        if kind == "AWS::Lambda::Alias":
            return f"{self._function_arn_of(lid)}:{_scalar_str(self._prop(lid, 'Name'))}"
        if kind in ("AWS::WAFv2::IPSet", "AWS::WAFv2::WebACL"):  # Name|Id|Scope
            return f"{pname}|{lid}-0000-id|{_scalar_str(self._prop(lid, 'Scope'))}"
        return pname

    def _prop(self, lid: str, prop: str) -> Any:
        return self.resolve(((self.resources.get(lid) or {}).get("Properties") or {}).get(prop))

    def _function_arn_of(self, lid: str) -> str:
        """The unqualified function ARN of a version's or an alias's FunctionName."""
        fn = self._prop(lid, "FunctionName")
        fn = _scalar_str(fn)
        return fn if fn.startswith("arn:") else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"

    def _waf_arn(self, lid: str, what: str) -> str:
        scope = "global" if self._prop(lid, "Scope") == "CLOUDFRONT" else "regional"
        return f"arn:aws:wafv2:{REGION}:{ACCOUNT}:{scope}/{what}/{self.physical_name(lid)}/{lid}-0000-id"

    def getatt(self, lid: str, attr: str) -> Any:
        if lid not in self.resources:
            raise InputError(f"GetAtt to unknown resource {lid}")
        kind = self.type_of(lid)
        n = self.physical_name(lid)
        table = {
            "AWS::DynamoDB::GlobalTable": {"Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{n}",
                                           "StreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{n}/stream/"
                                                        "2026-01-01T00:00:00.000", "TableId": f"{lid}-0000-id"},
            "AWS::DynamoDB::Table": {"Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{n}",
                                     "StreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{n}/stream/"
                                                  "2026-01-01T00:00:00.000"},
            "AWS::SQS::Queue": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n}", "QueueName": n,
                                "QueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{n}"},
            "AWS::SNS::Topic": {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{n}", "TopicName": n},
            "AWS::Lambda::Function": {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{n}"},
            "AWS::IAM::Role": {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{n}", "RoleId": f"AROA{lid.upper()[:16]}"},
            "AWS::KMS::Key": {"Arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{lid}-0000-key-id",
                              "KeyId": f"{lid}-0000-key-id"},
            "AWS::S3::Bucket": {"Arn": f"arn:aws:s3:::{n}", "DomainName": f"{n}.s3.amazonaws.com"},
            "AWS::Kinesis::Stream": {"Arn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{n}"},
            "AWS::Events::Rule": {"Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{n}"},
            "AWS::SecretsManager::Secret": {"Id": self.ref(lid)},
            "AWS::ApiGatewayV2::Api": {"ApiEndpoint": f"https://{lid.lower()}.execute-api.{REGION}.amazonaws.com",
                                       "ApiId": lid.lower()},
        }.get(kind, {})
        if kind in ("AWS::WAFv2::IPSet", "AWS::WAFv2::WebACL"):
            table = {"Arn": self._waf_arn(lid, kind.rsplit("::", 1)[1].lower()), "Id": f"{lid}-0000-id"}
        elif kind in ("AWS::Lambda::Version", "AWS::Lambda::Alias"):
            table = {"Version": "1", "FunctionName": self._function_arn_of(lid)}
        if attr in table:
            return table[attr]
        if attr == "Arn":
            svc = _SERVICE_OF_TYPE.get(kind.split("::")[1] if kind.count("::") == 2 else "", "unknown")
            return f"arn:aws:{svc}:{REGION}:{ACCOUNT}:{kind.split('::')[-1].lower()}/{n}"
        return f"{lid}.{attr}"

    def sub(self, template: str, variables: dict) -> str:
        def repl(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return _scalar_str(self.resolve(variables[inner]))
            if "." in inner and inner.split(".", 1)[0] in self.resources:
                lid, attr = inner.split(".", 1)
                return _scalar_str(self.getatt(lid, attr))
            return _scalar_str(self.ref(inner))
        return re.sub(r"\$\{([^}]+)\}", repl, template)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(x) for x in node]
            return [x for x in out if x is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::GetAtt":
                lid, attr = (v.split(".", 1) if isinstance(v, str) else v)
                return self.getatt(self.resolve(lid), self.resolve(attr))
            if k == "Fn::If":
                cond, yes, no = v
                return self.resolve(yes if self.condition(cond) else no)
            if k == "Fn::Sub":
                if isinstance(v, str):
                    return self.sub(v, {})
                return self.sub(self.resolve(v[0]), v[1] if len(v) > 1 else {})
            if k == "Fn::Join":
                sep, items = v
                return self.resolve(sep).join(_scalar_str(x) for x in self.resolve(items))
            if k == "Fn::Select":
                idx, items = v
                return self.resolve(items)[int(self.resolve(idx))]
            if k == "Fn::Split":
                sep, s = v
                return self.resolve(s).split(self.resolve(sep))
            if k == "Fn::FindInMap":
                m, a, b = (self.resolve(x) for x in v[:3])
                return self.mappings[m][a][b]
            if k == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if k == "Fn::ImportValue":
                return f"imported-{self.resolve(v)}"
            if k == "Fn::Base64":
                return base64.b64encode(_scalar_str(self.resolve(v)).encode()).decode()
            if k in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
                return self._cond_expr(node, ())
        out = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not NOVALUE:
                out[key] = resolved
        return out


# ------------------------------------------------------------------------------------------------
# Effective statements per function
# ------------------------------------------------------------------------------------------------

@dataclass
class Statement:
    effect: str
    source: str            # "CallbackFunctionRolePolicy0" / "managed AWSLambdaBasicExecutionRole" / ...
    sid: str | None = None
    actions: list[str] | None = None
    not_actions: list[str] | None = None
    resources: list[str] | None = None
    not_resources: list[str] | None = None
    condition: dict | None = None
    runtime: bool = False  # from an AWS managed policy: left out of the unused-grant check

    @property
    def label(self) -> str:
        return self.source + (f"/{self.sid}" if self.sid else "")

    def as_json(self) -> dict:
        d: dict[str, Any] = {"Effect": self.effect}
        if self.sid:
            d["Sid"] = self.sid
        for key, value in (("Action", self.actions), ("NotAction", self.not_actions),
                           ("Resource", self.resources), ("NotResource", self.not_resources),
                           ("Condition", self.condition)):
            if value is not None:
                d[key] = value
        d["_source"] = self.source
        if self.runtime:
            d["_managed"] = True
        return d


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [_scalar_str(v) for v in (value if isinstance(value, list) else [value])]


def statements_of(document: Any, source: str, runtime: bool = False) -> list[Statement]:
    if not isinstance(document, dict):
        raise InputError(f"{source}: policy document is not an object: {document!r}")
    raw = document.get("Statement", [])
    out = []
    for s in raw if isinstance(raw, list) else [raw]:
        if not isinstance(s, dict) or s.get("Effect") not in ("Allow", "Deny"):
            raise InputError(f"{source}: statement without a valid Effect: {s!r}")
        cond = s.get("Condition")
        if cond is not None and not isinstance(cond, dict):
            raise InputError(f"{source}: Condition is not an object: {cond!r}")
        out.append(Statement(effect=s["Effect"], source=source, sid=s.get("Sid"),
                             actions=_as_list(s.get("Action")), not_actions=_as_list(s.get("NotAction")),
                             resources=_as_list(s.get("Resource")),
                             not_resources=_as_list(s.get("NotResource")), condition=cond, runtime=runtime))
    return out


@dataclass
class FunctionPolicy:
    name: str
    role: str | None
    statements: list[Statement] = field(default_factory=list)
    managed: list[str] = field(default_factory=list)
    implied: list[tuple[str, str]] = field(default_factory=list)  # (action Lambda itself uses, why)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _service_of_arn(arn: Any) -> str:
    return arn.split(":")[2] if isinstance(arn, str) and arn.startswith("arn:") and arn.count(":") >= 5 else ""


def function_policies(sam: dict, cfn: dict, r: Resolver) -> dict[str, FunctionPolicy]:
    resources = cfn.get("Resources") or {}
    out: dict[str, FunctionPolicy] = {}
    for lid, res in (sam.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function" or not r.resource_enabled(lid):
            continue
        fn = resources.get(lid) or {}
        role_node = (fn.get("Properties") or {}).get("Role")
        role_lid = None
        if isinstance(role_node, dict) and "Fn::GetAtt" in role_node:
            ga = role_node["Fn::GetAtt"]
            role_lid = ga.split(".", 1)[0] if isinstance(ga, str) else ga[0]
        info = FunctionPolicy(name=lid, role=role_lid)
        out[lid] = info
        if not role_lid or role_lid not in resources:
            info.problems.append(f"its role is not created by this template ({json.dumps(role_node)}): "
                                 "its policies are unknown")
            continue
        props = r.resolve(resources[role_lid].get("Properties") or {})
        for pol in props.get("Policies") or []:
            info.statements += statements_of(pol.get("PolicyDocument"), str(pol.get("PolicyName")))
        for arn in props.get("ManagedPolicyArns") or []:
            name = MANAGED_BY_ARN.get(arn)
            if name:
                info.managed.append(name)
                info.statements += statements_of(MANAGED_POLICIES[name], f"managed {name}", runtime=True)
                continue
            own = [m for m, mres in resources.items() if mres.get("Type") == "AWS::IAM::ManagedPolicy"
                   and r.resource_enabled(m) and r.ref(m) == arn]
            if own:
                info.managed.append(own[0])
                doc = r.resolve(resources[own[0]]["Properties"]["PolicyDocument"])
                info.statements += statements_of(doc, f"ManagedPolicy {own[0]}")
            else:
                info.managed.append(str(arn))
                info.problems.append(f"managed policy {arn}: its document is not known to iam_check "
                                     "(add it to MANAGED_POLICIES)")
        if props.get("PermissionsBoundary"):
            info.notes.append(f"permissions boundary {props['PermissionsBoundary']} is not evaluated")
        role_name = r.ref(role_lid)
        for plid, pres in resources.items():
            if pres.get("Type") not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") or not r.resource_enabled(plid):
                continue
            pprops = r.resolve(pres.get("Properties") or {})
            if role_name in (pprops.get("Roles") or []):
                info.statements += statements_of(pprops.get("PolicyDocument"), f"{pres['Type'].split('::')[-1]} {plid}")
        # What Lambda itself does with the role: exempt from the unused check.
        fn_ref = r.ref(lid)
        fn_arn = r.getatt(lid, "Arn")

        def names_this_function(value: Any) -> bool:
            # The function by name or ARN, or one of its aliases or versions (AutoPublishAlias
            # points event sources at the alias: …:function:Name:live).
            return isinstance(value, str) and (value in (fn_ref, fn_arn) or value.startswith(fn_arn + ":")
                                               or value.startswith(fn_ref + ":"))
        for mlid, mres in resources.items():
            if mres.get("Type") != "AWS::Lambda::EventSourceMapping" or not r.resource_enabled(mlid):
                continue
            mprops = r.resolve(mres.get("Properties") or {})
            if not names_this_function(mprops.get("FunctionName")):
                continue
            for action in ESM_IMPLIED.get(_service_of_arn(mprops.get("EventSourceArn")), []):
                info.implied.append((action, f"event source mapping {mlid}"))
            dest = ((mprops.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            for action in DESTINATION_IMPLIED.get(_service_of_arn(dest), []):
                info.implied.append((action, f"{mlid} on-failure destination"))
        fprops = r.resolve(fn.get("Properties") or {})
        dlq = (fprops.get("DeadLetterConfig") or {}).get("TargetArn")
        for action in DESTINATION_IMPLIED.get(_service_of_arn(dlq), []):
            info.implied.append((action, "dead-letter config"))
        for ciid, cires in resources.items():
            if cires.get("Type") != "AWS::Lambda::EventInvokeConfig" or not r.resource_enabled(ciid):
                continue
            ciprops = r.resolve(cires.get("Properties") or {})
            if not names_this_function(ciprops.get("FunctionName")):
                continue
            for kind in ("OnSuccess", "OnFailure"):
                d = ((ciprops.get("DestinationConfig") or {}).get(kind) or {}).get("Destination")
                for action in DESTINATION_IMPLIED.get(_service_of_arn(d), []):
                    info.implied.append((action, f"{ciid} {kind} destination"))
    return out


# ------------------------------------------------------------------------------------------------
# The IAM evaluator
# ------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _glob_re(pattern: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM string glob: * any run of characters (also none), ? exactly one character."""
    return _glob_re(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return glob_match(pattern, action, ignore_case=True)


@functools.lru_cache(maxsize=4096)
def _arn_re(pattern: str) -> re.Pattern:
    parts = []
    for i, ch in enumerate(pattern):
        if ch == "*":
            # A '*' that ends a segment (before ':' or at the end) may expand across ':'.
            parts.append(".*" if i + 1 == len(pattern) or pattern[i + 1] == ":" else "[^:]*")
        elif ch == "?":
            parts.append("[^:]")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def resource_matches(pattern: str, arn: str) -> bool:
    """IAM Resource matching: case-sensitive; * and ? stay inside their ':'-separated segment,
    except a * that is the last character of a segment, which may match across ':'."""
    if pattern == "*":
        return True
    return _arn_re(pattern).fullmatch(arn) is not None


_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike",
            "NumericNotEquals"}
_OPS = {
    "StringEquals": lambda c, p: c == p,
    "StringNotEquals": lambda c, p: c == p,
    "StringEqualsIgnoreCase": lambda c, p: c.lower() == p.lower(),
    "StringNotEqualsIgnoreCase": lambda c, p: c.lower() == p.lower(),
    "StringLike": lambda c, p: glob_match(p, c),
    "StringNotLike": lambda c, p: glob_match(p, c),
    "ArnEquals": lambda c, p: resource_matches(p, c),
    "ArnLike": lambda c, p: resource_matches(p, c),
    "ArnNotEquals": lambda c, p: resource_matches(p, c),
    "ArnNotLike": lambda c, p: resource_matches(p, c),
    "Bool": lambda c, p: c.lower() == p.lower(),
    "NumericEquals": lambda c, p: float(c) == float(p),
    "NumericNotEquals": lambda c, p: float(c) == float(p),
    "NumericLessThan": lambda c, p: float(c) < float(p),
    "NumericLessThanEquals": lambda c, p: float(c) <= float(p),
    "NumericGreaterThan": lambda c, p: float(c) > float(p),
    "NumericGreaterThanEquals": lambda c, p: float(c) >= float(p),
}
# Context keys iam_check derives from a recording; when one of them is absent, it is really absent.
KNOWN_CONTEXT_KEYS = {"aws:securetransport", "aws:requestedregion", "aws:principalaccount",
                      "dynamodb:leadingkeys", "dynamodb:select", "dynamodb:returnvalues",
                      "dynamodb:returnconsumedcapacity"}


def condition_holds(condition: dict | None, context: dict[str, Any], effect: str = "Allow") -> tuple[bool, list[str]]:
    """Whether a statement's Condition holds for a request context. Returns (holds, errors).

    Context keys match case-insensitively; context values are a str or a list of str (a list is a
    multivalued key; an empty list is an empty set). Blocks and keys are ANDed; the values listed
    for one key are ORed (NORed for negated operators). Errors (an unsupported operator, a key the
    recording cannot provide, a policy variable) make the result unreliable and are reported."""
    if not condition:
        return True, []
    ctx = {k.lower(): v for k, v in context.items()}
    errors: list[str] = []
    for op, block in condition.items():
        m = re.fullmatch(r"(ForAllValues:|ForAnyValue:)?([A-Za-z]+?)(IfExists)?", op)
        base = m.group(2) if m else None
        if not m or not isinstance(block, dict) or (base != "Null" and base not in _OPS):
            errors.append(f"unsupported condition operator {op}")
            return effect == "Deny", errors  # conservative: an Allow does not apply, a Deny does
        qualifier, if_exists = m.group(1), bool(m.group(3))
        negated = base in _NEGATED
        for key, policy_values in block.items():
            pvals = [_scalar_str(v) for v in (policy_values if isinstance(policy_values, list) else [policy_values])]
            if any("${" in p for p in pvals):
                errors.append(f"policy variables in {op}/{key} are not supported")
            raw = ctx.get(key.lower())
            if raw is None and key.lower() not in KNOWN_CONTEXT_KEYS:
                errors.append(f"condition key {key} is not derived from recordings (evaluated as absent)")
            cvals = [] if raw is None else [_scalar_str(v) for v in (raw if isinstance(raw, list) else [raw])]
            if base == "Null":
                holds = any((p.lower() == "true") == (not cvals) for p in pvals)
            elif not cvals:
                # Absent key or empty set: ForAllValues holds (vacuously), ForAnyValue does not; a
                # plain operator fails, unless it is negated or ...IfExists.
                holds = qualifier == "ForAllValues:" or (not qualifier and (if_exists or negated))
            else:
                fn = _OPS[base]

                def one(c: str) -> bool:
                    try:
                        hit = any(fn(c, p) for p in pvals)
                    except ValueError:
                        errors.append(f"{op}/{key}: cannot compare {c!r} with {pvals!r}")
                        return effect == "Deny"
                    return not hit if negated else hit
                if qualifier == "ForAnyValue:":
                    holds = any(one(c) for c in cvals)
                elif qualifier == "ForAllValues:" or effect == "Allow":
                    # ForAllValues; or a plain operator on several values in an Allow (conservative).
                    holds = all(one(c) for c in cvals)
                else:  # a plain operator on several values in a Deny (conservative)
                    holds = any(one(c) for c in cvals)
            if not holds:
                return False, errors
    return True, errors


def statement_applies(s: Statement, action: str, resource: str, context: dict) -> tuple[list[str], list[str]]:
    """Returns (the Action patterns of s that matched the call, or ["NotAction"]; errors).
    An empty first list means the statement does not apply to the call."""
    if s.actions is not None:
        hits = [p for p in s.actions if action_matches(p, action)]
    else:
        hits = [] if any(action_matches(p, action) for p in s.not_actions or []) else ["NotAction"]
    if not hits or not statement_covers_resource(s, resource):
        return [], []
    holds, errors = condition_holds(s.condition, context, s.effect)
    return (hits if holds else []), errors


def statement_covers_resource(s: Statement, resource: str) -> bool:
    if s.resources is not None:
        return any(resource_matches(p, resource) for p in s.resources)
    if s.not_resources is not None:
        return not any(resource_matches(p, resource) for p in s.not_resources)
    return False


@dataclass
class Decision:
    decision: str  # "Allow" | "ExplicitDeny" | "ImplicitDeny"
    allowed_by: list[tuple[int, list[str]]] = field(default_factory=list)
    denied_by: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def evaluate(statements: list[Statement], action: str, resource: str, context: dict) -> Decision:
    d = Decision("ImplicitDeny")
    for i, s in enumerate(statements):
        hits, errors = statement_applies(s, action, resource, context)
        d.errors += [e for e in errors if e not in d.errors]
        if not hits:
            continue
        if s.effect == "Deny":
            d.denied_by.append(i)
        else:
            d.allowed_by.append((i, hits))
    if d.denied_by:
        d.decision = "ExplicitDeny"
    elif d.allowed_by:
        d.decision = "Allow"
    return d


# ------------------------------------------------------------------------------------------------
# Physical names in a recording -> template logical ids -> ARNs
# ------------------------------------------------------------------------------------------------

_KIND_OF_TYPE = {"AWS::DynamoDB::Table": "table", "AWS::DynamoDB::GlobalTable": "table", "AWS::SQS::Queue": "queue",
                 "AWS::SecretsManager::Secret": "secret"}
_GLOB_CHARS = re.compile(r"[*?\[]")


class Names:
    """Resolves the physical names found in a recording to the template's fake ARNs."""

    def __init__(self, resolver: Resolver, maps: list[tuple[str, str]]):
        self.r = resolver
        self.maps: dict[str, list[tuple[str, str]]] = {"table": [], "queue": [], "secret": []}
        exact: dict[tuple[str, str], str] = {}
        for lid, pattern in maps:
            if lid in resolver.resources:
                kind = _KIND_OF_TYPE.get(resolver.type_of(lid))
                if kind is None:
                    raise InputError(f"--map {lid}={pattern}: {lid} is a {resolver.type_of(lid)}, not a "
                                     "DynamoDB table, SQS queue or Secrets Manager secret")
            elif lid in resolver.params:
                kind = "secret"  # a parameter that holds a secret's ARN
            else:
                raise InputError(f"--map {lid}={pattern}: {lid} is neither a resource nor a parameter of the template")
            if not pattern:
                raise InputError(f"--map {lid}=: empty name")
            if not _GLOB_CHARS.search(pattern):
                other = exact.setdefault((kind, pattern), lid)
                if other != lid:
                    raise InputError(f"--map: {pattern} is mapped to both {other} and {lid}")
            self.maps[kind].append((pattern, lid))
        self.identity: dict[str, dict[str, str]] = {"table": {}, "queue": {}, "secret": {}}
        for lid in resolver.resources:
            kind = _KIND_OF_TYPE.get(resolver.type_of(lid))
            if kind:
                self.identity[kind].setdefault(lid, lid)
                self.identity[kind].setdefault(resolver.physical_name(lid), lid)
        self.known_secret_arns: list[tuple[str, str]] = []  # (arn, parameter or logical id)
        for name, value in resolver.params.items():
            if isinstance(value, str) and value.startswith("arn:") and ":secretsmanager:" in value:
                self.known_secret_arns.append((value, name))
        for lid in resolver.resources:
            if resolver.type_of(lid) == "AWS::SecretsManager::Secret":
                self.known_secret_arns.append((resolver.ref(lid), lid))

    def lookup(self, kind: str, name: str) -> str | None:
        """The logical id a physical name stands for: an exact --map, a glob --map, then identity."""
        for pattern, lid in self.maps[kind]:
            if pattern == name:
                return lid
        for pattern, lid in self.maps[kind]:
            if _GLOB_CHARS.search(pattern) and fnmatch.fnmatchcase(name, pattern):
                return lid
        return self.identity[kind].get(name)

    def table(self, name: str) -> tuple[str, str | None]:
        """(ARN, logical id or None) of a TableName (a name or a table ARN)."""
        if name.startswith("arn:") and ":table/" in name:
            bare = name.split(":table/", 1)[1].split("/", 1)[0]
        else:
            bare = name
        lid = self.lookup("table", bare)
        if lid:
            return self.r.getatt(lid, "Arn"), lid
        return (name if name.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{bare}"), None

    def partition_key(self, lid: str | None, index: str | None = None) -> str:
        """The HASH key attribute of a template table (or of its index); DEFAULT_PK otherwise."""
        props = ((self.r.resources.get(lid) or {}).get("Properties") or {}) if lid else {}
        schema = props.get("KeySchema")
        if index:
            for idx in (props.get("GlobalSecondaryIndexes") or []):
                if isinstance(idx, dict) and idx.get("IndexName") == index:
                    schema = idx.get("KeySchema")
        for k in schema if isinstance(schema, list) else []:
            if isinstance(k, dict) and k.get("KeyType") == "HASH" and isinstance(k.get("AttributeName"), str):
                return k["AttributeName"]
        return DEFAULT_PK

    def queue(self, name: str, account: str | None = None) -> tuple[str, str | None]:
        lid = self.lookup("queue", name)
        if lid:
            return self.r.getatt(lid, "Arn"), lid
        return f"arn:aws:sqs:{REGION}:{account or ACCOUNT}:{name}", None

    def secret(self, secret_id: str) -> tuple[str, str | None]:
        """(ARN, the logical id / parameter it was resolved through, or None)."""
        bare = secret_id
        if secret_id.startswith("arn:") and ":secret:" in secret_id:
            bare = secret_id.split(":secret:", 1)[1]
        for candidate in (secret_id, bare):
            lid = self.lookup("secret", candidate)
            if lid and lid in self.r.params:
                return str(self.r.params[lid]), lid
            if lid:
                return self.r.ref(lid), lid
        if secret_id.startswith("arn:"):
            return secret_id, None
        suffixed = re.compile(re.escape(f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}")
                              + r"-[A-Za-z0-9]{6}")
        for arn, via in self.known_secret_arns:
            if suffixed.fullmatch(arn):
                return arn, via
        for pname, value in self.r.params.items():
            if value == secret_id:
                return secret_id, pname
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}", None

    def any_resource(self, service: str, value: str) -> tuple[str, str | None]:
        """A hand-written call's resource: an ARN, '*', a logical id, a parameter or a physical name."""
        if value == "*" or value.startswith("arn:"):
            return (self.secret(value) if service == "secretsmanager" else (value, None))
        if value in self.r.resources:
            kind = self.r.type_of(value)
            if kind in ("AWS::SecretsManager::Secret", "AWS::SNS::Topic"):
                return self.r.ref(value), value
            return self.r.getatt(value, "Arn"), value
        if service == "dynamodb":
            table, _, index = value.partition("/index/")
            arn, lid = self.table(table)
            return (f"{arn}/index/{index}" if index else arn), lid
        if service == "sqs":
            return self.queue(_queue_name_of_url(value) if "/" in value else value)
        if service == "secretsmanager":
            return self.secret(value)
        if value in self.r.params:
            return str(self.r.params[value]), value
        return value, None


def _queue_name_of_url(url: str) -> str:
    parts = [p for p in urlparse(url).path.split("/") if p]
    return parts[-1] if parts else url


def _queue_account_of_url(url: str) -> str | None:
    parts = [p for p in urlparse(url).path.split("/") if p]
    return parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else None


# ------------------------------------------------------------------------------------------------
# moto recorder entries -> calls
# ------------------------------------------------------------------------------------------------

@dataclass
class Call:
    function: str
    line: int
    action: str
    resource: str                       # an ARN or "*"
    leading_keys: list[str] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    region: str = REGION
    origin: str = ""                    # "REC.jsonl:12"
    via: str | None = None              # the recorded operation when it differs from the action
    name: str | None = None             # the physical name as recorded (table, queue, secret id)
    mapped_to: str | None = None        # the logical id / parameter the name was mapped to
    notes: list[str] = field(default_factory=list)

    def request_context(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {"aws:RequestedRegion": self.region, "aws:SecureTransport": "true",
                               "aws:PrincipalAccount": ACCOUNT}
        if self.leading_keys is not None:
            ctx["dynamodb:LeadingKeys"] = list(self.leading_keys)
        ctx.update(self.context)
        return ctx

    def as_json(self) -> dict:
        d: dict[str, Any] = {"function": self.function, "origin": self.origin, "action": self.action,
                             "resource": self.resource}
        if self.leading_keys is not None:
            d["leading_keys"] = self.leading_keys
        for k in ("via", "name", "mapped_to"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        if self.context:
            d["context"] = self.context
        if self.region != REGION:
            d["region"] = self.region
        if self.notes:
            d["notes"] = self.notes
        return d


_SCOPE_TO_IAM = {"monitoring": "cloudwatch", "email": "ses"}
_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
             "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request")


def _header(headers: dict, name: str) -> str | None:
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == name.lower():
            return v if isinstance(v, str) else str(v)
    return None


def credential_of(entry: dict) -> tuple[str, str, str] | None:
    """(access key id, region, service scope) of a recorded request, from its SigV4 Authorization
    header (or, for a presigned URL, its X-Amz-Credential query parameter)."""
    headers = entry.get("headers") if isinstance(entry.get("headers"), dict) else {}
    m = _CREDENTIAL.search(_header(headers, "Authorization") or "")
    if m:
        return m.group(1), m.group(3), m.group(4)
    q = parse_qs(urlparse(str(entry.get("url", ""))).query)
    cred = (q.get("X-Amz-Credential") or [""])[0]
    parts = cred.split("/")
    if len(parts) == 5 and parts[4] == "aws4_request":
        return parts[0], parts[2], parts[3]
    return None


def _attr_str(av: Any) -> str | None:
    """The string form of a key AttributeValue (S, N or B), as dynamodb:LeadingKeys sees it."""
    if isinstance(av, dict) and len(av) == 1:
        (t, v), = av.items()
        if t in ("S", "N", "B") and isinstance(v, (str, int, float)):
            return str(v)
    return None


_KCE_OPERAND = r"(#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_.]*)"
_KCE_EQ = re.compile(_KCE_OPERAND + r"\s*(?<![<>!])=(?!=)\s*" + _KCE_OPERAND)


def query_leading_keys(body: dict, pk: str) -> list[str] | None:
    """The partition key value a Query binds: `<pk> = :v` in KeyConditionExpression (either side, the
    name possibly aliased through ExpressionAttributeNames), or KeyConditions.<pk> with EQ."""
    if isinstance(body.get("KeyConditions"), dict):
        cond = body["KeyConditions"].get(pk) or {}
        if str(cond.get("ComparisonOperator", "EQ")).upper() != "EQ":
            return None
        vals = [_attr_str(v) for v in cond.get("AttributeValueList") or []]
        return [v for v in vals if v is not None] or None
    expr = body.get("KeyConditionExpression")
    if not isinstance(expr, str):
        return None
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    aliases = {alias for alias, real in names.items() if real == pk}
    for a, b in _KCE_EQ.findall(expr):
        name, val = (a, b) if b.startswith(":") else (b, a)
        if not val.startswith(":") or name.startswith(":"):
            continue
        if name in aliases or (not name.startswith("#") and name == pk):
            v = _attr_str(values.get(val))
            return [v] if v is not None else None
    return None


def _decode_body(entry: dict) -> bytes:
    raw = entry.get("body") or ""
    if isinstance(raw, (dict, list)):
        return json.dumps(raw).encode()
    if entry.get("body_encoded"):
        return base64.b64decode(raw, validate=True)
    return str(raw).encode()


@dataclass
class Derived:
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def derive_calls(entry: dict, function: str, region: str, scope: str, origin: str, names: Names) -> Derived:
    """The IAM-level calls of one moto recorder entry already attributed to `function`."""
    out = Derived()
    headers = entry.get("headers") if isinstance(entry.get("headers"), dict) else {}
    where = f"{origin} ({entry.get('method')} {entry.get('url')})"
    try:
        body_bytes = _decode_body(entry)
    except (binascii.Error, ValueError):
        out.problems.append(f"{where}: body is not valid base64: the call cannot be checked")
        return out
    target = _header(headers, "X-Amz-Target")
    url = str(entry.get("url", ""))
    if target:
        operation = target.rsplit(".", 1)[-1]
        try:
            body = json.loads(body_bytes or b"{}")
        except ValueError:
            out.problems.append(f"{where}: {target}: body is not JSON (empty, truncated or chunked?): "
                                "the call cannot be checked")
            return out
        if not isinstance(body, dict):
            body = {}
    else:
        body = {k: v[0] for k, v in parse_qs(body_bytes.decode(errors="replace")).items()}
        body.update({k: v[0] for k, v in parse_qs(urlparse(url).query).items()})
        operation = body.get("Action")
        if not operation:
            out.problems.append(f"{where}: {scope} request with neither X-Amz-Target nor Action (a REST API?): "
                                "its operation is unknown, so it cannot be checked")
            return out
    service = _SCOPE_TO_IAM.get(scope, scope)

    def add(action: str, resource: str, leading: list[str] | None = None, *, via: str | None = None,
            name: str | None = None, mapped: str | None = None, context: dict | None = None) -> Call:
        c = Call(function=function, line=int(origin.rsplit(":", 1)[-1]), action=action, resource=resource,
                 leading_keys=leading, region=region, origin=origin, via=via, name=name, mapped_to=mapped,
                 context=context or {})
        if name is not None and mapped is None and resource != "*":
            c.notes.append(f"{name!r} is not mapped to a template resource (use --map LogicalId={name})")
        out.calls.append(c)
        return c

    if service == "dynamodb":
        ctx = {f"dynamodb:{k}": body[k] for k in ("Select", "ReturnValues", "ReturnConsumedCapacity")
               if isinstance(body.get(k), str)}

        def table_of(spec: dict) -> tuple[str, str | None, str]:
            tname = str(spec.get("TableName") or "?")
            arn, lid = names.table(tname)
            return arn, lid, tname

        def key_value(lid: str | None, item: Any, what: str, tname: str) -> list[str] | None:
            pk = names.partition_key(lid)
            v = _attr_str((item or {}).get(pk)) if isinstance(item, dict) else None
            if v is None:
                out.problems.append(f"{where}: dynamodb:{operation} on {tname}: partition key {pk!r} not found "
                                    f"in {what}: dynamodb:LeadingKeys is unknown, the call cannot be checked")
            return [v] if v is not None else None

        if operation in ("GetItem", "DeleteItem", "UpdateItem", "PutItem"):
            arn, lid, tname = table_of(body)
            what = "Item" if operation == "PutItem" else "Key"
            leading = key_value(lid, body.get(what), what, tname)
            if leading is not None:
                add(f"dynamodb:{operation}", arn, leading, name=tname, mapped=lid, context=ctx)
        elif operation in ("Query", "Scan"):
            arn, lid, tname = table_of(body)
            index = body.get("IndexName")
            res = f"{arn}/index/{index}" if index else arn
            if operation == "Scan":
                add("dynamodb:Scan", res, None, name=tname, mapped=lid, context=ctx)
            else:
                pk = names.partition_key(lid, index)
                leading = query_leading_keys(body, pk)
                if leading is None:
                    out.problems.append(f"{where}: dynamodb:Query on {tname}: no equality on the partition key "
                                        f"{pk!r} in the key condition: dynamodb:LeadingKeys is unknown, the call "
                                        "cannot be checked")
                else:
                    add("dynamodb:Query", res, leading, name=tname, mapped=lid, context=ctx)
        elif operation in ("BatchGetItem", "BatchWriteItem"):
            for tname, req in (body.get("RequestItems") or {}).items():
                arn, lid = names.table(str(tname))
                pk = names.partition_key(lid)
                if operation == "BatchGetItem":
                    items = (req or {}).get("Keys") or []
                else:
                    items = [(w.get("PutRequest") or {}).get("Item") or (w.get("DeleteRequest") or {}).get("Key")
                             for w in req or [] if isinstance(w, dict)]
                keys = [_attr_str((i or {}).get(pk)) if isinstance(i, dict) else None for i in items]
                if any(k is None for k in keys):
                    out.problems.append(f"{where}: dynamodb:{operation} on {tname}: an item without partition key "
                                        f"{pk!r}: the call cannot be checked")
                    continue
                add(f"dynamodb:{operation}", arn, sorted(set(keys)), name=str(tname), mapped=lid, context=ctx)
        elif operation in ("TransactWriteItems", "TransactGetItems"):
            for item in body.get("TransactItems") or []:
                for kind, spec in (item or {}).items():
                    if not isinstance(spec, dict):
                        continue
                    arn, lid, tname = table_of(spec)
                    what = "Item" if kind == "Put" else "Key"
                    leading = key_value(lid, spec.get(what), f"{kind}.{what}", tname)
                    if leading is not None:
                        add(f"dynamodb:{_TRANSACT.get(kind, kind)}", arn, leading, via=f"dynamodb:{operation}",
                            name=tname, mapped=lid, context=ctx)
        elif operation in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
            out.problems.append(f"{where}: PartiQL dynamodb:{operation} is not supported by iam_check "
                                "(IAM authorizes it as dynamodb:PartiQL* per table)")
        else:
            tname = body.get("TableName") or body.get("TableArn") or body.get("ResourceArn")
            if isinstance(tname, str) and tname:
                arn, lid = names.table(tname)
                add(f"dynamodb:{operation}", arn, None, name=tname, mapped=lid, context=ctx)
            else:
                add(f"dynamodb:{operation}", "*")
    elif service == "sqs":
        action = f"sqs:{_SQS_BATCH.get(operation, operation)}"
        via = f"sqs:{operation}" if operation in _SQS_BATCH else None
        if operation in ("GetQueueUrl", "CreateQueue"):
            qname = str(body.get("QueueName") or "?")
            arn, lid = names.queue(qname, body.get("QueueOwnerAWSAccountId"))
            add(action, arn, name=qname, mapped=lid)
        elif operation == "ListQueues":
            add(action, "*")
        else:
            qurl = body.get("QueueUrl")
            if not qurl and urlparse(url).path.strip("/"):
                qurl = url  # the query protocol may post to the queue URL itself
            if not qurl:
                out.problems.append(f"{where}: sqs:{operation} without QueueUrl: the call cannot be checked")
            else:
                qname = _queue_name_of_url(str(qurl))
                arn, lid = names.queue(qname, _queue_account_of_url(str(qurl)))
                add(action, arn, via=via, name=qname, mapped=lid)
    elif service == "secretsmanager":
        sid = body.get("SecretId") or (body.get("Name") if operation == "CreateSecret" else None)
        if isinstance(sid, str) and sid:
            arn, via = names.secret(sid)
            add(f"secretsmanager:{operation}", arn, name=sid, mapped=via)
        else:
            add(f"secretsmanager:{operation}", "*")
    else:
        add(f"{service}:{operation}", "*")
    return out


# ------------------------------------------------------------------------------------------------
# Reading a recording
# ------------------------------------------------------------------------------------------------

@dataclass
class Recording:
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)      # lines/entries of checked functions
    lines: int = 0
    entries: Counter = field(default_factory=Counter)      # checked function -> recorder entries
    other_keys: Counter = field(default_factory=Counter)   # access key id -> entries (ignored)
    unsigned: int = 0                                      # entries without SigV4 credentials (ignored)
    unreadable_ignored: int = 0                            # invalid lines naming no checked function
    other_ignored: int = 0                                 # valid JSON that is no recorder entry
    regions: Counter = field(default_factory=Counter)


def read_recording(path: str, checked: list[str], names: Names, rec: Recording | None = None) -> Recording:
    rec = rec or Recording()
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(errors="replace")
    except OSError as e:
        raise InputError(f"cannot read recording {path}: {e.strerror}") from e
    checked_set = set(checked)
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        rec.lines += 1
        origin = f"{path}:{n}"
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            named = [f for f in checked if f in s]
            if named:
                rec.problems.append(f"{origin}: not a valid JSON object and it names {', '.join(named)} "
                                    "(a corrupted recorder entry?): its calls are lost, the check is incomplete")
            else:
                rec.unreadable_ignored += 1
            continue
        if "headers" in obj and "method" in obj:
            cred = credential_of(obj)
            if cred is None:
                rec.unsigned += 1
                continue
            key, region, scope = cred
            if key not in checked_set:
                rec.other_keys[key] += 1
                continue
            rec.entries[key] += 1
            rec.regions[region] += 1
            d = derive_calls(obj, key, region, scope, origin, names)
            rec.calls += d.calls
            rec.problems += d.problems
        elif isinstance(obj.get("function"), str) and "action" in obj:
            fn = obj["function"]
            if fn not in checked_set:
                rec.other_keys[fn] += 1
                continue
            rec.entries[fn] += 1
            action = str(obj["action"])
            if ":" not in action:
                raise InputError(f"{origin}: action {action!r} is not service:Operation")
            arn, lid = names.any_resource(action.split(":", 1)[0].lower(), str(obj.get("resource", "*")))
            lk = obj.get("leading_keys")
            rec.calls.append(Call(function=fn, line=n, action=action, resource=arn,
                                  leading_keys=[str(k) for k in lk] if isinstance(lk, list) else None,
                                  context=dict(obj.get("context") or {}), origin=origin,
                                  name=str(obj.get("resource")), mapped_to=lid))
        else:
            named = [f for f in checked if f in s]
            if named:
                rec.problems.append(f"{origin}: a JSON object that is neither a moto recorder entry nor a call "
                                    f"line, and it names {', '.join(named)}: not checked")
            else:
                rec.other_ignored += 1
    return rec


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------

def _is_runtime_action(pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(pattern.lower(), g) for g in RUNTIME_ACTION_GLOBS)


MAX_KEYS_LISTED = 200  # distinct LeadingKeys values kept per call group in the report


def _key_prefix(key: str) -> str:
    return key.split("#", 1)[0] + "#*" if "#" in key else key


def _key_summary(group: dict, limit: int) -> str:
    """The distinct LeadingKeys of a call group: the values, or their prefixes with counts."""
    keys, distinct = group["leading_keys"], group["distinct_leading_keys"]
    if distinct <= limit:
        return ", ".join(keys)
    return ", ".join(f"{p} ({c})" for p, c in group["leading_key_prefixes"].items()) + f"; {distinct} distinct"


def _proven_elsewhere(proven: dict[tuple[str, str], str], function: str, pattern: str, s: Statement) -> str | None:
    """Why `function`'s grant of `pattern` need not be in the recording (PROVEN_ELSEWHERE), or None.
    Never for a statement on Resource "*" or with NotResource."""
    if s.resources is None or any(r == "*" for r in s.resources):
        return None
    for (fn, action), why in proven.items():
        if fn == function and action.lower() == pattern.lower():
            return why
    return None


def run_check(policies: dict[str, FunctionPolicy], checked: list[str], rec: Recording,
              allow_unused: list[str] | None = None, check_unused: bool = True,
              proven_elsewhere: dict[tuple[str, str], str] | None = None) -> dict:
    """Evaluates every call and the unused grants; returns the report (JSON-serialisable).
    proven_elsewhere: (function, action) -> reason, grants exempt from the unused check
    (default PROVEN_ELSEWHERE)."""
    allow_unused = allow_unused or []
    proven = PROVEN_ELSEWHERE if proven_elsewhere is None else proven_elsewhere
    report: dict[str, Any] = {"functions": {}, "problems": list(rec.problems)}
    by_fn: dict[str, list[Call]] = {f: [] for f in checked}
    for c in rec.calls:
        by_fn.setdefault(c.function, []).append(c)
    totals = Counter()
    for fname in checked:
        info = policies[fname]
        calls = by_fn.get(fname, [])
        fres: dict[str, Any] = {"role": info.role, "managed_policies": info.managed,
                                "recorded_entries": rec.entries.get(fname, 0), "calls": 0,
                                "allowed": [], "denied": [], "unused": [], "not_required": [],
                                "problems": list(info.problems), "notes": list(info.notes)}
        report["functions"][fname] = fres
        groups: dict[tuple, dict] = {}
        cache: dict[tuple, Decision] = {}
        for c in calls:
            ctx = c.request_context()
            sig = (c.action, c.resource, json.dumps(ctx, sort_keys=True))
            d = cache.get(sig)
            if d is None:
                d = cache[sig] = evaluate(info.statements, c.action, c.resource, ctx)
            allowed_by = tuple(sorted({info.statements[i].label for i, _ in d.allowed_by}))
            denied_by = tuple(sorted({info.statements[i].label for i in d.denied_by}))
            gkey = (c.action, c.resource, c.via, d.decision, allowed_by, denied_by)
            g = groups.get(gkey)
            if g is None:
                g = groups[gkey] = {"action": c.action, "resource": c.resource, "decision": d.decision,
                                    "count": 0, "leading_keys": set(), "origins": [], "via": set(),
                                    "allowed_by": list(allowed_by), "denied_by": list(denied_by),
                                    "errors": set(), "notes": set(), "names": set()}
            g["count"] += 1
            if c.leading_keys is not None:
                g["leading_keys"].update(c.leading_keys)
            if len(g["origins"]) < 5:
                g["origins"].append(c.origin)
            if c.via:
                g["via"].add(c.via)
            if c.name:
                g["names"].add(c.name)
            g["errors"].update(d.errors)
            g["notes"].update(c.notes)
        fres["calls"] = len(calls)
        for g in sorted(groups.values(), key=lambda g: (g["action"], g["resource"])):
            for k in ("leading_keys", "via", "errors", "notes", "names"):
                g[k] = sorted(g[k])
            g["distinct_leading_keys"] = len(g["leading_keys"])
            g["leading_key_prefixes"] = dict(sorted(Counter(_key_prefix(k) for k in g["leading_keys"]).items()))
            g["leading_keys_truncated"] = len(g["leading_keys"]) > MAX_KEYS_LISTED
            g["leading_keys"] = g["leading_keys"][:MAX_KEYS_LISTED]
            (fres["allowed"] if g["decision"] == "Allow" else fres["denied"]).append(g)
            for e in g["errors"]:
                fres["problems"].append(f"{g['action']} on {g['resource']}: {e}")
        if not calls:
            fres["notes"].append("no recorded calls for this function")
        if check_unused:
            implied = {a.lower(): why for a, why in info.implied}
            for s in info.statements:
                if s.effect != "Allow" or s.runtime:
                    continue
                resources = s.resources if s.resources is not None else [f"NotResource {r}" for r in s.not_resources or []]
                if s.actions is None:
                    fres["problems"].append(f"{s.label}: a NotAction Allow ({', '.join(s.not_actions or [])}) "
                                            "cannot be checked for use")
                    continue
                for pattern in s.actions:
                    if any(action_matches(pattern, c.action) and statement_covers_resource(s, c.resource)
                           for c in calls):
                        continue
                    if _is_runtime_action(pattern):
                        fres["not_required"].append(f"{pattern} (used by the Lambda runtime)")
                    elif pattern.lower() in implied:
                        fres["not_required"].append(f"{pattern} (used by Lambda: {implied[pattern.lower()]})")
                    elif any(action_matches(g, pattern) or g.lower() == pattern.lower() for g in allow_unused):
                        fres["not_required"].append(f"{pattern} (--allow-unused)")
                    elif why := _proven_elsewhere(proven, fname, pattern, s):
                        fres["not_required"].append(f"{pattern} (not in a recording: {why})")
                    else:
                        fres["unused"].append({"action": pattern, "resources": resources, "statement": s.label})
        totals["denied"] += sum(g["count"] for g in fres["denied"])
        totals["denied_groups"] += len(fres["denied"])
        totals["unused"] += len(fres["unused"])
        totals["problems"] += len(fres["problems"])
    totals["problems"] += len(report["problems"])
    report["summary"] = {"calls": len([c for c in rec.calls if c.function in by_fn]),
                         "denied_calls": totals["denied"], "denied_groups": totals["denied_groups"],
                         "unused_grants": totals["unused"], "other_problems": totals["problems"],
                         "ok": not (totals["denied"] or totals["unused"] or totals["problems"])}
    report["recording"] = {"lines": rec.lines, "entries_of_checked_functions": dict(rec.entries),
                           "ignored_other_keys": dict(rec.other_keys), "ignored_unsigned": rec.unsigned,
                           "ignored_unreadable_lines": rec.unreadable_ignored,
                           "ignored_other_json": rec.other_ignored, "regions": dict(rec.regions)}
    return report


def render_report(report: dict, header: list[str]) -> str:
    out = list(header)
    r = report["recording"]
    ignored = []
    if r["ignored_other_keys"]:
        ignored.append(f"{sum(r['ignored_other_keys'].values())} entries signed with other keys ("
                       + ", ".join(f"{k}: {v}" for k, v in sorted(r["ignored_other_keys"].items())) + ")")
    if r["ignored_unsigned"]:
        ignored.append(f"{r['ignored_unsigned']} unsigned entries")
    if r["ignored_unreadable_lines"]:
        ignored.append(f"{r['ignored_unreadable_lines']} unreadable lines naming no checked function")
    if r["ignored_other_json"]:
        ignored.append(f"{r['ignored_other_json']} other JSON lines")
    out.append(f"  recording: {r['lines']} lines, {report['summary']['calls']} calls by the checked functions"
               + (f"; ignored: {'; '.join(ignored)}" if ignored else ""))
    for fname, f in report["functions"].items():
        out.append("")
        managed = ", ".join(m.split("/")[-1] for m in f["managed_policies"]) or "none"
        out.append(f"{fname}  (role {f['role']}; managed: {managed}; {f['calls']} calls)")
        for n in f["notes"]:
            out.append(f"  note: {n}")
        for g in f["allowed"]:
            keys = f"  keys: {_key_summary(g, 6)}" if g["leading_keys"] else ""
            via = f"  via {', '.join(g['via'])}" if g["via"] else ""
            out.append(f"  allowed  {g['action']} on {g['resource']}  x{g['count']}{keys}{via}"
                       f"  <- {'; '.join(g['allowed_by'])}")
        for g in f["denied"]:
            why = ("explicit deny by " + "; ".join(g["denied_by"])) if g["decision"] == "ExplicitDeny" \
                else "implicit deny: no statement allows it"
            keys = f" keys: {_key_summary(g, 12)};" if g["leading_keys"] else ""
            via = f" via {', '.join(g['via'])};" if g["via"] else ""
            out.append(f"  DENIED: {fname} {g['action']} on {g['resource']} ({why};{keys}{via} x{g['count']}, "
                       f"at {', '.join(g['origins'])})")
            for note in g["notes"]:
                out.append(f"      hint: {note}")
        for u in f["unused"]:
            out.append(f"  GRANTED BUT NEVER USED: {fname} {u['action']} on {', '.join(u['resources'])}"
                       f"  ({u['statement']})")
        for p in f["problems"]:
            out.append(f"  PROBLEM: {p}")
        if f["not_required"]:
            out.append(f"  (granted, not required to be used: {'; '.join(sorted(set(f['not_required'])))})")
    if report["problems"]:
        out.append("")
        for p in report["problems"]:
            out.append(f"PROBLEM: {p}")
    s = report["summary"]
    out.append("")
    out.append(f"{'OK' if s['ok'] else 'FAIL'}: {s['denied_calls']} denied call(s) in {s['denied_groups']} group(s), "
               f"{s['unused_grants']} grant(s) never used, {s['other_problems']} other problem(s)")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------

def _kv(items: list[str] | None, what: str) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0]:
            raise InputError(f"{what} {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        out.append((k, v))
    return out


@dataclass
class Loaded:
    sam: dict
    cfn: dict
    params: dict[str, Any]
    given: dict[str, str]
    resolver: Resolver
    policies: dict[str, FunctionPolicy]
    checked: list[str]
    notes: list[str]


def load(template: str, param_items: list[str] | None, functions: str | None) -> Loaded:
    sam = load_template(template)
    given = dict(_kv(param_items, "--param"))
    params, notes = effective_parameters(sam, given)
    cfn = expand(sam, params)
    resolver = Resolver(cfn, params)
    policies = function_policies(sam, cfn, resolver)
    if not policies:
        raise InputError(f"{template}: no AWS::Serverless::Function resources")
    if functions:
        checked = [f.strip() for f in functions.split(",") if f.strip()]
        unknown = [f for f in checked if f not in policies]
        if unknown or not checked:
            raise InputError(f"--functions: {', '.join(unknown) or '(empty)'} not a function of the template "
                             f"(have: {', '.join(policies)})")
    else:
        checked = list(policies)
    return Loaded(sam, cfn, params, given, resolver, policies, checked, notes)


def _add_common(p: argparse.ArgumentParser, recording: bool, maps: bool, functions: bool) -> None:
    p.add_argument("--template", "-t", default="template.yaml", help="SAM template (default: template.yaml)")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="template parameter (repeatable); unset parameters take their Default")
    if recording:
        p.add_argument("--recording", "-r", action="append", required=True, metavar="FILE",
                       help="moto recorder download, JSON lines (repeatable; '-' = stdin)")
    if maps:
        p.add_argument("--map", action="append", metavar="LogicalId=NAME",
                       help="the recording's table/queue/secret NAME (glob allowed) is the template's LogicalId")
    if functions:
        p.add_argument("--functions", metavar="A,B", help="check only these functions (default: all)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="iam_check.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check a recording against the template")
    _add_common(c, recording=True, maps=True, functions=True)
    c.add_argument("--allow-unused", action="append", default=[], metavar="ACTION_GLOB",
                   help="a granted action that need not appear in the recording (repeatable)")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    k = sub.add_parser("calls", help="print the calls derived from a recording (JSON lines)")
    _add_common(k, recording=True, maps=True, functions=True)
    p = sub.add_parser("policies", help="print each function's effective statements (JSON)")
    _add_common(p, recording=False, maps=False, functions=True)
    x = sub.add_parser("expand", help="print the template expanded by the SAM translator (JSON)")
    _add_common(x, recording=False, maps=False, functions=False)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on bad usage, 0 on --help
        return int(e.code or 0)
    try:
        loaded = load(args.template, args.param, getattr(args, "functions", None))
        for n in loaded.notes:
            print(f"iam_check: note: {n}", file=sys.stderr)
        if args.cmd == "expand":
            json.dump(loaded.cfn, sys.stdout, indent=2)
            print()
            return 0
        if args.cmd == "policies":
            out = {name: {"role": info.role, "managed_policies": info.managed, "problems": info.problems,
                          "notes": info.notes, "used_by_lambda": [f"{a} ({w})" for a, w in info.implied],
                          "Statement": [s.as_json() for s in info.statements]}
                   for name, info in loaded.policies.items() if name in loaded.checked}
            json.dump({"conditions": loaded.resolver.conditions(), "functions": out}, sys.stdout, indent=2)
            print()
            return 0
        names = Names(loaded.resolver, _kv(args.map, "--map"))
        rec = Recording()
        for path in args.recording:
            read_recording(path, loaded.checked, names, rec)
        if args.cmd == "calls":
            for call in rec.calls:
                print(json.dumps(call.as_json()))
            for prob in rec.problems:
                print(f"iam_check: problem: {prob}", file=sys.stderr)
            return 1 if rec.problems else 0
        report = run_check(loaded.policies, loaded.checked, rec, args.allow_unused)
        conds = loaded.resolver.conditions()
        report["template"] = args.template
        report["parameters"] = loaded.given
        report["conditions"] = conds
        if args.json:
            json.dump(report, sys.stdout, indent=2)
            print()
        else:
            header = [f"iam_check: {args.template}; recording {', '.join(args.recording)}",
                      "  parameters: " + (", ".join(f"{k}={v}" for k, v in loaded.given.items()) or "(defaults)"),
                      "  conditions: " + (", ".join(f"{k}={str(v).lower()}" for k, v in conds.items()) or "(none)"),
                      "  functions: " + ", ".join(loaded.checked)]
            print(render_report(report, header))
        return 0 if report["summary"]["ok"] else 1
    except InputError as err:
        print(f"iam_check: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
