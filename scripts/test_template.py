"""Tests of template.yaml as the SAM translator expands it, for the deployments it describes.

Run from the repository root with a Python that has aws-sam-translator and PyYAML (no network):
    python3 -m unittest -q scripts/test_template.py
Each case expands the template through the real translator (scripts/iam_check.py's offline
expansion: region us-east-1, account 123456789012, stack name iam-check), evaluates its
conditions with the given parameters the way iam_check does, and checks the resources that
result: the canary deployments (aliases, CodeDeploy groups, alarms, the pre-traffic hook and its
grants), the state table (one Region, global table owner, replica), the custom domain with its
health check and record, the WAF (web ACL, IP set, CloudFront, the IP refresh and its grants), and
the template's Rules; and that every function binary it deploys is built from a crate that turns
on `shared`'s mimalloc feature. cfn-lint and `sam validate --lint` run in CI (.ci/run).
"""
from __future__ import annotations

import functools
import json
import re
import sys
import unittest
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import iam_check as ic  # noqa: E402

TEMPLATE = HERE.parent / "template.yaml"
ACCOUNT = ic.ACCOUNT
CALLBACK_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:wechat/callback-AbCdEf"
APP_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:wechat/appsecret-AbCdEf"
CERT = f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/0b0e4b5c-0000-0000-0000-000000000000"
WEB_ACL = f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/wechat-ha/0a1b2c3d-0000-0000-0000-000000000000"

CALLBACK_ONLY = {"WechatCallbackSecretArn": CALLBACK_SECRET}
FULL = {**CALLBACK_ONLY, "WechatAppSecretArn": APP_SECRET, "WechatAppId": "wx0123456789abcdef"}
DOMAIN = {"CallbackDomainName": "wechat.example.com", "CertificateArn": CERT, "HostedZoneId": "Z0123456789ABC"}

CASES: dict[str, tuple[dict[str, str], str]] = {
    "defaults": (FULL, "us-east-1"),
    "callback-only": (CALLBACK_ONLY, "us-east-1"),
    "all-at-once": ({**FULL, "DeploymentType": "AllAtOnce"}, "us-east-1"),
    "linear": ({**FULL, "DeploymentType": "Linear10PercentEvery1Minute"}, "us-east-1"),
    "global-owner": ({**FULL, "ReplicaRegions": "eu-west-1,ap-northeast-1", "StateTableName": "wechat-ha-state"},
                     "us-east-1"),
    "global-owner-4": ({**FULL, "ReplicaRegions": "eu-west-1,ap-northeast-1,us-west-2,eu-central-1",
                        "StateTableName": "wechat-ha-state"}, "us-east-1"),
    "replica": ({**FULL, "TableRole": "replica", "StateTableName": "x"}, "us-east-1"),
    "failover": ({**FULL, **DOMAIN, "RoutingPolicy": "failover", "FailoverRole": "SECONDARY"}, "us-east-1"),
    "latency": ({**FULL, **DOMAIN, "RoutingPolicy": "latency"}, "us-east-1"),
    "waf-here": ({**FULL, "EnableWaf": "true"}, "us-east-1"),
    "waf-elsewhere": ({**FULL, "EnableWaf": "true", "WafWebAclArn": WEB_ACL}, "eu-west-1"),
    "with-logins-and-pay": ({**FULL, "OauthRedirectUri": "https://login.example.com/oauth/callback",
                             "PaySecretArn": APP_SECRET, "PayMerchantId": "1900000109"}, "us-east-1"),
    "callback-only-with-logins-and-pay": (
        {**CALLBACK_ONLY, "MiniProgramAppId": "wx1111111111111111", "MiniProgramSecretArn": APP_SECRET,
         "PaySecretArn": APP_SECRET, "PayMerchantId": "1900000109"}, "us-east-1"),
}

HOOKED = {"CallbackFunction", "SendFunction", "JssdkFunction"}
FULL_ALARMS = {"FunctionErrorsAlarm", "Api5xxAlarm", "CallbackLatencyAlarm", "BreakerOpenTooLongAlarm"}
CALLBACK_ONLY_ALARMS = {"CallbackOnlyFunctionErrorsAlarm", "Api5xxAlarm", "CallbackLatencyAlarm"}


class Expanded:
    """One deployment: the SAM template, its expansion, the resolved conditions and policies."""

    def __init__(self, params: dict[str, str], region: str):
        self.sam = ic.load_template(str(TEMPLATE))
        self.params, _ = ic.effective_parameters(self.sam, params)
        self.cfn = ic.expand(self.sam, self.params)
        self.r = ic.Resolver(self.cfn, self.params)
        # iam_check's ARNs stay in us-east-1; only the stack's own Region (conditions, !Sub) moves.
        self.r.pseudo["AWS::Region"] = region
        self.region = region
        self.policies = ic.function_policies(self.sam, self.cfn, self.r)
        self.all = self.cfn["Resources"]
        self.res = {lid: res for lid, res in self.all.items() if self.r.resource_enabled(lid)}

    def props(self, lid: str) -> dict:
        return self.r.resolve(self.res[lid].get("Properties") or {})

    def of_type(self, kind: str) -> dict[str, dict]:
        return {lid: res for lid, res in self.res.items() if res["Type"] == kind}

    def functions(self) -> list[str]:
        return [lid for lid, res in self.sam["Resources"].items()
                if res.get("Type") == "AWS::Serverless::Function" and self.r.resource_enabled(lid)]

    def alias_of(self, fn: str) -> str:
        aliases = [lid for lid, res in self.of_type("AWS::Lambda::Alias").items()
                   if res["Properties"].get("FunctionName") == {"Ref": fn}]
        assert len(aliases) == 1, (fn, aliases)
        return aliases[0]

    def version_of(self, fn: str) -> str:
        versions = [lid for lid, res in self.of_type("AWS::Lambda::Version").items()
                    if res["Properties"].get("FunctionName") == {"Ref": fn}]
        assert len(versions) == 1, (fn, versions)
        return versions[0]

    def env(self, fn: str) -> dict:
        return self.props(fn)["Environment"]["Variables"]

    def decision(self, fn: str, action: str, resource: str, keys: list[str] | None = None) -> str:
        context = {"dynamodb:LeadingKeys": keys} if keys is not None else {}
        return ic.evaluate(self.policies[fn].statements, action, resource, context).decision

    def own_statements(self, fn: str) -> list[ic.Statement]:
        return [s for s in self.policies[fn].statements if not s.runtime]

    def rule_failures(self) -> list[str]:
        """The Rules assertions these parameters break (CloudFormation refuses the stack)."""
        failed = []
        for name, rule in (self.sam.get("Rules") or {}).items():
            if "RuleCondition" in rule and not self.r._cond_expr(rule["RuleCondition"], ()):
                continue
            for a in rule["Assertions"]:
                if not self.r._cond_expr(a["Assert"], ()):
                    failed.append(name)
        return failed


@functools.lru_cache(maxsize=None)
def case(name: str) -> Expanded:
    params, region = CASES[name]
    return Expanded(params, region)


def expanded(params: dict[str, str], region: str = "us-east-1") -> Expanded:
    return Expanded(params, region)


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not found")
class CanaryTest(unittest.TestCase):
    def test_every_function_but_the_hook_deploys_through_codedeploy(self):
        expected_type = {"all-at-once": "AllAtOnce", "linear": "Linear10PercentEvery1Minute"}
        for name in CASES:
            x = case(name)
            for fn in x.functions():
                with self.subTest(case=name, function=fn):
                    alias = x.alias_of(fn)
                    self.assertEqual(x.props(alias)["Name"], "live")
                    group = f"{fn}DeploymentGroup"
                    if fn == "PreTrafficHookFunction":
                        self.assertNotIn(group, x.res)
                        self.assertNotIn("UpdatePolicy", x.res[alias])
                        continue
                    self.assertIn(group, x.res)
                    g = x.props(group)
                    self.assertEqual(g["DeploymentConfigName"],
                                     f"CodeDeployDefault.Lambda{expected_type.get(name, 'Canary10Percent5Minutes')}")
                    self.assertEqual(g["DeploymentStyle"],
                                     {"DeploymentType": "BLUE_GREEN", "DeploymentOption": "WITH_TRAFFIC_CONTROL"})
                    self.assertTrue(g["AutoRollbackConfiguration"]["Enabled"])
                    self.assertIn("DEPLOYMENT_STOP_ON_ALARM", g["AutoRollbackConfiguration"]["Events"])
                    alarms = {a["Name"] for a in g["AlarmConfiguration"]["Alarms"]}
                    expected = set(FULL_ALARMS if x.r.condition("HasAppSecret") else CALLBACK_ONLY_ALARMS)
                    if fn == "AuthFunction":
                        expected.add("AuthFunctionErrorsAlarm")
                    self.assertTrue(g["AlarmConfiguration"]["Enabled"])
                    self.assertEqual(alarms, expected)
                    for alarm in alarms:  # CodeDeploy refuses an alarm that does not exist
                        self.assertIn(alarm, x.res)
                        self.assertEqual(x.res[alarm]["Type"], "AWS::CloudWatch::Alarm")
                    # The group exists exactly when its function does.
                    self.assertEqual(x.all[group].get("Condition"), x.sam["Resources"][fn].get("Condition"))
                    update = x.res[alias]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
                    self.assertEqual(update["DeploymentGroupName"], {"Ref": group})
                    if fn in HOOKED:
                        self.assertEqual(update["BeforeAllowTrafficHook"], {"Ref": "PreTrafficHookFunction"})
                    else:
                        self.assertNotIn("BeforeAllowTrafficHook", update)

    def test_the_functions_of_each_deployment(self):
        self.assertEqual(set(case("defaults").functions()), {
            "CallbackFunction", "PreTrafficHookFunction", "TokenRefreshFunction", "JssdkFunction", "SendFunction",
            "SendWorkerFunction", "HealthFunction", "AdminFunction", "SyncFunction", "FollowersFunction",
            "BreakerTunerFunction"})
        self.assertEqual(set(case("callback-only").functions()),
                         {"CallbackFunction", "PreTrafficHookFunction", "HealthFunction"})
        self.assertEqual(set(case("waf-here").functions()) - set(case("defaults").functions()),
                         {"CallbackIpRefreshFunction"})
        self.assertEqual(set(case("waf-elsewhere").functions()), set(case("defaults").functions()))

    def test_every_event_source_invokes_the_alias(self):
        for name in ("defaults", "callback-only", "waf-here", "with-logins-and-pay"):
            x = case(name)
            aliases = set(x.of_type("AWS::Lambda::Alias"))
            with self.subTest(case=name):
                body = json.dumps(x.res["HttpApi"]["Properties"]["Body"])
                targets = re.findall(r"/functions/\$\{([A-Za-z0-9]+)\}/invocations", body)
                self.assertGreater(len(targets), 5)
                self.assertFalse(set(targets) - set(x.all) - aliases, targets)
                self.assertTrue(all(x.all[t]["Type"] == "AWS::Lambda::Alias" for t in targets), targets)
                for lid, res in x.of_type("AWS::Lambda::Permission").items():
                    self.assertIn(res["Properties"]["FunctionName"]["Ref"], aliases, lid)
                mappings = x.of_type("AWS::Lambda::EventSourceMapping")
                if x.r.condition("HasAppSecret"):
                    self.assertEqual(mappings["SendWorkerFunctionQueue"]["Properties"]["FunctionName"],
                                     {"Ref": "SendWorkerFunctionAliaslive"})
                for lid, res in mappings.items():
                    self.assertIn(res["Properties"]["FunctionName"]["Ref"], aliases, lid)
                rules = x.of_type("AWS::Events::Rule")
                self.assertTrue(rules or not x.r.condition("HasAppSecret"))
                for lid, res in rules.items():
                    for target in res["Properties"]["Targets"]:
                        self.assertIn(target["Arn"]["Ref"], aliases, lid)

    def test_the_hook(self):
        x = case("defaults")
        hook = x.props("PreTrafficHookFunction")
        self.assertEqual(hook["FunctionName"], "CodeDeployHook_iam-check")
        self.assertEqual(hook["Timeout"], 60)
        self.assertEqual(hook["LoggingConfig"]["LogGroup"], "PreTrafficHookLogGroup")
        env = x.env("PreTrafficHookFunction")
        raw = x.res["PreTrafficHookFunction"]["Properties"]["Environment"]["Variables"]
        # The version ARNs (!Ref Fn.Version): the version SAM publishes for this deployment.
        self.assertEqual(raw["HOOK_CALLBACK_VERSION"], {"Ref": x.version_of("CallbackFunction")})
        for var, fn in (("HOOK_SEND_VERSION", "SendFunction"), ("HOOK_JSSDK_VERSION", "JssdkFunction")):
            self.assertEqual(raw[var], {"Fn::If": ["HasAppSecret", {"Ref": x.version_of(fn)}, {"Ref": "AWS::NoValue"}]})
        for var, fn in (("HOOK_CALLBACK_VERSION", "CallbackFunction"), ("HOOK_SEND_VERSION", "SendFunction"),
                        ("HOOK_JSSDK_VERSION", "JssdkFunction")):
            self.assertEqual(env[var], f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{fn}:1")
        self.assertEqual((env["WECHAT_CALLBACK_SECRET_ID"], env["WECHAT_APPID"], env["WECHAT_ENCRYPT_MODE"],
                          env["HOOK_TEST_OPENID"]), (CALLBACK_SECRET, "wx0123456789abcdef", "plain", "wechat-ha-canary"))
        self.assertEqual(env["WECHAT_ENCRYPT_MODE"], x.env("CallbackFunction")["WECHAT_ENCRYPT_MODE"])
        safe = expanded({**FULL, "WechatEncryptMode": "safe", "CanaryTestOpenid": "o-test"})
        self.assertEqual((safe.env("PreTrafficHookFunction")["WECHAT_ENCRYPT_MODE"],
                          safe.env("PreTrafficHookFunction")["HOOK_TEST_OPENID"]), ("safe", "o-test"))
        only = case("callback-only").env("PreTrafficHookFunction")
        self.assertNotIn("HOOK_SEND_VERSION", only)
        self.assertNotIn("HOOK_JSSDK_VERSION", only)

    def test_the_hook_may_invoke_the_new_versions_and_nothing_else(self):
        for name in ("defaults", "callback-only"):
            x = case(name)
            with self.subTest(case=name):
                invoke = [s for s in x.own_statements("PreTrafficHookFunction")
                          if any(ic.action_matches(a, "lambda:InvokeFunction") for a in s.actions or [])]
                self.assertEqual(len(invoke), 1)
                # Written as version refs (!Ref Fn.Version), not the function or its alias.
                raw = x.res["PreTrafficHookFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                cond, full, only = next(s for s in raw if s["Sid"] == "InvokeTheNewVersions")["Resource"]["Fn::If"]
                self.assertEqual(cond, "HasAppSecret")
                for ref in full + only:
                    self.assertEqual(x.all[ref["Ref"]]["Type"], "AWS::Lambda::Version", ref)
                hooked = sorted(HOOKED & set(x.functions()))
                self.assertEqual(sorted(invoke[0].resources),
                                 sorted(f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{fn}:1" for fn in hooked))
                self.assertEqual(invoke[0].actions, ["lambda:InvokeFunction"])
                for fn in hooked:
                    version = x.r.ref(x.version_of(fn))
                    self.assertEqual(x.decision("PreTrafficHookFunction", "lambda:InvokeFunction", version), "Allow")
                    for other in (x.r.getatt(fn, "Arn"), x.r.ref(x.alias_of(fn)), x.r.getatt(fn, "Arn") + ":2"):
                        self.assertEqual(x.decision("PreTrafficHookFunction", "lambda:InvokeFunction", other),
                                         "ImplicitDeny", other)
                    for action in ("lambda:UpdateAlias", "lambda:InvokeAsync", "lambda:GetFunction"):
                        self.assertEqual(x.decision("PreTrafficHookFunction", action, version), "ImplicitDeny")
                for fn in set(x.functions()) - HOOKED:
                    self.assertEqual(x.decision("PreTrafficHookFunction", "lambda:InvokeFunction",
                                                x.r.ref(x.version_of(fn))), "ImplicitDeny", fn)
                group = f"arn:aws:codedeploy:us-east-1:{ACCOUNT}:deploymentgroup:ServerlessDeploymentApplication/"
                self.assertEqual(x.decision("PreTrafficHookFunction", "codedeploy:PutLifecycleEventHookExecutionStatus",
                                            group + "CallbackFunctionDeploymentGroup"), "Allow")
                self.assertEqual(x.decision("PreTrafficHookFunction", "codedeploy:PutLifecycleEventHookExecutionStatus",
                                            f"arn:aws:codedeploy:us-east-1:{ACCOUNT}:deploymentgroup:OtherApp/G"),
                                 "ImplicitDeny")
                self.assertEqual(x.decision("PreTrafficHookFunction", "codedeploy:StopDeployment", group + "G"),
                                 "ImplicitDeny")
                self.assertEqual(x.decision("PreTrafficHookFunction", "secretsmanager:GetSecretValue", CALLBACK_SECRET),
                                 "Allow")
                self.assertEqual(x.decision("PreTrafficHookFunction", "secretsmanager:GetSecretValue", APP_SECRET),
                                 "ImplicitDeny")
                self.assertEqual(x.decision("PreTrafficHookFunction", "dynamodb:GetItem",
                                            f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/StateTable", ["msg#x"]),
                                 "ImplicitDeny")
                # The permission test cannot record the hook's Invoke and CodeDeploy calls: iam_check
                # exempts exactly these two grants of this function.
                report = ic.run_check(x.policies, ["PreTrafficHookFunction"], ic.Recording())
                self.assertEqual([u["action"] for u in report["functions"]["PreTrafficHookFunction"]["unused"]],
                                 ["secretsmanager:GetSecretValue"])


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not found")
class StateTableTest(unittest.TestCase):
    def table_arns(self, x: Expanded) -> set[str]:
        """Every DynamoDB resource any function's own statements name."""
        out = set()
        for fn in x.functions():
            for s in x.own_statements(fn):
                if any(a.lower().startswith("dynamodb:") for a in s.actions or []):
                    out.update(s.resources or [])
        return out

    def test_one_region_keeps_the_plain_table(self):
        for name in ("defaults", "callback-only", "failover", "waf-here"):
            x = case(name)
            with self.subTest(case=name):
                self.assertIn("StateTable", x.res)
                self.assertEqual(x.res["StateTable"]["Type"], "AWS::DynamoDB::Table")
                self.assertNotIn("GlobalStateTable", x.res)
                self.assertEqual(self.table_arns(x), {f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/StateTable"})
                # The permission test's --map StateTable=… still applies: the raw statements say !GetAtt.
                raw = json.dumps(x.res["CallbackFunctionRole"]["Properties"]["Policies"])
                self.assertIn('{"Fn::GetAtt": ["StateTable", "Arn"]}', raw)
                for fn in x.functions():
                    self.assertEqual(x.env(fn)["DYNAMODB_TABLE"], "StateTable", fn)
                    self.assertEqual(x.env(fn)["MULTI_REGION"], "false", fn)
                self.assertEqual(x.r.resolve(x.cfn["Outputs"]["StateTableName"]["Value"]), "StateTable")

    def test_the_owner_creates_the_global_table(self):
        for name, regions in (("global-owner", ["us-east-1", "eu-west-1", "ap-northeast-1"]),
                              ("global-owner-4", ["us-east-1", "eu-west-1", "ap-northeast-1", "us-west-2",
                                                  "eu-central-1"])):
            x = case(name)
            with self.subTest(case=name):
                self.assertNotIn("StateTable", x.res)
                self.assertEqual(x.res["GlobalStateTable"]["Type"], "AWS::DynamoDB::GlobalTable")
                self.assertEqual(x.res["GlobalStateTable"].get("DeletionPolicy"), "Retain")
                g = x.props("GlobalStateTable")
                self.assertEqual([rep["Region"] for rep in g["Replicas"]], regions)
                self.assertTrue(all(rep["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
                                    for rep in g["Replicas"]))
                plain = x.all["StateTable"]["Properties"]
                self.assertEqual(g["TimeToLiveSpecification"], {"AttributeName": "expires_at", "Enabled": True})
                self.assertEqual(g["TimeToLiveSpecification"], plain["TimeToLiveSpecification"])
                self.assertEqual((g["KeySchema"], g["AttributeDefinitions"]),
                                 (plain["KeySchema"], plain["AttributeDefinitions"]))
                self.assertEqual(g["BillingMode"], "PAY_PER_REQUEST")
                self.assertEqual(g["MultiRegionConsistency"], "EVENTUAL")  # MRSC has no TTL
                self.assertNotIn("GlobalTableWitnesses", g)
                self.assertEqual(g["StreamSpecification"], {"StreamViewType": "NEW_AND_OLD_IMAGES"})
                self.assertEqual(g["TableName"], "wechat-ha-state")
                self.assertEqual(self.table_arns(x), {f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/wechat-ha-state"})
                for fn in x.functions():
                    self.assertEqual((x.env(fn)["DYNAMODB_TABLE"], x.env(fn)["MULTI_REGION"]),
                                     ("wechat-ha-state", "true"), fn)
                self.assertEqual(x.r.resolve(x.cfn["Outputs"]["StateTableName"]["Value"]), "wechat-ha-state")

    def test_a_replica_creates_no_table_and_uses_the_owners(self):
        x = case("replica")
        self.assertEqual(x.of_type("AWS::DynamoDB::Table"), {})
        self.assertEqual(x.of_type("AWS::DynamoDB::GlobalTable"), {})
        self.assertEqual(self.table_arns(x), {f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/x"})
        for fn in x.functions():
            self.assertEqual((x.env(fn)["DYNAMODB_TABLE"], x.env(fn)["MULTI_REGION"]), ("x", "true"), fn)
        # In another Region the ARN follows the stack's Region.
        eu = expanded(CASES["replica"][0], "eu-west-1")
        self.assertEqual(self.table_arns(eu), {f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/x"})

    def test_the_partitions_stay_as_they_were(self):
        """Multi-region moves every grant to the other table, nothing else."""
        one, many = case("defaults"), case("global-owner")
        for fn in one.functions():
            with self.subTest(function=fn):
                a = [(s.sid, s.actions, s.condition) for s in one.own_statements(fn)]
                b = [(s.sid, s.actions, s.condition) for s in many.own_statements(fn)]
                self.assertEqual(a, b)


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not found")
class DomainTest(unittest.TestCase):
    KINDS = ("AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping", "AWS::Route53::HealthCheck",
             "AWS::Route53::RecordSet")

    def test_no_domain_by_default(self):
        for kind in self.KINDS:
            self.assertEqual(case("defaults").of_type(kind), {}, kind)
        x = case("defaults")
        for output in ("CallbackDomainUrl", "CallbackRegionalDomainName", "CallbackHealthCheckId"):
            self.assertEqual(x.cfn["Outputs"][output]["Condition"], "HasCustomDomain")
        self.assertFalse(x.r.condition("HasCustomDomain"))

    def test_domain_health_check_and_record(self):
        for name in ("failover", "latency"):
            x = case(name)
            with self.subTest(case=name):
                for kind in self.KINDS:
                    self.assertEqual(len(x.of_type(kind)), 1, kind)
                domain = x.props("CallbackDomain")
                self.assertEqual(domain["DomainName"], "wechat.example.com")
                self.assertEqual(domain["DomainNameConfigurations"][0]["EndpointType"], "REGIONAL")
                self.assertEqual(domain["DomainNameConfigurations"][0]["CertificateArn"], CERT)
                mapping = x.res["CallbackApiMapping"]["Properties"]
                self.assertEqual(mapping["ApiId"], {"Ref": "HttpApi"})
                self.assertEqual(mapping["Stage"], {"Ref": "HttpApiApiGatewayDefaultStage"})
                self.assertEqual(x.res["HttpApiApiGatewayDefaultStage"]["Properties"]["StageName"], "$default")
                check = x.props("CallbackHealthCheck")["HealthCheckConfig"]
                self.assertEqual(check, {"Type": "HTTPS", "FullyQualifiedDomainName":
                                         "HttpApi.execute-api.us-east-1.amazonaws.com", "Port": 443,
                                         "ResourcePath": "/health/ready", "EnableSNI": True, "RequestInterval": 10,
                                         "FailureThreshold": 3})
                self.assertEqual(x.res["CallbackHealthCheck"]["Properties"]["HealthCheckConfig"]
                                 ["FullyQualifiedDomainName"],
                                 {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"})
                # The readiness route is public (no IAM authorizer): Route 53 cannot sign.
                ready = x.res["HttpApi"]["Properties"]["Body"]["paths"]["/health/ready"]["get"]
                self.assertNotIn("security", ready)
                record = x.props("CallbackRecord")
                raw = x.res["CallbackRecord"]["Properties"]
                self.assertEqual((record["Name"], record["Type"], record["HostedZoneId"], record["SetIdentifier"]),
                                 ("wechat.example.com", "A", "Z0123456789ABC", "us-east-1"))
                self.assertEqual(raw["HealthCheckId"], {"Ref": "CallbackHealthCheck"})
                self.assertEqual(raw["AliasTarget"], {
                    "DNSName": {"Fn::GetAtt": ["CallbackDomain", "RegionalDomainName"]},
                    "HostedZoneId": {"Fn::GetAtt": ["CallbackDomain", "RegionalHostedZoneId"]},
                    "EvaluateTargetHealth": True})
                if name == "failover":
                    self.assertEqual(record.get("Failover"), "SECONDARY")
                    self.assertNotIn("Region", record)
                else:
                    self.assertEqual(record.get("Region"), "us-east-1")
                    self.assertNotIn("Failover", record)
                self.assertEqual(x.r.resolve(x.cfn["Outputs"]["CallbackDomainUrl"]["Value"]),
                                 "https://wechat.example.com/wechat")
        eu = expanded(CASES["latency"][0], "eu-west-1")
        self.assertEqual((eu.props("CallbackRecord")["Region"], eu.props("CallbackRecord")["SetIdentifier"]),
                         ("eu-west-1", "eu-west-1"))


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not found")
class WafTest(unittest.TestCase):
    WAF_KINDS = ("AWS::CloudFront::Distribution", "AWS::WAFv2::WebACL", "AWS::WAFv2::IPSet")

    def test_no_waf_by_default(self):
        for kind in self.WAF_KINDS:
            self.assertEqual(case("defaults").of_type(kind), {}, kind)

    def test_the_web_acl_in_us_east_1(self):
        x = case("waf-here")
        acl = x.props("WebAcl")
        self.assertEqual((acl["Scope"], acl["DefaultAction"]), ("CLOUDFRONT", {"Allow": {}}))
        self.assertTrue(acl["VisibilityConfig"]["CloudWatchMetricsEnabled"])
        rules = {r["Name"]: r for r in acl["Rules"]}
        self.assertEqual(set(rules), {"InternalRateLimit", "CallbackFromWeChatOnly"})
        for rule in rules.values():
            self.assertEqual(rule["Action"], {"Block": {}})
            self.assertEqual(rule["VisibilityConfig"]["MetricName"], rule["Name"])
        rate = rules["InternalRateLimit"]["Statement"]["RateBasedStatement"]
        self.assertEqual((rate["Limit"], rate["EvaluationWindowSec"], rate["AggregateKeyType"]), (6000, 60, "IP"))
        paths = [(s["ByteMatchStatement"]["SearchString"], s["ByteMatchStatement"]["PositionalConstraint"],
                  s["ByteMatchStatement"]["FieldToMatch"])
                 for s in rate["ScopeDownStatement"]["OrStatement"]["Statements"]]
        self.assertEqual(paths, [("/messages/", "STARTS_WITH", {"UriPath": {}}), ("/admin/", "STARTS_WITH", {"UriPath": {}}),
                                 ("/followers", "STARTS_WITH", {"UriPath": {}})])
        both = rules["CallbackFromWeChatOnly"]["Statement"]["AndStatement"]["Statements"]
        self.assertEqual((both[0]["ByteMatchStatement"]["SearchString"],
                          both[0]["ByteMatchStatement"]["PositionalConstraint"]), ("/wechat", "STARTS_WITH"))
        raw_rule = next(r for r in x.res["WebAcl"]["Properties"]["Rules"] if r["Name"] == "CallbackFromWeChatOnly")
        self.assertEqual(raw_rule["Statement"]["AndStatement"]["Statements"][1],
                         {"NotStatement": {"Statement": {"IPSetReferenceStatement": {
                             "Arn": {"Fn::GetAtt": ["WeChatCallbackIps", "Arn"]}}}}})
        ips = x.props("WeChatCallbackIps")
        self.assertEqual((ips["Scope"], ips["IPAddressVersion"], ips["Addresses"]), ("CLOUDFRONT", "IPV4", []))
        dist = x.props("ApiDistribution")["DistributionConfig"]
        self.assertEqual(x.res["ApiDistribution"]["Properties"]["DistributionConfig"]["WebACLId"]["Fn::If"][1],
                         {"Fn::GetAtt": ["WebAcl", "Arn"]})
        self.assertEqual(dist["WebACLId"], x.r.getatt("WebAcl", "Arn"))
        self.assertTrue(dist["WebACLId"].startswith(f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/"))
        self.assert_distribution(dist)
        self.assertEqual(x.r.resolve(x.cfn["Outputs"]["WebAclArn"]["Value"]), dist["WebACLId"])

    def assert_distribution(self, dist: dict) -> None:
        self.assertTrue(dist["Enabled"])
        origin = dist["Origins"][0]
        self.assertEqual(origin["DomainName"], "HttpApi.execute-api.us-east-1.amazonaws.com")
        self.assertEqual(origin["CustomOriginConfig"]["OriginProtocolPolicy"], "https-only")
        behaviour = dist["DefaultCacheBehavior"]
        self.assertEqual(behaviour["TargetOriginId"], origin["Id"])
        self.assertEqual(behaviour["CachePolicyId"], "4135ea2d-6df8-44a3-9df3-4b5a84be39ad")
        self.assertEqual(behaviour["OriginRequestPolicyId"], "b689b0a8-53d0-40ab-baf2-68738e2966ac")
        self.assertEqual(set(behaviour["AllowedMethods"]), {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"})
        self.assertEqual(behaviour["ViewerProtocolPolicy"], "https-only")

    def test_the_callback_ip_refresh(self):
        x = case("waf-here")
        fn = "CallbackIpRefreshFunction"
        props = x.props(fn)
        self.assertEqual(props["Timeout"], 30)
        env = x.env(fn)
        self.assertEqual(x.res[fn]["Properties"]["Environment"]["Variables"]["CALLBACK_IP_SET_ID"],
                         {"Fn::GetAtt": ["WeChatCallbackIps", "Id"]})
        self.assertEqual((env["CALLBACK_IP_SET_NAME"], env["CALLBACK_IP_SET_SCOPE"], env["WECHAT_APPID"],
                          env["WECHAT_APPSECRET_SECRET_ID"]),
                         (x.props("WeChatCallbackIps")["Name"], "CLOUDFRONT", "wx0123456789abcdef", APP_SECRET))
        schedule = [r for r in x.of_type("AWS::Events::Rule").values()
                    if r["Properties"]["Targets"][0]["Arn"] == {"Ref": x.alias_of(fn)}]
        self.assertEqual([r["Properties"]["ScheduleExpression"] for r in schedule], ["rate(1 hour)"])
        ipset = x.r.getatt("WeChatCallbackIps", "Arn")
        for action in ("wafv2:GetIPSet", "wafv2:UpdateIPSet"):
            self.assertEqual(x.decision(fn, action, ipset), "Allow", action)
            for other in (x.r.getatt("WebAcl", "Arn"), f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/other/1"):
                self.assertEqual(x.decision(fn, action, other), "ImplicitDeny", other)
        self.assertEqual(x.decision(fn, "wafv2:UpdateWebACL", x.r.getatt("WebAcl", "Arn")), "ImplicitDeny")
        self.assertEqual(x.decision(fn, "secretsmanager:GetSecretValue", APP_SECRET), "Allow")
        self.assertEqual(x.decision(fn, "secretsmanager:GetSecretValue", CALLBACK_SECRET), "ImplicitDeny")
        # The same table grants as the token refresh (the WeChat client's records), no more.
        dynamo = [(s.actions, s.resources, s.condition) for s in x.own_statements(fn)
                  if any(a.startswith("dynamodb:") for a in s.actions or [])]
        token = [(s.actions, s.resources, s.condition) for s in x.own_statements("TokenRefreshFunction")
                 if any(a.startswith("dynamodb:") for a in s.actions or [])]
        self.assertEqual(dynamo, token)
        self.assertEqual(x.r.resolve(x.cfn["Outputs"]["CallbackIpRefreshFunctionName"]["Value"]), fn)

    def test_outside_us_east_1_the_distribution_takes_the_given_acl(self):
        x = case("waf-elsewhere")
        self.assertEqual(x.of_type("AWS::WAFv2::WebACL"), {})
        self.assertEqual(x.of_type("AWS::WAFv2::IPSet"), {})
        self.assertNotIn("CallbackIpRefreshFunction", x.res)
        dist = x.props("ApiDistribution")["DistributionConfig"]
        self.assertEqual(dist["WebACLId"], WEB_ACL)
        self.assertEqual(dist["Origins"][0]["DomainName"], "HttpApi.execute-api.eu-west-1.amazonaws.com")
        self.assertEqual(x.rule_failures(), [])
        self.assertIn("WebAclOutsideUsEast1", expanded({**FULL, "EnableWaf": "true"}, "eu-west-1").rule_failures())

    def test_the_internal_routes_keep_their_throttle(self):
        x = case("defaults")
        stage = x.props("HttpApiApiGatewayDefaultStage")
        self.assertEqual(stage["DefaultRouteSettings"], {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200})
        paths = x.props("HttpApi")["Body"]["paths"]  # the routes of this deployment (Fn::If resolved)
        internal = {k for k in stage["RouteSettings"]}
        self.assertEqual({k.split(" ", 1)[1].split("/")[1] for k in internal}, {"messages", "admin", "followers"})
        for key, settings in stage["RouteSettings"].items():
            method, path = key.split(" ", 1)
            self.assertEqual(settings, {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200})
            op = "x-amazon-apigateway-any-method" if method == "ANY" else method.lower()
            self.assertIn(op, paths.get(path, {}), key)  # API Gateway refuses settings for a missing route
            self.assertIn("security", paths[path][op], key)  # an IAM route
        self.assertNotIn("RouteSettings", case("callback-only").props("HttpApiApiGatewayDefaultStage"))


@unittest.skipUnless(TEMPLATE.exists(), f"{TEMPLATE} not found")
class RulesTest(unittest.TestCase):
    def test_every_case_passes_the_rules(self):
        for name in CASES:
            with self.subTest(case=name):
                self.assertEqual(case(name).rule_failures(), [])

    def test_the_rules_refuse_incomplete_settings(self):
        bad = [
            ({**FULL, "ReplicaRegions": "eu-west-1"}, "us-east-1", "TableNameForMultiRegion"),
            ({**FULL, "TableRole": "replica"}, "us-east-1", "TableNameForMultiRegion"),
            ({**FULL, "CallbackDomainName": "wechat.example.com", "HostedZoneId": "Z1"}, "us-east-1",
             "CertificateAndZoneForTheDomain"),
            ({**FULL, "CallbackDomainName": "wechat.example.com", "CertificateArn": CERT}, "us-east-1",
             "CertificateAndZoneForTheDomain"),
            ({**FULL, "EnableWaf": "true"}, "ap-northeast-1", "WebAclOutsideUsEast1"),
            ({**CALLBACK_ONLY, "EnableWaf": "true"}, "us-east-1", "AppSecretForTheCallbackIps"),
        ]
        for params, region, rule in bad:
            with self.subTest(rule=rule, params=params):
                self.assertIn(rule, expanded(params, region).rule_failures())

    def test_no_token_mode_parameter_to_refuse(self):
        """MULTI_REGION refuses WECHAT_TOKEN_MODE=classic at start-up; the template sets no token
        mode (the default, stable, is the only one multi-region allows), so it needs no rule."""
        text = TEMPLATE.read_text()
        self.assertNotIn("WECHAT_TOKEN_MODE", text)
        self.assertNotIn("TokenMode", text)


if __name__ == "__main__":
    unittest.main()


class BuildTest(unittest.TestCase):
    def test_every_function_binary_allocates_through_mimalloc(self):
        """A function crate without `shared`'s mimalloc feature runs on glibc's allocator, which
        cost the callback 7-25 % more CPU per invocation (docs/benchmarks.md §24)."""
        import tomllib
        resources = case("with-logins-and-pay").sam["Resources"]
        binaries = {lid: res["Metadata"]["BuildProperties"]["Binary"] for lid, res in resources.items()
                    if res.get("Type") == "AWS::Serverless::Function"}
        self.assertGreaterEqual(len(binaries), 15)
        crates = {}
        for manifest in (TEMPLATE.parent / "functions").glob("*/Cargo.toml"):
            crate = tomllib.loads(manifest.read_text())
            for binary in crate.get("bin", [{"name": crate["package"]["name"]}]):
                crates[binary["name"]] = (manifest, crate)
        for lid, binary in binaries.items():
            with self.subTest(function=lid, binary=binary):
                self.assertIn(binary, crates, f"no crate under functions/ builds {binary}")
                manifest, crate = crates[binary]
                shared = crate["dependencies"]["shared"]
                self.assertIn("mimalloc", shared.get("features", []) if isinstance(shared, dict) else [],
                              f"{manifest}: shared without its mimalloc feature")

    def test_mimalloc_is_the_2x_line(self):
        """mimalloc 3.x (the crate's default) serves Rust's aligned allocations from a larger size
        class on its slow path: 2-4 MiB more peak RSS per function (docs/benchmarks.md §26)."""
        import tomllib
        workspace = tomllib.loads((TEMPLATE.parent / "Cargo.toml").read_text())
        mimalloc = workspace["workspace"]["dependencies"]["mimalloc"]
        self.assertIn("v2", mimalloc.get("features", []), "the workspace's mimalloc without its v2 feature")
