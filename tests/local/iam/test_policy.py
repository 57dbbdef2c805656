"""The IAM policy evaluator: parsing, the single-account evaluation rules, conditions, messages."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from sluice.local.iam import policy as policy_module
from sluice.local.iam.policy import (
    Decision,
    Policy,
    PolicyError,
    Principal,
    RequestContext,
    StatementRef,
    denial_message,
    evaluate,
)

ACCOUNT = "123456789012"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/TriggerRole"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/TriggerRole/sess1"
ALICE_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"

ALICE = Principal.user(ACCOUNT, "alice")
BOB = Principal.user(ACCOUNT, "bob")
SESSION = Principal.role_session(ACCOUNT, "TriggerRole", "sess1")
OTHER_SESSION = Principal.role_session(ACCOUNT, "TriggerRole", "sess2")
EVENTS = Principal.aws_service("events.amazonaws.com")
ROOT = Principal.root(ACCOUNT)

BUCKET_ARN = "arn:aws:s3:::my-bucket"
OBJECT_ARN = "arn:aws:s3:::my-bucket/data/file.csv"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"
RULE_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/nightly"


def stmt(effect: str = "Allow", action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": effect, "Action": action}
    if resource is not None:
        s["Resource"] = resource
    s.update(extra)
    return s


def identity(*statements: dict[str, Any], source: str = "role TriggerRole / inline policy P") -> Policy:
    return Policy({"Version": "2012-10-17", "Statement": list(statements)}, source)


def resource_policy(*statements: dict[str, Any], source: str = "bucket policy of my-bucket") -> Policy:
    return Policy({"Version": "2012-10-17", "Statement": list(statements)}, source, resource_based=True)


def ctx(
    principal: Principal = SESSION, action: str = "s3:GetObject", resource: str = OBJECT_ARN, **context: Any
) -> RequestContext:
    return RequestContext(principal, action, resource, {k.replace("__", ":"): v for k, v in context.items()})


def allowed(
    request: RequestContext, ids: list[Policy] | None = None, res: Policy | None = None, **kw: Any
) -> bool:
    return evaluate(request, ids or [], res, **kw).allowed


# --------------------------------------------------------------------------- parsing


def test_parses_json_text_and_single_statement_and_string_values() -> None:
    doc = json.dumps(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}
    )
    p = Policy(doc, "from text")
    assert len(p.statements) == 1
    assert allowed(ctx(), [p])
    listed = identity(stmt(action=["sqs:SendMessage", "s3:GetObject"], resource=[QUEUE_ARN, OBJECT_ARN]))
    assert allowed(ctx(), [listed])
    assert repr(p) == "Policy('from text', 1 statements)"


@pytest.mark.parametrize(
    ("document", "resource_based", "message"),
    [
        ("{not json", False, "not valid JSON"),
        ([], False, "JSON object"),
        ({"Statement": [stmt()], "Bogus": 1}, False, "unknown element"),
        ({"Version": "2020-01-01", "Statement": [stmt()]}, False, "Version"),
        ({"Statement": "nope"}, False, "Statement must be"),
        ({"Statement": ["nope"]}, False, "not a JSON object"),
        ({"Statement": [stmt(effect="allow")]}, False, "Effect"),
        ({"Statement": [stmt(NotAction="s3:*")]}, False, "cannot both"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, False, "Action or NotAction"),
        ({"Statement": [stmt(action="GetObject")]}, False, "service:action"),
        ({"Statement": [stmt(action=[])]}, False, "non-empty"),
        ({"Statement": [stmt(resource=None)]}, False, "Resource or NotResource"),
        ({"Statement": [stmt(Principal="*")]}, False, "identity-based policy cannot"),
        ({"Statement": [stmt()]}, True, "Principal or NotPrincipal"),
        ({"Statement": [stmt(Principal="123456789012")]}, True, "Principal must be"),
        ({"Statement": [stmt(Principal={"Group": "x"})]}, True, "unknown principal type"),
        ({"Statement": [stmt(Bogus=1)]}, False, "unknown element"),
        ({"Statement": [stmt(Sid=3)]}, False, "Sid"),
        ({"Statement": [stmt(Condition=[])]}, False, "Condition must be"),
        ({"Statement": [stmt(Condition={"StringEquals": "x"})]}, False, "must map"),
        ({"Statement": [stmt(Condition={"StringEqualz": {"k": "v"}})]}, False, "unknown condition operator"),
        ({"Statement": [stmt(Condition={"NullIfExists": {"k": "true"}})]}, False, "Null takes neither"),
        ({"Statement": [stmt(Condition={"ForAnyValue:Null": {"k": "true"}})]}, False, "Null takes neither"),
        ({"Statement": [stmt(Condition={"Null": {"k": "maybe"}})]}, False, "true or false"),
        ({"Statement": [stmt(Condition={"NumericEquals": {"k": "ten"}})]}, False, "numeric"),
        ({"Statement": [stmt(Condition={"DateLessThan": {"k": "yesterday"}})]}, False, "date"),
        ({"Statement": [stmt(Condition={"IpAddress": {"k": "10.0.0.300/8"}})]}, False, "CIDR"),
        ({"Statement": [stmt(Condition={"BinaryEquals": {"k": "%%%"}})]}, False, "base-64"),
        ({"Statement": [stmt(Condition={"StringEquals": {"k": {"nested": 1}}})]}, False, "condition values"),
    ],
)
def test_invalid_documents_are_rejected(document: Any, resource_based: bool, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        Policy(document, "test policy", resource_based=resource_based)


def test_operator_names_with_set_and_ifexists_affixes_parse() -> None:
    for op in (
        "ForAnyValue:StringLike",
        "ForAllValues:StringEqualsIfExists",
        "ArnNotLikeIfExists",
        "stringequals",
    ):
        Policy({"Statement": [stmt(Condition={op: {"k": "v"}})]})


def test_statement_refs_carry_source_sid_and_index() -> None:
    p = identity(
        stmt(Sid="ReadData", action="s3:GetObject"),
        stmt(action="s3:Get*"),
        source="role sluice-TriggerRole / inline policy TriggerPolicy",
    )
    d = evaluate(ctx(), [p], None)
    assert d.allowing == [
        StatementRef("role sluice-TriggerRole / inline policy TriggerPolicy", "ReadData", 0, "identity"),
        StatementRef("role sluice-TriggerRole / inline policy TriggerPolicy", None, 1, "identity"),
    ]
    assert str(d.allowing[0]) == "role sluice-TriggerRole / inline policy TriggerPolicy, statement 'ReadData'"
    assert str(d.allowing[1]) == "role sluice-TriggerRole / inline policy TriggerPolicy, statement #1"


# --------------------------------------------------------------------------- identity and resource policies


def test_no_policies_is_an_implicit_deny() -> None:
    d = evaluate(ctx(), [], None)
    assert (d.allowed, d.explicit_deny, d.allowing, d.denying) == (False, False, [], [])


def test_identity_allow_alone_allows() -> None:
    assert allowed(ctx(), [identity(stmt(action="s3:GetObject", resource=OBJECT_ARN))])


def test_explicit_deny_in_one_policy_beats_allow_in_another() -> None:
    allow = identity(stmt(action="s3:*"), source="allow")
    deny = identity(stmt("Deny", action="s3:GetObject", resource="arn:aws:s3:::my-bucket/*"), source="deny")
    d = evaluate(ctx(), [allow, deny], None)
    assert not d.allowed and d.explicit_deny
    assert [r.source for r in d.denying] == ["deny"]
    assert d.allowing == []


def test_resource_policy_deny_beats_identity_allow_and_resource_allow() -> None:
    res = resource_policy(
        stmt(Principal={"AWS": ROLE_ARN}, action="s3:GetObject", resource=OBJECT_ARN),
        stmt("Deny", Principal="*", action="s3:*", resource="arn:aws:s3:::my-bucket/*"),
    )
    d = evaluate(ctx(), [identity(stmt())], res)
    assert not d.allowed and d.explicit_deny and d.denying[0].kind == "resource"


@pytest.mark.parametrize(
    ("principal_element", "caller", "expected"),
    [
        ("*", SESSION, True),
        ({"AWS": "*"}, SESSION, True),
        ({"AWS": ROLE_ARN}, SESSION, True),  # the role: every session of it
        ({"AWS": ROLE_ARN}, OTHER_SESSION, True),
        ({"AWS": SESSION_ARN}, SESSION, True),  # exactly this session
        ({"AWS": SESSION_ARN}, OTHER_SESSION, False),
        ({"AWS": [ALICE_ARN]}, ALICE, True),
        ({"AWS": ALICE_ARN}, BOB, False),
        ({"AWS": ACCOUNT}, SESSION, False),  # the account alone delegates to identity policies
        ({"AWS": ROOT_ARN}, SESSION, False),
        ({"AWS": ROOT_ARN}, ALICE, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/Other"}, SESSION, False),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"}, SESSION, False),  # no wildcards in principals
        ({"Service": "events.amazonaws.com"}, SESSION, False),
        ({"Federated": "cognito-identity.amazonaws.com"}, SESSION, False),
    ],
)
def test_resource_policy_allow_alone(principal_element: Any, caller: Principal, expected: bool) -> None:
    res = resource_policy(stmt(Principal=principal_element, action="s3:GetObject", resource=OBJECT_ARN))
    assert allowed(ctx(caller), [], res) is expected


def test_account_principal_plus_identity_allow_allows() -> None:
    res = resource_policy(stmt(Principal={"AWS": ACCOUNT}, action="s3:GetObject", resource=OBJECT_ARN))
    d = evaluate(ctx(), [identity(stmt(action="s3:GetObject"))], res)
    assert d.allowed
    assert [r.kind for r in d.allowing] == ["identity"]  # the delegation itself allows nothing


@pytest.mark.parametrize("named", [{"AWS": ACCOUNT}, {"AWS": ROOT_ARN}, {"AWS": ROLE_ARN}])
def test_resource_deny_naming_the_account_or_role_denies_the_session(named: Any) -> None:
    res = resource_policy(stmt("Deny", Principal=named, action="s3:GetObject", resource=OBJECT_ARN))
    d = evaluate(ctx(), [identity(stmt())], res)
    assert d.explicit_deny and not d.allowed


def test_resource_statement_for_another_principal_does_not_apply() -> None:
    res = resource_policy(stmt("Deny", Principal={"AWS": ALICE_ARN}, action="s3:*", resource="*"))
    assert allowed(ctx(SESSION), [identity(stmt())], res)


def test_resource_policy_without_resource_element_covers_its_resource() -> None:
    trust = resource_policy(stmt(Principal={"AWS": ALICE_ARN}, action="sts:AssumeRole", resource=None))
    assert allowed(ctx(ALICE, "sts:AssumeRole", ROLE_ARN), [], trust, resource_policy_required=True)


def test_policy_kinds_are_checked_at_evaluation() -> None:
    res = resource_policy(stmt(Principal="*"))
    with pytest.raises(ValueError, match="resource-based"):
        evaluate(ctx(), [res], None)
    with pytest.raises(ValueError, match="not a resource-based policy"):
        evaluate(ctx(), [], identity(stmt()))


# --------------------------------------------------------------------------- NotPrincipal


@pytest.mark.parametrize(
    ("not_principal", "caller", "denied"),
    [
        ([ALICE_ARN, ROOT_ARN], ALICE, False),
        ([ALICE_ARN, ROOT_ARN], BOB, True),
        ([ALICE_ARN], ALICE, True),  # the account is not listed: it is denied, and alice with it
        ([SESSION_ARN, ROLE_ARN, ROOT_ARN], SESSION, False),
        ([SESSION_ARN, ROLE_ARN, ROOT_ARN], OTHER_SESSION, True),
        ([ROLE_ARN, ROOT_ARN], SESSION, True),  # AWS may check the session too: list all three
        ([ROOT_ARN], ROOT, False),
    ],
)
def test_deny_with_not_principal(not_principal: list[str], caller: Principal, denied: bool) -> None:
    res = resource_policy(stmt("Deny", NotPrincipal={"AWS": not_principal}, action="s3:*", resource="*"))
    d = evaluate(ctx(caller), [identity(stmt())], res)
    assert d.explicit_deny is denied
    assert d.allowed is not denied


def test_allow_with_not_principal_grants_everyone_else() -> None:
    res = resource_policy(stmt(NotPrincipal={"AWS": ALICE_ARN}, action="s3:GetObject", resource=OBJECT_ARN))
    assert allowed(ctx(BOB), [], res)
    assert not allowed(ctx(ALICE), [], res)
    svc = resource_policy(stmt(NotPrincipal={"Service": "sns.amazonaws.com"}, action="sqs:SendMessage"))
    assert allowed(ctx(EVENTS, "sqs:SendMessage", QUEUE_ARN), [], svc)
    assert not allowed(ctx(Principal.aws_service("sns.amazonaws.com"), "sqs:SendMessage", QUEUE_ARN), [], svc)


# --------------------------------------------------------------------------- KMS: key policy required


def key_policy(*statements: dict[str, Any]) -> Policy:
    return resource_policy(*statements, source="key policy of 1234abcd")


def test_kms_identity_allow_counts_when_key_policy_grants_the_account() -> None:
    key = key_policy(stmt(Sid="Enable IAM User Permissions", Principal={"AWS": ROOT_ARN}, action="kms:*"))
    ids = [identity(stmt(Sid="UseKey", action="kms:Decrypt", resource=KEY_ARN))]
    d = evaluate(ctx(action="kms:Decrypt", resource=KEY_ARN), ids, key, resource_policy_required=True)
    assert d.allowed
    assert [(r.kind, r.sid) for r in d.allowing] == [
        ("identity", "UseKey"),
        ("resource", "Enable IAM User Permissions"),
    ]


def test_kms_account_grant_without_identity_allow_denies_blaming_identity_policies() -> None:
    key = key_policy(stmt(Principal={"AWS": ACCOUNT}, action="kms:*"))
    request = ctx(action="kms:Decrypt", resource=KEY_ARN)
    d = evaluate(request, [], key, resource_policy_required=True)
    assert not d.allowed and d.implicit_deny_in == "identity"
    assert d.reason("kms:Decrypt") == "because no identity-based policy allows the kms:Decrypt action"


@pytest.mark.parametrize(
    "key",
    [
        None,
        key_policy(stmt(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin"}, action="kms:*")),
        key_policy(stmt(Principal={"AWS": ROOT_ARN}, action="kms:Encrypt")),  # grant for another action
        key_policy(
            stmt(
                Principal={"AWS": ROOT_ARN},
                action="kms:*",
                Condition={"Bool": {"aws:SecureTransport": "true"}},
            )
        ),
    ],
)
def test_kms_identity_allow_without_key_policy_grant_is_denied(key: Policy | None) -> None:
    request = ctx(action="kms:Decrypt", resource=KEY_ARN, aws__SecureTransport=False)
    d = evaluate(request, [identity(stmt(action="kms:*"))], key, resource_policy_required=True)
    assert not d.allowed and not d.explicit_deny
    assert denial_message(request, d) == (
        f"User: {SESSION_ARN} is not authorized to perform: kms:Decrypt on resource: {KEY_ARN} "
        "because no resource-based policy allows the kms:Decrypt action"
    )


def test_kms_key_policy_direct_grant_needs_no_identity_policy_but_identity_deny_still_wins() -> None:
    key = key_policy(stmt(Sid="KeyUsers", Principal={"AWS": ROLE_ARN}, action=["kms:Decrypt", "kms:Encrypt"]))
    request = ctx(action="kms:Decrypt", resource=KEY_ARN)
    d = evaluate(request, [], key, resource_policy_required=True)
    assert d.allowed and [r.sid for r in d.allowing] == ["KeyUsers"]
    deny = identity(stmt("Deny", action="kms:Decrypt"))
    d = evaluate(request, [deny], key, resource_policy_required=True)
    assert not d.allowed and d.explicit_deny
    assert d.reason("kms:Decrypt") == "with an explicit deny in an identity-based policy"


def test_without_resource_policy_required_an_account_grant_is_not_needed() -> None:
    assert allowed(ctx(action="kms:Decrypt", resource=KEY_ARN), [identity(stmt(action="kms:*"))], None)


# --------------------------------------------------------------------------- service principals and root


def test_service_principal_allowed_only_by_resource_policy_with_source_arn() -> None:
    queue = resource_policy(
        stmt(
            Sid="EventsToQueue",
            Principal={"Service": "events.amazonaws.com"},
            action="sqs:SendMessage",
            resource=QUEUE_ARN,
            Condition={"ArnEquals": {"aws:SourceArn": RULE_ARN}},
        ),
        source="queue policy of jobs",
    )
    base = {"principal": EVENTS, "action": "sqs:SendMessage", "resource": QUEUE_ARN}
    assert allowed(ctx(**base, aws__SourceArn=RULE_ARN), [], queue)
    assert not allowed(ctx(**base, aws__SourceArn=RULE_ARN.replace("nightly", "other")), [], queue)
    assert not allowed(ctx(**base), [], queue)  # no aws:SourceArn: ArnEquals is false
    assert not allowed(
        ctx(Principal.aws_service("sns.amazonaws.com"), "sqs:SendMessage", QUEUE_ARN), [], queue
    )


def test_service_principal_ignores_identity_policies_and_message_names_the_service() -> None:
    request = ctx(EVENTS, "lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f")
    d = evaluate(request, [identity(stmt())], None)
    assert not d.allowed and d.implicit_deny_in == "resource"
    assert denial_message(request, d) == (
        "Service: events.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: "
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f "
        "because no resource-based policy allows the lambda:InvokeFunction action"
    )
    assert allowed(request, [], resource_policy(stmt(Principal="*", action="lambda:InvokeFunction")))


def test_root_user_is_allowed_unless_denied_and_still_needs_the_key_policy() -> None:
    assert allowed(ctx(ROOT), [], None)
    assert not allowed(
        ctx(ROOT), [], resource_policy(stmt("Deny", Principal={"AWS": ACCOUNT}, action="s3:*"))
    )
    kms = ctx(ROOT, "kms:Decrypt", KEY_ARN)
    assert not allowed(kms, [], key_policy(stmt(Principal={"AWS": ROLE_ARN})), resource_policy_required=True)
    assert allowed(kms, [], key_policy(stmt(Principal={"AWS": ACCOUNT})), resource_policy_required=True)


# --------------------------------------------------------------------------- NotAction, NotResource, wildcards


def test_not_action_with_allow_allows_everything_but_the_listed_actions() -> None:
    p = identity({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert allowed(ctx(action="s3:GetObject"), [p])
    assert not allowed(ctx(action="iam:CreateUser", resource="*"), [p])


def test_not_resource_with_deny_denies_everything_but_the_listed_resources() -> None:
    deny = identity(
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/*"],
        }
    )
    allow = identity(stmt(action="s3:*"))
    assert allowed(ctx(resource=OBJECT_ARN), [allow, deny])
    assert allowed(ctx(action="s3:ListBucket", resource=BUCKET_ARN), [allow, deny])
    d = evaluate(ctx(resource="arn:aws:s3:::other-bucket/x"), [allow, deny], None)
    assert d.explicit_deny
    # NotAction with Deny: denies everything except the listed actions.
    guard = identity({"Effect": "Deny", "NotAction": ["s3:Get*", "s3:List*"], "Resource": "*"})
    assert allowed(ctx(action="s3:GetObject"), [allow, guard])
    assert not allowed(ctx(action="s3:PutObject"), [allow, guard])


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:Get*", "s3:GetObject", True),
        ("s3:Get*", "s3:GetObjectTagging", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:Get*", "s3x:GetObject", False),
        ("iam:*AccessKey*", "iam:CreateAccessKey", True),
        ("iam:*AccessKey*", "iam:ListAccessKeys", True),
        ("iam:*AccessKey*", "iam:ListUsers", False),
        ("S3:GETOBJECT", "s3:GetObject", True),  # actions are case-insensitive
        ("s3:getobject", "S3:GetObject", True),
        ("s3:Get?bject", "s3:GetObject", True),
        ("s3:Get?bject", "s3:GetObbject", False),
        ("*", "anything:AtAll", True),
        ("s3:*", "s3:GetObject", True),
        ("s3:GetObject", "s3:GetObjectAcl", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert allowed(ctx(action=action, resource="*"), [identity(stmt(action=pattern))]) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::my-bucket/*", "arn:aws:s3:::my-bucket", False),
        ("arn:aws:s3:::my-bucket/*", "arn:aws:s3:::my-bucket/data/file.csv", True),
        ("arn:aws:s3:::my-bucket", "arn:aws:s3:::my-bucket/data/file.csv", False),
        ("arn:aws:s3:::my-bucket*", "arn:aws:s3:::my-bucket-logs/x", True),
        ("arn:aws:s3:::My-Bucket/*", "arn:aws:s3:::my-bucket/x", False),  # resources are case-sensitive
        ("arn:aws:s3:::my-bucket/data/file.cs?", "arn:aws:s3:::my-bucket/data/file.csv", True),
        ("arn:aws:s3:::my-bucket/data/file.cs?", "arn:aws:s3:::my-bucket/data/file.c", False),
        (f"arn:aws:sqs:*:{ACCOUNT}:jobs", QUEUE_ARN, True),
        ("arn:aws:lambda:*", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f:live", True),  # * crosses ':'
        ("arn:aws:s3:::*/data/*", "arn:aws:s3:::my-bucket/data/x", True),  # * crosses '/'
        ("*", "*", True),
        ("*", OBJECT_ARN, True),
        ("arn:aws:s3:::my-bucket", "*", False),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: bool) -> None:
    assert (
        allowed(ctx(resource=resource), [identity(stmt(action="s3:GetObject", resource=pattern))]) is expected
    )


# --------------------------------------------------------------------------- condition operators

MISSING = object()
B64 = base64.b64encode(b"hello").decode()


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value", "expected"),
    [
        # String
        ("StringEquals", "abc", "abc", True),
        ("StringEquals", "abc", "ABC", False),
        ("StringEquals", ["x", "abc"], "abc", True),  # policy values are OR-ed
        ("StringEquals", "a*", "abc", False),  # no wildcards in Equals
        ("StringEquals", "abc", MISSING, False),
        ("StringNotEquals", "abc", "xyz", True),
        ("StringNotEquals", "abc", "abc", False),
        ("StringNotEquals", ["abc", "xyz"], "xyz", False),  # negated: NOR of the values
        ("StringNotEquals", ["abc", "xyz"], "other", True),
        ("StringNotEquals", "abc", MISSING, True),
        ("StringEqualsIgnoreCase", "ABC", "abc", True),
        ("StringEqualsIgnoreCase", "ABC", "abd", False),
        ("StringNotEqualsIgnoreCase", "ABC", "abc", False),
        ("StringNotEqualsIgnoreCase", "ABC", MISSING, True),
        ("StringLike", "home/*", "home/alice/x", True),
        ("StringLike", "home/*", "Home/alice", False),  # case-sensitive
        ("StringLike", "a?c", "abc", True),
        ("StringLike", "a?c", "abbc", False),
        ("StringLike", "*mid*", "xxmidyy", True),
        ("StringLike", "", "", True),
        ("StringLike", "home/*", MISSING, False),
        ("StringNotLike", "home/*", "other/x", True),
        ("StringNotLike", "home/*", "home/x", False),
        ("StringNotLike", "home/*", MISSING, True),
        # Numeric
        ("NumericEquals", "10", "10", True),
        ("NumericEquals", "10", 10, True),
        ("NumericEquals", 10, "10.0", True),
        ("NumericEquals", "10", "eleven", False),
        ("NumericEquals", "10", MISSING, False),
        ("NumericNotEquals", "10", "11", True),
        ("NumericNotEquals", "10", "10", False),
        ("NumericNotEquals", "10", MISSING, True),
        ("NumericLessThan", "10", "9.5", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThan", "10", "10", False),
        ("NumericGreaterThanEquals", "10", "10", True),
        ("NumericGreaterThanEquals", "10", "9", False),
        # Date: ISO 8601 and epoch, on either side
        ("DateLessThan", "2030-01-01T00:00:00Z", "2025-06-01T12:00:00Z", True),
        ("DateLessThan", "2020-01-01T00:00:00Z", "2025-06-01T12:00:00Z", False),
        ("DateGreaterThan", "1700000000", "2024-01-01T00:00:00Z", True),
        ("DateEquals", "2024-01-01T00:00:00Z", "1704067200", True),
        ("DateEquals", "2024-01-01T01:00:00+01:00", "1704067200", True),
        ("DateEquals", "2024-01-01", "2024-01-01T00:00:00Z", True),
        ("DateEquals", "2024-01", "2024-01-01T00:00:00Z", True),
        ("DateNotEquals", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", True),
        ("DateNotEquals", "2024-01-01T00:00:00Z", MISSING, True),
        ("DateLessThanEquals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z", True),
        ("DateGreaterThanEquals", "2024-01-01T00:00:00Z", "2023-12-31T23:59:59Z", False),
        ("DateGreaterThan", "2024-01-01T00:00:00Z", "not a date", False),
        ("DateGreaterThan", "2024-01-01T00:00:00Z", MISSING, False),
        # Bool
        ("Bool", "true", True, True),
        ("Bool", "true", "false", False),
        ("Bool", True, "true", True),
        ("Bool", "false", False, True),
        ("Bool", "false", MISSING, False),
        ("BoolIfExists", "false", MISSING, True),
        # Binary
        ("BinaryEquals", B64, "hello", True),
        ("BinaryEquals", B64, B64, True),
        ("BinaryEquals", B64, "goodbye", False),
        ("BinaryEquals", B64, MISSING, False),
        # IP address
        ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        ("IpAddress", "203.0.113.0/24", "198.51.100.1", False),
        ("IpAddress", "203.0.113.9", "203.0.113.9", True),  # no prefix means /32
        ("IpAddress", "203.0.113.9", "203.0.113.10", False),
        ("IpAddress", ["10.0.0.0/8", "2001:DB8:1234:5678::/64"], "2001:db8:1234:5678::1", True),
        ("IpAddress", "2001:DB8::/32", "203.0.113.7", False),
        ("IpAddress", "203.0.113.0/24", "not-an-ip", False),
        ("IpAddress", "203.0.113.0/24", MISSING, False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
        ("NotIpAddress", "203.0.113.0/24", MISSING, True),
        # ARN
        ("ArnEquals", RULE_ARN, RULE_ARN, True),
        ("ArnLike", f"arn:aws:events:*:{ACCOUNT}:rule/*", RULE_ARN, True),
        ("ArnLike", f"arn:aws:events:*:{ACCOUNT}:rule/*", RULE_ARN.replace(ACCOUNT, "999999999999"), False),
        ("ArnLike", "arn:aws:events:us-east-?:*:rule/nightly", RULE_ARN, True),
        ("ArnLike", "arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a:b:c", True),  # 6th part holds colons
        ("ArnLike", "*", RULE_ARN, True),
        ("ArnLike", RULE_ARN, "not-an-arn", False),
        ("ArnLike", RULE_ARN, MISSING, False),
        ("ArnNotEquals", RULE_ARN, RULE_ARN, False),
        ("ArnNotLike", "arn:aws:events:*:*:rule/other", RULE_ARN, True),
        ("ArnNotLike", RULE_ARN, MISSING, True),
        # Null
        ("Null", "true", MISSING, True),
        ("Null", "true", "x", False),
        ("Null", "false", "x", True),
        ("Null", "false", MISSING, False),
        ("Null", "true", [], True),
        ("Null", True, MISSING, True),
        # ...IfExists: true when the key is missing, the plain operator otherwise
        ("StringEqualsIfExists", "abc", MISSING, True),
        ("StringEqualsIfExists", "abc", "abc", True),
        ("StringEqualsIfExists", "abc", "xyz", False),
        ("StringNotEqualsIfExists", "abc", "abc", False),
        ("NumericLessThanIfExists", "10", MISSING, True),
        ("NumericLessThanIfExists", "10", "20", False),
        ("ArnLikeIfExists", RULE_ARN, MISSING, True),
        ("IpAddressIfExists", "10.0.0.0/8", "192.168.0.1", False),
        # A multivalued key with a plain operator: any value matching counts
        ("StringEquals", "b", ["a", "b"], True),
        ("StringNotEquals", "b", ["a", "b"], False),
        # Set operators (reference_policies_multi-value-conditions.html)
        ("ForAnyValue:StringEquals", ["a", "b"], ["b", "z"], True),
        ("ForAnyValue:StringEquals", ["a", "b"], ["z"], False),
        ("ForAnyValue:StringEquals", ["a", "b"], [], False),
        ("ForAnyValue:StringEquals", ["a", "b"], "", False),
        ("ForAnyValue:StringEquals", ["a", "b"], MISSING, False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "z"], False),
        ("ForAllValues:StringEquals", ["a", "b"], [], True),
        ("ForAllValues:StringEquals", ["a", "b"], "", True),
        ("ForAllValues:StringEquals", ["a", "b"], MISSING, True),
        ("ForAllValues:StringLike", ["Created*"], ["CreatedBy", "CreatedAt"], True),
        ("ForAllValues:StringNotLike", "key1*", ["key1:legal"], False),
        ("ForAllValues:StringNotLike", "key1*", ["key1:hr", "key1:personnel"], False),
        ("ForAllValues:StringNotLike", "key1*", ["key2:audit"], True),
        ("ForAllValues:StringNotLike", "key1*", MISSING, True),
        ("ForAnyValue:StringNotEquals", "a", ["a", "b"], True),
        ("ForAnyValue:StringNotEquals", "a", ["a"], False),
        ("ForAnyValue:StringNotEquals", "a", MISSING, False),
        ("ForAnyValue:StringLikeIfExists", "x*", MISSING, True),
        ("ForAllValues:StringEqualsIfExists", "a", ["b"], False),
        ("ForAnyValue:StringEqualsIgnoreCase", "ABC", ["x", "abc"], True),
        ("ForAnyValue:ArnLike", f"arn:aws:iam::{ACCOUNT}:role/*", [ROLE_ARN], True),
    ],
)
def test_condition_operators(operator: str, policy_value: Any, request_value: Any, expected: bool) -> None:
    p = identity(stmt(action="s3:GetObject", Condition={operator: {"test:Key": policy_value}}))
    context = {} if request_value is MISSING else {"test:key": request_value}
    request = RequestContext(SESSION, "s3:GetObject", OBJECT_ARN, context)
    assert evaluate(request, [p], None).allowed is expected


def test_conditions_are_anded_across_keys_and_operators() -> None:
    p = identity(
        stmt(
            Condition={
                "StringEquals": {"aws:PrincipalTag/team": "data", "aws:RequestedRegion": "us-east-1"},
                "Bool": {"aws:SecureTransport": "true"},
            }
        )
    )
    good = {"aws:PrincipalTag/team": "data", "aws:RequestedRegion": "us-east-1", "aws:SecureTransport": True}
    assert allowed(RequestContext(SESSION, "s3:GetObject", OBJECT_ARN, good), [p])
    for key, bad in [
        ("aws:PrincipalTag/team", "ops"),
        ("aws:RequestedRegion", "eu-west-1"),
        ("aws:SecureTransport", False),
    ]:
        assert not allowed(RequestContext(SESSION, "s3:GetObject", OBJECT_ARN, good | {key: bad}), [p])


def test_condition_keys_are_case_insensitive_values_case_sensitive() -> None:
    p = identity(stmt(Condition={"StringEquals": {"AWS:SourceVpce": "vpce-1a2b"}}))
    assert allowed(RequestContext(SESSION, "s3:GetObject", OBJECT_ARN, {"aws:sourcevpce": "vpce-1a2b"}), [p])
    assert not allowed(
        RequestContext(SESSION, "s3:GetObject", OBJECT_ARN, {"aws:sourcevpce": "VPCE-1A2B"}), [p]
    )


def test_arn_like_matches_segment_wise_where_string_like_does_not() -> None:
    # The example from reference_policies_elements_condition_operators.html#Conditions_ARN.
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    request = ctx(aws__SourceArn=value)
    assert allowed(request, [identity(stmt(Condition={"StringLike": {"aws:SourceArn": pattern}}))])
    assert not allowed(request, [identity(stmt(Condition={"ArnLike": {"aws:SourceArn": pattern}}))])


def test_derived_principal_keys() -> None:
    by_role = identity(stmt(Condition={"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}))
    assert allowed(ctx(SESSION), [by_role])
    assert allowed(ctx(OTHER_SESSION), [by_role])
    assert not allowed(ctx(ALICE), [by_role])
    typed = identity(
        stmt(
            Condition={
                "StringEquals": {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalType": "AssumedRole"},
                "Bool": {"aws:PrincipalIsAWSService": "false"},
                "Null": {"aws:username": "true"},
            }
        )
    )
    assert allowed(ctx(SESSION), [typed])
    named = identity(stmt(Condition={"StringEquals": {"aws:username": "alice", "aws:PrincipalType": "User"}}))
    assert allowed(ctx(ALICE), [named]) and not allowed(ctx(BOB), [named])
    ids = identity(stmt(Condition={"StringLike": {"aws:userid": "AROAEXAMPLE:*"}}))
    assert allowed(ctx(Principal.role_session(ACCOUNT, "R", "s", role_id="AROAEXAMPLE")), [ids])
    # The caller's context overrides what is derived.
    assert not allowed(ctx(SESSION, aws__PrincipalArn=f"arn:aws:iam::{ACCOUNT}:role/Other"), [by_role])
    path_role = Principal.role_session(ACCOUNT, "R", "s", role_path="/service-role/")
    assert path_role.arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/R/s"
    assert path_role.effective_arn == f"arn:aws:iam::{ACCOUNT}:role/service-role/R"
    svc = resource_policy(
        stmt(Principal="*", Condition={"StringEquals": {"aws:PrincipalServiceName": "events.amazonaws.com"}})
    )
    assert allowed(ctx(EVENTS), [], svc) and not allowed(ctx(SESSION), [], svc)


# --------------------------------------------------------------------------- policy variables


def test_variables_in_resource() -> None:
    home = identity(stmt(action="s3:*", resource="arn:aws:s3:::my-bucket/home/${aws:username}/*"))
    assert allowed(ctx(ALICE, resource="arn:aws:s3:::my-bucket/home/alice/notes.txt"), [home])
    assert not allowed(ctx(ALICE, resource="arn:aws:s3:::my-bucket/home/bob/notes.txt"), [home])
    # A role session has no aws:username: the variable has no value and matches nothing.
    assert not allowed(ctx(SESSION, resource="arn:aws:s3:::my-bucket/home//notes.txt"), [home])
    defaulted = identity(
        stmt(action="s3:*", resource="arn:aws:s3:::my-bucket/home/${aws:username, 'shared'}/*")
    )
    assert allowed(ctx(SESSION, resource="arn:aws:s3:::my-bucket/home/shared/x"), [defaulted])
    assert allowed(ctx(ALICE, resource="arn:aws:s3:::my-bucket/home/alice/x"), [defaulted])
    assert not allowed(ctx(ALICE, resource="arn:aws:s3:::my-bucket/home/shared/x"), [defaulted])
    tagged = identity(stmt(action="s3:*", resource="arn:aws:s3:::${aws:PrincipalTag/team}-data/*"))
    assert not allowed(ctx(ALICE, resource="arn:aws:s3:::ml-data/x"), [tagged])
    request = RequestContext(ALICE, "s3:GetObject", "arn:aws:s3:::ml-data/x", {"aws:principaltag/TEAM": "ml"})
    assert allowed(request, [tagged])


def test_variables_in_condition_values() -> None:
    same_account = resource_policy(
        stmt(
            Principal={"Service": "events.amazonaws.com"},
            action="sqs:SendMessage",
            Condition={"StringEquals": {"aws:SourceAccount": "${aws:ResourceAccount}"}},
        )
    )
    ok = RequestContext(
        EVENTS, "sqs:SendMessage", QUEUE_ARN, {"aws:SourceAccount": ACCOUNT, "aws:ResourceAccount": ACCOUNT}
    )
    assert allowed(ok, [], same_account)
    bad = RequestContext(
        EVENTS,
        "sqs:SendMessage",
        QUEUE_ARN,
        {"aws:SourceAccount": "999999999999", "aws:ResourceAccount": ACCOUNT},
    )
    assert not allowed(bad, [], same_account)
    prefix = identity(stmt(Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}))
    assert allowed(ctx(ALICE, s3__prefix="home/alice/docs/"), [prefix])
    assert not allowed(ctx(ALICE, s3__prefix="home/bob/"), [prefix])
    arn = identity(
        stmt(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:events:*:${aws:PrincipalAccount}:rule/*"}})
    )
    assert allowed(ctx(aws__SourceArn=RULE_ARN), [arn])
    # Unresolved variable in a negated condition: nothing equals null, so StringNotEquals holds.
    negated = identity(stmt(Condition={"StringNotEquals": {"s3:prefix": "${aws:username}"}}))
    assert allowed(ctx(SESSION, s3__prefix="x"), [negated])


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a${*}b", "a*b", True),
        ("a${*}b", "axb", False),
        ("what${?}", "what?", True),
        ("what${?}", "whatx", False),
        ("cost${$}", "cost$", True),
        ("${*}*", "*anything", True),
        ("${ * }", "*", True),
        ("${not a variable}", "${not a variable}", True),
    ],
)
def test_special_character_variables(pattern: str, value: str, expected: bool) -> None:
    p = identity(stmt(Condition={"StringLike": {"test:key": pattern}}))
    assert allowed(ctx(test__key=value), [p]) is expected


def test_variables_need_version_2012_10_17() -> None:
    old = Policy(
        {
            "Version": "2008-10-17",
            "Statement": [stmt(action="s3:*", resource="arn:aws:s3:::b/${aws:username}")],
        }
    )
    assert not allowed(ctx(ALICE, resource="arn:aws:s3:::b/alice"), [old])
    assert allowed(ctx(ALICE, resource="arn:aws:s3:::b/${aws:username}"), [old])
    unversioned = Policy({"Statement": [stmt(Condition={"StringEquals": {"k": "${aws:username}"}})]})
    assert allowed(ctx(ALICE, k="${aws:username}"), [unversioned])


def test_multivalued_key_is_not_a_variable() -> None:
    p = identity(stmt(Condition={"StringEquals": {"test:key": "${aws:TagKeys}"}}))
    assert not allowed(ctx(test__key="a", aws__TagKeys=["a"]), [p])


# --------------------------------------------------------------------------- unknown keys


def test_unknown_condition_keys_are_reported() -> None:
    p = identity(
        stmt(action="s3:ListBucket", resource=BUCKET_ARN, Condition={"StringLike": {"s3:Prefix": "home/*"}})
    )
    request = ctx(action="s3:ListBucket", resource=BUCKET_ARN)
    assert evaluate(request, [p], None).unknown_keys == frozenset({"s3:Prefix"})
    assert evaluate(request, [p], None, known_keys=frozenset({"s3:prefix"})).unknown_keys == frozenset()
    assert (
        evaluate(
            ctx(action="s3:ListBucket", resource=BUCKET_ARN, s3__prefix="home/x"), [p], None
        ).unknown_keys
        == frozenset()
    )
    # Statements that do not apply to the request are not consulted.
    assert evaluate(ctx(action="s3:GetObject"), [p], None).unknown_keys == frozenset()
    assert (
        evaluate(ctx(action="s3:ListBucket", resource="arn:aws:s3:::other"), [p], None).unknown_keys
        == frozenset()
    )


def test_unknown_keys_in_variables_derived_keys_and_resource_policies() -> None:
    p = identity(
        stmt(
            resource="arn:aws:s3:::${aws:PrincipalTag/team}-data/*",
            Condition={"StringEquals": {"aws:username": "x", "test:Other": "${aws:SourceVpc}"}},
        )
    )
    d = evaluate(ctx(), [p], None)
    assert d.unknown_keys == frozenset({"aws:principaltag/team"})  # resource fails before conditions
    d = evaluate(
        ctx(resource="arn:aws:s3:::-data/x"), [p], None, known_keys=frozenset({"aws:principaltag/team"})
    )
    assert d.unknown_keys == frozenset()  # the Resource doesn't match: conditions never consulted
    q = identity(stmt(Condition={"StringEquals": {"aws:username": "x", "test:Other": "${aws:SourceVpc}"}}))
    assert evaluate(ctx(), [q], None).unknown_keys == frozenset({"test:Other", "aws:sourcevpc"})
    res = resource_policy(
        stmt(Principal={"AWS": ALICE_ARN}, Condition={"Bool": {"aws:SecureTransport": "true"}}),
        stmt(Principal="*", Condition={"StringEquals": {"aws:SourceVpce": "v"}}),
    )
    assert evaluate(ctx(SESSION), [], res).unknown_keys == frozenset({"aws:SourceVpce"})


# --------------------------------------------------------------------------- messages


def test_messages() -> None:
    request = ctx(SESSION, "s3:GetObject", OBJECT_ARN)
    d = evaluate(request, [], None)
    assert denial_message(request, d) == (
        f"User: {SESSION_ARN} is not authorized to perform: s3:GetObject on resource: {OBJECT_ARN} "
        "because no identity-based policy allows the s3:GetObject action"
    )
    d = evaluate(request, [identity(stmt("Deny"))], None)
    assert denial_message(request, d).endswith(
        f"on resource: {OBJECT_ARN} with an explicit deny in an identity-based policy"
    )
    d = evaluate(request, [identity(stmt())], resource_policy(stmt("Deny", Principal="*")))
    assert d.reason("s3:GetObject") == "with an explicit deny in a resource-based policy"
    listing = ctx(ALICE, "s3:ListAllMyBuckets", "*")
    assert denial_message(listing, evaluate(listing, [], None)) == (
        f"User: {ALICE_ARN} is not authorized to perform: s3:ListAllMyBuckets "
        "because no identity-based policy allows the s3:ListAllMyBuckets action"
    )


def test_role_trust_policy_wording_and_allowed_decisions() -> None:
    trust = resource_policy(
        stmt("Deny", Principal={"AWS": ALICE_ARN}, action="sts:AssumeRole", resource=None)
    )
    request = ctx(ALICE, "sts:AssumeRole", ROLE_ARN)
    d = evaluate(request, [identity(stmt())], trust, resource_policy_required=True)
    assert denial_message(request, d, resource_policy_type="role trust policy").endswith(
        "with an explicit deny in the role trust policy"
    )
    d = evaluate(request, [], None, resource_policy_required=True)
    assert (
        d.reason("sts:AssumeRole", "role trust policy")
        == "because no role trust policy allows the sts:AssumeRole action"
    )
    ok = evaluate(ctx(), [identity(stmt())], None)
    assert ok.reason("s3:GetObject") == ""
    with pytest.raises(ValueError, match="allowed"):
        denial_message(ctx(), ok)


def test_decision_is_a_plain_value() -> None:
    d = evaluate(ctx(), [], None)
    assert d == Decision(False, False, [], [], frozenset(), "identity")


# --------------------------------------------------------------------------- cost


def test_typical_policy_set_is_precompiled_and_evaluation_never_compiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    role = identity(
        stmt(Sid="Read", action=["s3:GetObject", "s3:ListBucket"], resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"]),
        stmt(
            Sid="Write",
            action="s3:PutObject",
            resource=f"{BUCKET_ARN}/out/*",
            Condition={"StringEquals": {"s3:x-amz-acl": "private"}},
        ),
        stmt(Sid="Home", action="s3:*", resource=f"{BUCKET_ARN}/home/${{aws:username}}/*"),
        stmt(Sid="Queue", action=["sqs:SendMessage", "sqs:GetQueue*"], resource=QUEUE_ARN),
        stmt(
            Sid="Start", action="states:StartExecution", resource=f"arn:aws:states:*:{ACCOUNT}:stateMachine:*"
        ),
        stmt(
            Sid="Batch",
            action="batch:Submit*",
            resource="*",
            Condition={"ArnLike": {"aws:SourceArn": f"arn:aws:events:*:{ACCOUNT}:rule/*"}},
        ),
        stmt(Sid="Logs", action=["logs:CreateLogStream", "logs:PutLogEvents"], resource="*"),
        stmt("Deny", Sid="NoDelete", action="s3:Delete*", resource="*"),
        stmt("Deny", Sid="TLS", action="*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
    )
    bucket = resource_policy(
        stmt(Sid="Lambda", Principal={"AWS": ROLE_ARN}, action="s3:GetObject", resource=f"{BUCKET_ARN}/*")
    )
    requests = [
        ctx(ALICE, "s3:GetObject", OBJECT_ARN, aws__SecureTransport=True),
        ctx(ALICE, "s3:PutObject", f"{BUCKET_ARN}/home/alice/x", aws__SecureTransport=True),
        ctx(SESSION, "batch:SubmitJob", "*", aws__SourceArn=RULE_ARN, aws__SecureTransport=True),
        ctx(SESSION, "s3:DeleteObject", OBJECT_ARN, aws__SecureTransport=True),
    ]
    expected = [True, True, True, False]
    assert [evaluate(r, [role], bucket).allowed for r in requests] == expected  # warm up

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("a regex was compiled during evaluation")

    compiled = policy_module._compile.cache_info().misses
    monkeypatch.setattr(policy_module.re, "compile", no_compiling)
    for _ in range(50):
        assert [evaluate(r, [role], bucket).allowed for r in requests] == expected
    monkeypatch.undo()
    assert policy_module._compile.cache_info().misses == compiled
