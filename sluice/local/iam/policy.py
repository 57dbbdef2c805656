"""IAM policy evaluation for one account: identity-based policies plus one resource-based policy.

Pure and standard-library only. `Policy` parses and validates a document once (wildcards and
condition values precompiled); `evaluate` decides one request; `denial_message` renders AWS's
AccessDenied text::

    role = Policy(inline_doc, "role sluice-TriggerRole / inline policy TriggerPolicy")
    bucket = Policy(bucket_doc, "bucket policy of my-bucket", resource_based=True)
    ctx = RequestContext(Principal.role_session(ACCOUNT, "sluice-TriggerRole", "s1"),
                         "s3:GetObject", "arn:aws:s3:::my-bucket/key", {"aws:SecureTransport": True})
    decision = evaluate(ctx, [role], bucket, known_keys=frozenset({"s3:prefix"}))
    if not decision.allowed:
        raise AccessDenied(denial_message(ctx, decision))

The rules, each from the IAM User Guide (https://docs.aws.amazon.com/IAM/latest/UserGuide/):

* reference_policies_evaluation-logic.html (and ..._policy-eval-basics.html): an explicit Deny in
  any applicable policy wins; otherwise, within one account, an Allow in an identity-based
  policy OR in the resource-based policy is enough.
* reference_policies_elements_principal.html: a resource policy's Principal grants directly to a
  user ARN, a role ARN (every session of the role), an assumed-role session ARN, ``*``, or a
  service principal. A Principal naming an *account* (``"123456789012"`` or
  ``arn:aws:iam::123456789012:root``) "delegates authority to the account": it does not by
  itself allow an IAM user or role of that account, whose identity policies must allow the
  request. (Explicit Deny naming the account, though, denies everyone in it.) Names never take
  wildcards, so principals are compared exactly.
* KMS key policies (https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html):
  "Unless the key policy explicitly allows it, you cannot use IAM policies to allow access to a
  KMS key." With ``resource_policy_required=True`` identity Allows count only when the key
  policy has an Allow naming the account for this action; role trust policies use the same mode.
  Identity Denies always count.
* Service principals (``events.amazonaws.com`` acting for itself) have no identity policies;
  only the resource policy can allow them.

What is not modelled: SCPs/RCPs, permissions boundaries, session policies, grants, ACLs,
cross-account requests, ``Federated`` and ``CanonicalUser`` principals (they never match), and
the IAM policy size/grammar limits beyond the structural checks below.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeAlias

__all__ = [
    "ContextValue",
    "Decision",
    "Policy",
    "PolicyError",
    "Principal",
    "RequestContext",
    "StatementRef",
    "denial_message",
    "evaluate",
]

ContextValue: TypeAlias = str | bool | int | Sequence[str]
PolicyKind: TypeAlias = Literal["identity", "resource"]

_VARIABLES_VERSION = "2012-10-17"
_VERSIONS = frozenset({"2012-10-17", "2008-10-17"})


class PolicyError(ValueError):
    """The policy document is not a valid IAM policy (AWS answers MalformedPolicyDocument)."""


# --------------------------------------------------------------------------- principals


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes the request.

    ``arn`` is the caller as AWS writes it in AccessDenied messages (the session ARN
    ``arn:aws:sts::123456789012:assumed-role/Role/Session`` for a role, the user ARN for a
    user). ``principal_arn`` is what ``aws:PrincipalArn`` holds: for a role session the ROLE
    ARN; it defaults to ``arn``. ``service`` marks an AWS service principal acting on its own
    behalf (then ``arn`` is the service name and ``account`` is empty).
    """

    arn: str
    account: str = ""
    principal_arn: str | None = None
    service: str | None = None
    userid: str | None = None

    @classmethod
    def user(cls, account: str, name: str, *, path: str = "/", userid: str | None = None) -> Principal:
        return cls(f"arn:aws:iam::{account}:user{path}{name}", account, userid=userid)

    @classmethod
    def role_session(
        cls,
        account: str,
        role_name: str,
        session_name: str,
        *,
        role_path: str = "/",
        role_id: str | None = None,
    ) -> Principal:
        # The session ARN drops the role's path; aws:PrincipalArn keeps it.
        return cls(
            f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}",
            account,
            principal_arn=f"arn:aws:iam::{account}:role{role_path}{role_name}",
            userid=f"{role_id}:{session_name}" if role_id else None,
        )

    @classmethod
    def root(cls, account: str) -> Principal:
        return cls(f"arn:aws:iam::{account}:root", account, userid=account)

    @classmethod
    def aws_service(cls, service: str) -> Principal:
        return cls(service, "", service=service)

    @property
    def effective_arn(self) -> str:
        """The value of ``aws:PrincipalArn``."""
        return self.principal_arn or self.arn

    @property
    def is_root(self) -> bool:
        return self.service is None and self.arn.endswith(f":iam::{self.account}:root")

    @property
    def principal_type(self) -> str | None:
        if self.service is not None:
            return None
        if self.is_root:
            return "Account"
        for marker, kind in (
            (":user/", "User"),
            (":assumed-role/", "AssumedRole"),
            (":federated-user/", "FederatedUser"),
        ):
            if marker in self.arn:
                return kind
        return None

    @property
    def username(self) -> str | None:
        return self.arn.rsplit("/", 1)[-1] if ":user/" in self.arn else None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request: principal, ``service:Action``, one resource ARN (or ``*``), condition keys.

    ``context`` keys are case-insensitive. A ``bool`` becomes ``"true"``/``"false"``, an ``int``
    its decimal text, a list is a multivalued key. ``aws:PrincipalArn``, ``aws:PrincipalAccount``,
    ``aws:PrincipalType``, ``aws:username``, ``aws:userid``, ``aws:PrincipalIsAWSService`` and
    ``aws:PrincipalServiceName`` are derived from the principal; entries here override them.
    """

    principal: Principal
    action: str
    resource: str = "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)


# Keys evaluate() derives itself; they are never reported as unknown, present or not.
_DERIVED_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:username",
        "aws:userid",
        "aws:principalisawsservice",
        "aws:principalservicename",
    }
)


class _Env:
    """The request context normalised: lower-cased keys, every value a tuple of strings."""

    __slots__ = ("values", "scalars")

    def __init__(self, ctx: RequestContext | None = None) -> None:
        self.values: dict[str, tuple[str, ...]] = {}
        self.scalars: dict[str, str] = {}  # single-valued keys: the only ones usable as ${variables}
        if ctx is None:
            return
        p = ctx.principal
        derived: dict[str, ContextValue | None] = {
            "aws:principalisawsservice": p.service is not None,
            "aws:principalservicename": p.service,
        }
        if p.service is None:
            derived |= {
                "aws:principalarn": p.effective_arn,
                "aws:principalaccount": p.account or None,
                "aws:principaltype": p.principal_type,
                "aws:username": p.username,
                "aws:userid": p.userid,
            }
        for source in (derived, ctx.context):
            for key, value in source.items():
                if value is not None:
                    self._put(key.lower(), value)

    def _put(self, key: str, value: ContextValue) -> None:
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | str):
            text = str(value)
        else:
            self.values[key] = tuple(_scalar_text(v) for v in value)
            self.scalars.pop(key, None)
            return
        self.values[key] = (text,)
        self.scalars[key] = text


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- templates and wildcards

# A string from a policy, split around ${...} policy variables
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html):
# _WILD text keeps * and ? as wildcards; _FIXED is literal (${*}, ${?}, ${$}, a default value);
# _VAR is a context key (lower-cased) with an optional default.
_WILD, _FIXED, _VAR = 0, 1, 2
_Token: TypeAlias = tuple[int, str, str | None]
_VAR_RE = re.compile(r"\$\{([^}]*)\}")
_VAR_DEFAULT_RE = re.compile(r"([^\s,']+)\s*,\s*'((?:[^']|'')*)'")
_VAR_KEY_RE = re.compile(r"[^\s,']+")


def _tokens(text: str, variables: bool) -> tuple[_Token, ...]:
    # Variables exist only in Version 2012-10-17 documents; elsewhere ${...} is literal text.
    if not variables or "${" not in text:
        return ((_WILD, text, None),)
    out: list[_Token] = []
    pos = 0
    for m in _VAR_RE.finditer(text):
        inner = m.group(1).strip()
        if inner in ("*", "?", "$"):
            token: _Token = (_FIXED, inner, None)
        elif d := _VAR_DEFAULT_RE.fullmatch(inner):
            token = (_VAR, d.group(1).lower(), d.group(2).replace("''", "'"))
        elif _VAR_KEY_RE.fullmatch(inner):
            token = (_VAR, inner.lower(), None)
        else:
            continue  # not a variable: stays part of the literal text around it
        if m.start() > pos:
            out.append((_WILD, text[pos : m.start()], None))
        out.append(token)
        pos = m.end()
    if pos < len(text):
        out.append((_WILD, text[pos:], None))
    return tuple(out)


def _resolve(tokens: tuple[_Token, ...], env: _Env | None) -> tuple[tuple[bool, str], ...] | None:
    """(is-wildcard-text, text) parts, or None when a variable has no value and no default.

    A variable "with no value" is effectively null: it equals and is like nothing, so the
    element it is in does not match (reference_policies_variables.html#policy-vars-no-value).
    A multivalued key cannot be a variable.
    """
    parts: list[tuple[bool, str]] = []
    for kind, text, default in tokens:
        if kind == _WILD:
            parts.append((True, text))
        elif kind == _FIXED:
            parts.append((False, text))
        else:
            value = env.scalars.get(text) if env is not None else None
            if value is None:
                if default is None:
                    return None
                value = default
            parts.append((False, value))
    return tuple(parts)


def _variable_keys(tokens: Iterable[_Token], names: dict[str, str]) -> None:
    for kind, key, default in tokens:
        if kind == _VAR and default is None:
            names.setdefault(key, key)


@functools.lru_cache(maxsize=4096)
def _compile(source: str, ignore_case: bool) -> re.Pattern[str]:
    """Every regex this module builds goes through here, so evaluation never recompiles."""
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_WILDCARD_SPLIT_RE = re.compile(r"([*?])")


def _glob_source(parts: Iterable[tuple[bool, str]]) -> str:
    # Whole-string match; * any run of characters (crossing ':' and '/'), ? any one character.
    out: list[str] = []
    for wild, text in parts:
        if not wild:
            out.append(re.escape(text))
            continue
        for chunk in _WILDCARD_SPLIT_RE.split(text):
            out.append(".*" if chunk == "*" else "." if chunk == "?" else re.escape(chunk))
    return "".join(out)


def _arn_source(parts: Sequence[tuple[bool, str]]) -> str:
    # ArnLike/ArnEquals: "Each of the six colon-delimited components of the ARN is checked
    # separately" (reference_policies_elements_condition_operators.html#Conditions_ARN): in the
    # first five a wildcard stops at ':'; the sixth (resource) part may itself contain colons.
    # A pattern with fewer than six parts (e.g. a bare "*") is matched as a whole string.
    if sum(text.count(":") for wild, text in parts if wild) < 5:
        return _glob_source(parts)
    out: list[str] = []
    segment = 0
    for wild, text in parts:
        if not wild:
            out.append(re.escape(text))
            continue
        for ch in text:
            if ch == ":":
                segment += 1
                out.append(":")
            elif ch == "*":
                out.append(".*" if segment >= 5 else "[^:]*")
            elif ch == "?":
                out.append("." if segment >= 5 else "[^:]")
            else:
                out.append(re.escape(ch))
    return "".join(out)


class _Patterns:
    """A list of wildcard patterns matched as one OR; those without variables share one regex."""

    __slots__ = ("static", "dynamic", "arn", "ignore_case")

    def __init__(
        self, token_lists: Iterable[tuple[_Token, ...]], *, arn: bool = False, ignore_case: bool = False
    ) -> None:
        self.arn = arn
        self.ignore_case = ignore_case
        build = _arn_source if arn else _glob_source
        static: list[str] = []
        self.dynamic: list[tuple[_Token, ...]] = []
        for tokens in token_lists:
            if any(kind == _VAR for kind, _, _ in tokens):
                self.dynamic.append(tokens)
            else:
                parts = _resolve(tokens, None)
                assert parts is not None
                static.append(build(parts))
        self.static = _compile("|".join(f"(?:{s})" for s in static), ignore_case) if static else None

    def match(self, value: str, env: _Env) -> bool:
        if self.static is not None and self.static.fullmatch(value):
            return True
        for tokens in self.dynamic:
            parts = _resolve(tokens, env)
            if parts is not None and _compile_parts(parts, self.arn, self.ignore_case).fullmatch(value):
                return True
        return False


@functools.lru_cache(maxsize=4096)
def _compile_parts(parts: tuple[tuple[bool, str], ...], arn: bool, ignore_case: bool) -> re.Pattern[str]:
    # A pattern with its variables substituted: cached by value, so the regex source is
    # built once per distinct substitution, not per request.
    return _compile(_arn_source(parts) if arn else _glob_source(parts), ignore_case)


class _Texts:
    """Policy values compared for equality (StringEquals, Bool): variables substituted."""

    __slots__ = ("static", "dynamic", "fold")

    def __init__(self, token_lists: Iterable[tuple[_Token, ...]], fold: Callable[[str], str]) -> None:
        self.fold = fold
        static: set[str] = set()
        self.dynamic: list[tuple[_Token, ...]] = []
        for tokens in token_lists:
            if any(kind == _VAR for kind, _, _ in tokens):
                self.dynamic.append(tokens)
            else:
                static.add(fold("".join(text for _, text, _ in tokens)))
        self.static = frozenset(static)

    def contains(self, value: str, env: _Env) -> bool:
        value = self.fold(value)
        if value in self.static:
            return True
        for tokens in self.dynamic:
            parts = _resolve(tokens, env)
            if parts is not None and self.fold("".join(text for _, text in parts)) == value:
                return True
        return False


# --------------------------------------------------------------------------- conditions
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html

# lower-cased operator -> (canonical name, family, negated, detail)
_OPERATORS: dict[str, tuple[str, str, bool, str]] = {}
for _name, _family, _negated, _detail in [
    ("StringEquals", "string", False, "eq"),
    ("StringNotEquals", "string", True, "eq"),
    ("StringEqualsIgnoreCase", "string", False, "eqi"),
    ("StringNotEqualsIgnoreCase", "string", True, "eqi"),
    ("StringLike", "string", False, "like"),
    ("StringNotLike", "string", True, "like"),
    ("NumericEquals", "numeric", False, "eq"),
    ("NumericNotEquals", "numeric", True, "eq"),
    ("NumericLessThan", "numeric", False, "lt"),
    ("NumericLessThanEquals", "numeric", False, "le"),
    ("NumericGreaterThan", "numeric", False, "gt"),
    ("NumericGreaterThanEquals", "numeric", False, "ge"),
    ("DateEquals", "date", False, "eq"),
    ("DateNotEquals", "date", True, "eq"),
    ("DateLessThan", "date", False, "lt"),
    ("DateLessThanEquals", "date", False, "le"),
    ("DateGreaterThan", "date", False, "gt"),
    ("DateGreaterThanEquals", "date", False, "ge"),
    ("Bool", "bool", False, ""),
    ("BinaryEquals", "binary", False, ""),
    ("IpAddress", "ip", False, ""),
    ("NotIpAddress", "ip", True, ""),
    ("ArnEquals", "arn", False, ""),  # ArnEquals and ArnLike "behave identically"
    ("ArnLike", "arn", False, ""),
    ("ArnNotEquals", "arn", True, ""),
    ("ArnNotLike", "arn", True, ""),
    ("Null", "null", False, ""),
]:
    _OPERATORS[_name.lower()] = (_name, _family, _negated, _detail)

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}
_EPOCH_RE = re.compile(r"-?\d+(?:\.\d+)?")
_YEAR_MONTH_RE = re.compile(r"\d{4}-\d{2}")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    """W3C ISO 8601 (naive means UTC) or epoch seconds (all digits); as epoch seconds."""
    text = text.strip()
    if _EPOCH_RE.fullmatch(text):
        return float(text)
    if _YEAR_MONTH_RE.fullmatch(text):
        text += "-01"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


_Test: TypeAlias = Callable[[str, _Env], bool]


def _value_tests(family: str, detail: str, raw: list[str], variables: bool, where: str) -> _Test:
    """A test of ONE request value against the policy values, OR-ed (the positive sense)."""
    if family == "string":
        tokens = [_tokens(v, variables) for v in raw]
        if detail == "like":
            return _Patterns(tokens).match
        return _Texts(tokens, str.casefold if detail == "eqi" else str).contains
    if family == "arn":
        return _Patterns([_tokens(v, variables) for v in raw], arn=True).match
    if family == "bool":
        return _Texts([_tokens(v, variables) for v in raw], str.lower).contains
    if family in ("numeric", "date"):
        parse = _number if family == "numeric" else _date
        limits: list[float] = []
        for v in raw:
            parsed = parse(v)
            if parsed is None:
                raise PolicyError(f"{where}: {v!r} is not a valid {family} value")
            limits.append(parsed)
        compare = _COMPARE[detail]

        def test_ordered(value: str, env: _Env) -> bool:
            got = parse(value)
            return got is not None and any(compare(got, limit) for limit in limits)

        return test_ordered
    if family == "binary":
        blobs: set[bytes] = set()
        for v in raw:
            try:
                blobs.add(base64.b64decode(v, validate=True))
            except (binascii.Error, ValueError):
                raise PolicyError(f"{where}: {v!r} is not base-64") from None

        def test_binary(value: str, env: _Env) -> bool:
            # The request value is raw bytes (given as text); base-64 text is accepted too.
            if value.encode() in blobs:
                return True
            try:
                return base64.b64decode(value, validate=True) in blobs
            except (binascii.Error, ValueError):
                return False

        return test_binary
    if family == "ip":
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for v in raw:
            try:
                networks.append(ipaddress.ip_network(v.strip(), strict=False))  # no prefix means /32
            except ValueError:
                raise PolicyError(f"{where}: {v!r} is not an IP address or CIDR range") from None

        def test_ip(value: str, env: _Env) -> bool:
            address = _ip(value)
            return address is not None and any(address in net for net in networks)

        return test_ip
    raise AssertionError(family)  # pragma: no cover


class _Condition:
    __slots__ = ("key", "key_name", "set_op", "if_exists", "negated", "test", "null_wants", "variable_keys")

    def __init__(self, operator: str, key_name: str, raw_values: object, variables: bool) -> None:
        where = f"condition {operator} {key_name!r}"
        rest, self.set_op = operator, ""
        for prefix, set_op in (("foranyvalue:", "any"), ("forallvalues:", "all")):
            if operator.lower().startswith(prefix):
                rest, self.set_op = operator[len(prefix) :], set_op
        self.if_exists = rest.lower().endswith("ifexists")
        if self.if_exists:
            rest = rest[: -len("IfExists")]
        spec = _OPERATORS.get(rest.lower())
        if spec is None:
            raise PolicyError(f"unknown condition operator {operator!r}")
        _, family, self.negated, detail = spec
        if family == "null" and (self.if_exists or self.set_op):
            raise PolicyError(f"{operator!r}: Null takes neither IfExists nor a set operator")
        if not isinstance(key_name, str) or not key_name:
            raise PolicyError(f"condition {operator}: empty condition key")
        self.key, self.key_name = key_name.lower(), key_name
        raw = _condition_values(raw_values, where)
        self.variable_keys: dict[str, str] = {}
        if family in ("string", "arn", "bool"):  # the operators that take policy variables
            for v in raw:
                _variable_keys(_tokens(v, variables), self.variable_keys)
        self.null_wants: frozenset[bool] = frozenset()
        self.test: _Test | None = None
        if family == "null":
            wants: set[bool] = set()
            for v in raw:
                if v.lower() not in ("true", "false"):
                    raise PolicyError(f"{where}: Null takes true or false, not {v!r}")
                wants.add(v.lower() == "true")
            self.null_wants = frozenset(wants)
        else:
            self.test = _value_tests(family, detail, raw, variables, where)

    def holds(self, env: _Env) -> bool:
        values = env.values.get(self.key)
        if self.test is None:  # Null: true means "the key is absent"
            absent = not values
            return absent in self.null_wants
        test = self.test
        if values is None:
            # Missing key: false, except negated operators (true), ...IfExists (true), and the
            # set operators, which see an empty set.
            if self.if_exists:
                return True
            if self.set_op:
                return self.set_op == "all"
            return self.negated
        if self.set_op:
            if not values or values == ("",):  # an empty data set, e.g. an empty string
                return self.set_op == "all"
            # Each request value must (ForAllValues) / one must (ForAnyValue) satisfy the
            # operator; a negated operator is satisfied when it matches none of the values.
            results = ((test(v, env) != self.negated) for v in values)
            return all(results) if self.set_op == "all" else any(results)
        matched = any(test(v, env) for v in values)
        return not matched if self.negated else matched  # values OR-ed; negated ones NOR-ed


def _condition_values(raw: object, where: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float | str):
            out.append(str(item))
        else:
            raise PolicyError(f"{where}: condition values are strings, numbers or booleans, not {item!r}")
    return out


# --------------------------------------------------------------------------- principals in policies


class _Grant(Enum):
    NONE = 0
    ACCOUNT = 1  # names the caller's account: delegation to identity policies
    DIRECT = 2  # names the caller (or everyone)


_ACCOUNT_ROOT_RE = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):root")
_ACCOUNT_ID_RE = re.compile(r"\d{12}")


class _PrincipalSet:
    """A Principal / NotPrincipal element
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html)."""

    __slots__ = ("everyone", "arns", "accounts", "services")

    def __init__(self, raw: object, element: str) -> None:
        self.everyone = False
        self.arns: set[str] = set()
        self.accounts: set[str] = set()
        self.services: set[str] = set()
        if raw == "*":
            self.everyone = True
            return
        if not isinstance(raw, Mapping) or not raw:
            raise PolicyError(f'{element} must be "*" or a map such as {{"AWS": ...}} or {{"Service": ...}}')
        for kind, value in raw.items():
            names = _string_list(value, f"{element}.{kind}")
            if kind == "AWS":
                for name in names:
                    if name == "*":
                        self.everyone = True
                    elif _ACCOUNT_ID_RE.fullmatch(name):
                        self.accounts.add(name)
                    elif m := _ACCOUNT_ROOT_RE.fullmatch(name):
                        self.accounts.add(m.group(1))
                    else:
                        self.arns.add(name)
            elif kind == "Service":
                self.services.update(name.lower() for name in names)
            elif kind not in ("Federated", "CanonicalUser"):
                raise PolicyError(f"{element}: unknown principal type {kind!r}")

    def grant(self, p: Principal) -> _Grant:
        if self.everyone:
            return _Grant.DIRECT
        if p.service is not None:
            return _Grant.DIRECT if p.service.lower() in self.services else _Grant.NONE
        if p.arn in self.arns or p.effective_arn in self.arns:
            return _Grant.DIRECT  # the user, the session, or the role (all of its sessions)
        if p.account in self.accounts:
            return _Grant.DIRECT if p.is_root else _Grant.ACCOUNT
        return _Grant.NONE

    def listed(self, p: Principal) -> list[bool]:
        """For NotPrincipal: is each identity AWS may check for this caller listed?

        AWS "might validate the account first, then the role, and then the assumed-role user"
        (reference_policies_elements_notprincipal.html), so the whole chain counts.
        """
        if self.everyone:
            return [True]
        if p.service is not None:
            return [p.service.lower() in self.services]
        chain = [p.account in self.accounts]
        if not p.is_root:
            chain.append(p.arn in self.arns)
            if p.effective_arn != p.arn:
                chain.append(p.effective_arn in self.arns)
        return chain


# --------------------------------------------------------------------------- statements and policies


@dataclass(frozen=True, slots=True)
class StatementRef:
    """Which statement of which policy: ``source`` is the caller's label for the policy."""

    source: str
    sid: str | None
    index: int  # 0-based position in the Statement list
    kind: PolicyKind

    def __str__(self) -> str:
        return (
            f"{self.source}, statement {self.sid!r}"
            if self.sid
            else f"{self.source}, statement #{self.index}"
        )


_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "NotPrincipal",
        "Condition",
    }
)


def _string_list(value: object, element: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise PolicyError(f"{element} must be a non-empty string or a non-empty list of strings")
    return items


def _one_of(
    raw: Mapping[str, Any], names: tuple[str, str], where: str, *, required: bool
) -> tuple[str, Any] | None:
    present = [n for n in names if n in raw]
    if len(present) > 1:
        raise PolicyError(f"{where}: {names[0]} and {names[1]} cannot both be present")
    if not present:
        if required:
            raise PolicyError(f"{where}: one of {names[0]} or {names[1]} is required")
        return None
    return present[0], raw[present[0]]


class _Statement:
    __slots__ = (
        "ref",
        "deny",
        "actions",
        "not_action",
        "resources",
        "not_resource",
        "principals",
        "not_principal",
        "conditions",
        "condition_keys",
        "resource_keys",
    )

    def __init__(self, raw: object, index: int, policy: Policy, variables: bool) -> None:
        where = f"{policy.source}: statement #{index}"
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where} is not a JSON object")
        if extra := sorted(set(raw) - _STATEMENT_KEYS):
            raise PolicyError(f"{where}: unknown element(s) {', '.join(extra)}")
        sid = raw.get("Sid")
        if sid is not None and not isinstance(sid, str):
            raise PolicyError(f"{where}: Sid must be a string")
        kind: PolicyKind = "resource" if policy.resource_based else "identity"
        self.ref = StatementRef(policy.source, sid or None, index, kind)
        where = f"{policy.source}: statement {sid!r}" if sid else where

        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be Allow or Deny, not {effect!r}")
        self.deny = effect == "Deny"

        # Actions: case-insensitive, * and ? wildcards (reference_policies_elements_action.html,
        # reference_policies_elements_notaction.html).
        action_element = _one_of(raw, ("Action", "NotAction"), where, required=True)
        assert action_element is not None
        name, value = action_element
        actions = _string_list(value, f"{where}: {name}")
        for action in actions:
            if action != "*" and ":" not in action:
                raise PolicyError(f"{where}: {name} {action!r} is not of the form service:action")
        self.not_action = name == "NotAction"
        self.actions = _Patterns([((_WILD, a, None),) for a in actions], ignore_case=True)

        # Resources: case-sensitive wildcards (reference_policies_elements_resource.html,
        # reference_policies_elements_notresource.html). Resource policies may omit the element
        # (role trust policies do): then the statement covers the resource the policy is on.
        resource_element = _one_of(
            raw, ("Resource", "NotResource"), where, required=not policy.resource_based
        )
        self.resources: _Patterns | None = None
        self.not_resource = False
        self.resource_keys: dict[str, str] = {}
        if resource_element is not None:
            name, value = resource_element
            token_lists = [_tokens(r, variables) for r in _string_list(value, f"{where}: {name}")]
            for tokens in token_lists:
                _variable_keys(tokens, self.resource_keys)
            self.resources = _Patterns(token_lists)
            self.not_resource = name == "NotResource"

        principal_element = _one_of(raw, ("Principal", "NotPrincipal"), where, required=policy.resource_based)
        self.principals: _PrincipalSet | None = None
        self.not_principal = False
        if principal_element is not None:
            if not policy.resource_based:
                raise PolicyError(f"{where}: an identity-based policy cannot have {principal_element[0]}")
            self.principals = _PrincipalSet(principal_element[1], principal_element[0])
            self.not_principal = principal_element[0] == "NotPrincipal"

        conditions: list[_Condition] = []
        block = raw.get("Condition", {})
        if not isinstance(block, Mapping):
            raise PolicyError(f"{where}: Condition must be a JSON object")
        for operator, pairs in block.items():
            if not isinstance(pairs, Mapping) or not pairs:
                raise PolicyError(f"{where}: Condition {operator!r} must map condition keys to values")
            conditions.extend(_Condition(operator, key, values, variables) for key, values in pairs.items())
        self.conditions = tuple(conditions)
        keys: dict[str, str] = {}
        for c in conditions:
            keys.setdefault(c.key, c.key_name)
            for k, v in c.variable_keys.items():
                keys.setdefault(k, v)
        self.condition_keys = keys

    def covers_action(self, action: str) -> bool:
        return self.actions.match(action, _NO_ENV) != self.not_action

    def covers_resource(self, resource: str, env: _Env) -> bool:
        if self.resources is None:
            return True
        return self.resources.match(resource, env) != self.not_resource

    def grant(self, p: Principal) -> _Grant:
        assert self.principals is not None
        if not self.not_principal:
            return self.principals.grant(p)
        listed = self.principals.listed(p)
        if self.deny:
            # Deny + NotPrincipal denies unless every identity in the caller's chain is listed.
            return _Grant.DIRECT if not all(listed) else _Grant.NONE
        # Allow + NotPrincipal grants to callers none of whose identities are listed.
        return _Grant.DIRECT if not any(listed) else _Grant.NONE


class Policy:
    """A parsed, validated policy document.

    ``resource_based`` policies (bucket, queue, topic, key, trust policies) must name a
    Principal or NotPrincipal in every statement; identity-based ones must not.
    """

    __slots__ = ("source", "resource_based", "version", "statements", "document")

    def __init__(
        self, document: Mapping[str, Any] | str, source: str = "policy", *, resource_based: bool = False
    ) -> None:
        self.source = source
        self.resource_based = resource_based
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except json.JSONDecodeError as e:
                raise PolicyError(f"{source}: not valid JSON: {e}") from None
        if not isinstance(document, Mapping):
            raise PolicyError(f"{source}: a policy document is a JSON object")
        self.document: Mapping[str, Any] = document
        if extra := sorted(set(document) - {"Version", "Id", "Statement"}):
            raise PolicyError(f"{source}: unknown element(s) {', '.join(extra)}")
        version = document.get("Version")
        if version is not None and version not in _VERSIONS:
            raise PolicyError(f"{source}: Version must be 2012-10-17 or 2008-10-17, not {version!r}")
        self.version: str | None = version
        raw = document.get("Statement")
        if isinstance(raw, Mapping):
            raw = [raw]
        if not isinstance(raw, list):
            raise PolicyError(f"{source}: Statement must be an object or a list of objects")
        variables = version == _VARIABLES_VERSION
        self.statements = tuple(_Statement(s, i, self, variables) for i, s in enumerate(raw))

    def __repr__(self) -> str:
        return f"Policy({self.source!r}, {len(self.statements)} statements)"


_NO_ENV = _Env()


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Decision:
    """The outcome for one request, with the statements behind it.

    ``unknown_keys`` holds condition keys (as the policy spells them) that an applicable
    statement tests but that were neither in the request context nor in ``known_keys``: the
    decision may differ from AWS's, so the caller should warn.
    """

    allowed: bool
    explicit_deny: bool
    allowing: list[StatementRef]
    denying: list[StatementRef]
    unknown_keys: frozenset[str]
    implicit_deny_in: PolicyKind = "identity"  # which policy type an implicit deny is blamed on

    def reason(self, action: str, resource_policy_type: str = "resource-based policy") -> str:
        """AWS's tail of the AccessDenied message
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
        ``because no <type> allows the <action> action`` or ``with an explicit deny in a <type>``.
        ``resource_policy_type`` may be e.g. ``"role trust policy"``. Empty when allowed."""
        if self.allowed:
            return ""
        if self.explicit_deny:
            # "If multiple policy types deny ..., AWS includes only one of those policy types."
            if self.denying[0].kind == "identity":
                return "with an explicit deny in an identity-based policy"
            return f"with an explicit deny in {_with_article(resource_policy_type)}"
        kind = "identity-based policy" if self.implicit_deny_in == "identity" else resource_policy_type
        return f"because no {kind} allows the {action} action"


def _with_article(kind: str) -> str:
    if "trust" in kind:
        return f"the {kind}"
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def denial_message(
    ctx: RequestContext, decision: Decision, *, resource_policy_type: str = "resource-based policy"
) -> str:
    """``User: <arn> is not authorized to perform: <action> on resource: <arn> <reason>``.

    ``on resource:`` is left out for ``*`` (actions without resource-level permissions); a
    service principal is named as ``Service: events.amazonaws.com``.
    """
    if decision.allowed:
        raise ValueError("the request was allowed")
    p = ctx.principal
    who = f"Service: {p.service}" if p.service is not None else f"User: {p.arn}"
    on = "" if ctx.resource == "*" else f" on resource: {ctx.resource}"
    return f"{who} is not authorized to perform: {ctx.action}{on} {decision.reason(ctx.action, resource_policy_type)}"


def _unknown(keys: Mapping[str, str], env: _Env, known: frozenset[str], into: set[str]) -> None:
    for key, name in keys.items():
        if key not in env.values and key not in known and key not in _DERIVED_KEYS:
            into.add(name)


def evaluate(
    ctx: RequestContext,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None,
    *,
    resource_policy_required: bool = False,
    known_keys: frozenset[str] = frozenset(),
) -> Decision:
    """Decide one same-account request (reference_policies_evaluation-logic.html).

    ``identity_policies`` are every policy attached to the caller (user, its groups, or role);
    they are ignored for a service principal. ``resource_policy`` is the policy on the resource,
    if any. ``resource_policy_required`` models KMS key policies and role trust policies: identity
    Allows count only if the resource policy allows the account for this request. ``known_keys``
    (lower-cased) are condition keys the caller knows to be absent for this request.
    """
    env = _Env(ctx)
    p = ctx.principal
    unknown: set[str] = set()
    denying: list[StatementRef] = []
    identity_allows: list[StatementRef] = []
    resource_allows: list[StatementRef] = []
    account_grants: list[StatementRef] = []

    def applies(st: _Statement) -> bool:
        # Resource variables and condition keys are checked for unknowns before they can fail.
        _unknown(st.resource_keys, env, known_keys, unknown)
        if not st.covers_resource(ctx.resource, env):
            return False
        _unknown(st.condition_keys, env, known_keys, unknown)
        return all(c.holds(env) for c in st.conditions)

    if p.service is None:
        for policy in identity_policies:
            if policy.resource_based:
                raise ValueError(f"{policy.source} is resource-based, not an identity-based policy")
            for st in policy.statements:
                if st.covers_action(ctx.action) and applies(st):
                    (denying if st.deny else identity_allows).append(st.ref)

    if resource_policy is not None:
        if not resource_policy.resource_based:
            raise ValueError(f"{resource_policy.source} is not a resource-based policy")
        for st in resource_policy.statements:
            if not st.covers_action(ctx.action):
                continue
            grant = st.grant(p)
            if grant is _Grant.NONE or not applies(st):
                continue
            if st.deny:
                denying.append(st.ref)  # a Deny naming the account denies everyone in it
            elif grant is _Grant.DIRECT:
                resource_allows.append(st.ref)
            else:
                account_grants.append(st.ref)

    # The root user has full access unless something denies it (reference_policies_evaluation-
    # logic_policy-eval-denyallow.html) -- but, like anyone, needs the key policy for KMS.
    identity_allowed = p.service is None and (bool(identity_allows) or p.is_root)
    if resource_policy_required:
        identity_allowed = identity_allowed and bool(account_grants)
    allowed = not denying and (identity_allowed or bool(resource_allows))
    allowing: list[StatementRef] = []
    if identity_allowed:  # for KMS, the key policy's grant to the account is part of the allow
        allowing = [*identity_allows, *account_grants] if resource_policy_required else [*identity_allows]
    allowing.extend(resource_allows)
    blame: PolicyKind = "identity"
    if p.service is not None or (resource_policy_required and not account_grants):
        blame = "resource"
    return Decision(
        allowed=allowed,
        explicit_deny=bool(denying),
        allowing=allowing if allowed else [],
        denying=denying,
        unknown_keys=frozenset(unknown),
        implicit_deny_in=blame,
    )
