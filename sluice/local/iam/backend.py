"""Local IAM: who is calling, what their policies allow, and the record of every decision.

- `Identities` gives every principal its own credentials: the person at the keyboard (an IAM
  user created per `local up`, with administrator rights), each role a Lambda function, a Batch
  job or a state machine runs as (sessions made by moto 5.2.5's STS, so GetCallerIdentity
  answers the session ARN, after the role's trust policy allowed the service to assume it), and
  AWS service principals acting on a resource's behalf (EventBridge delivering for a rule).
- `Authorizer` evaluates each request's IAM actions and resources (sluice.local.iam.actions)
  with AWS's evaluation logic (sluice.local.iam.policy) against the caller's identity policies
  (inline and managed, read from moto's IAM) and the resource's policy (bucket, topic, queue,
  key, Lambda permissions). Parsed policies are cached per principal and invalidated by any
  IAM write through the endpoint.
- `AuditLog` appends every denial (or, in audit mode, every would-be denial) to `iam.jsonl` and
  every (principal, action, statement) first used to `iam-usage.jsonl` in the state directory:
  the least-privilege report reads both.

AWS behaviour followed: docs/aws-behaviour.md#iam-policy-evaluation.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.sts.models import sts_backends

from sluice.local.iam.actions import RESOLVE_KMS_ALIAS, Authorization, known_condition_keys
from sluice.local.iam.policy import (
    ContextValue,
    Decision,
    Policy,
    PolicyError,
    Principal,
    RequestContext,
    StatementRef,
    denial_message,
    evaluate,
)

log = logging.getLogger(__name__)

Mode = Literal["enforce", "audit", "off"]
MODES: tuple[Mode, ...] = ("enforce", "audit", "off")
IdentityKind = Literal["user", "role", "service"]

ADMIN_USER = "sluice-local-admin"
ADMIN_POLICY_NAME = "AdministratorAccess"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
PARTITION = "aws"
# Global condition keys every request context carries here, and the ones known to be absent
# from direct calls (docs/aws-behaviour.md#iam-policy-evaluation). The principal's own keys
# (aws:PrincipalArn, aws:username, ...) are derived by sluice.local.iam.policy itself.
_ALWAYS_KNOWN = frozenset(
    {
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:sourceip",
        "aws:requestedregion",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:viaawsservice",
        "aws:calledvia",
        "aws:multifactorauthpresent",
        "aws:tokenissuetime",
    }
)


# Recorded with the s3:ListBucket check a missing object's 404 needs (Authorizer.check_missing_object).
MISSING_OBJECT_NOTE = (
    "the requested key does not exist: S3 answers 404 NoSuchKey only to a caller allowed "
    "s3:ListBucket on the bucket, 403 AccessDenied otherwise"
)


class RoleAssumeError(Exception):
    """A service could not assume a role (it does not exist, or its trust policy says no)."""


@dataclass(frozen=True)
class Identity:
    """One set of credentials and the principal they stand for."""

    access_key: str
    secret_key: str
    session_token: str | None
    principal: Principal
    kind: IdentityKind
    name: str  # user name, role name, or service principal
    source_arn: str | None = None  # a service principal acting for this resource
    source_account: str | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The variables a process signs with (as Lambda and ECS set them)."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    @property
    def group(self) -> str:
        """The ARN reports group by: the role for every session of it, else the caller."""
        return self.principal.effective_arn if self.kind != "service" else self.name


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_access_key(prefix: str) -> str:
    return prefix + _random(string.ascii_uppercase + string.digits, 16)


def new_secret_key() -> str:
    return _random(string.ascii_letters + string.digits + "+/", 40)


class Identities:
    """Credentials for every principal of the local account, and lookup by access key."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._by_key: dict[str, Identity] = {}
        self._sessions: dict[tuple[str, str, str], Identity] = {}
        self._services: dict[tuple[str, str | None], Identity] = {}
        self._trust_decisions: dict[tuple[str, str, str], bool] = {}
        self.admin: Identity | None = None

    @property
    def _iam(self) -> Any:
        return iam_backends[self.account_id][PARTITION]

    def _remember(self, identity: Identity) -> Identity:
        self._by_key[identity.access_key] = identity
        return identity

    def create_admin(self, fixed_key: tuple[str, str] | None = None) -> Identity:
        """The person's identity: an IAM user with administrator rights and a new key.

        `fixed_key` (access key, secret) replaces the generated key, for test suites written for
        other emulators that sign with constants such as `testing`; only on explicit request.
        """
        iam = self._iam
        user = iam.create_user(region_name=self.region, user_name=ADMIN_USER, path="/", tags=[])
        user = user[0] if isinstance(user, tuple) else user
        iam.put_user_policy(ADMIN_USER, ADMIN_POLICY_NAME, json.dumps(ADMIN_POLICY))
        if fixed_key is not None:
            access_key, secret_key = fixed_key
        else:
            key = iam.create_access_key(ADMIN_USER, prefix="AKIA")
            access_key, secret_key = key.access_key_id, key.secret_access_key
        principal = Principal.user(self.account_id, ADMIN_USER, userid=getattr(user, "id", None))
        with self._lock:
            self.admin = self._remember(Identity(access_key, secret_key, None, principal, "user", ADMIN_USER))
        return self.admin

    def role_session(self, role_arn: str, session_name: str, service: str) -> Identity:
        """A session of `role_arn` as `service` (e.g. lambda.amazonaws.com) assumes it.

        The role must exist and its trust policy must let `service` call sts:AssumeRole, as on
        AWS (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html).
        Sessions are cached per (role, session name, service).
        """
        cache_key = (role_arn, session_name, service)
        with self._lock:
            cached = self._sessions.get(cache_key)
        if cached is not None:
            return cached
        role_name = role_arn.rsplit("/", 1)[-1]
        role = self._iam.roles.get(self._role_id(role_name))
        if role is None:
            raise RoleAssumeError(f"role {role_arn} does not exist")
        if not self._trusts(role_arn, _document_text(role.assume_role_policy_document), service):
            raise RoleAssumeError(f"the trust policy of {role_arn} does not allow {service} to assume it")
        assumed = sts_backends[self.account_id][PARTITION].assume_role(
            region_name=self.region,
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy="",
            duration=43200,
            external_id="",
        )
        principal = Principal.role_session(
            self.account_id, role_name, assumed.session_name, role_path=role.path, role_id=role.id
        )
        identity = Identity(
            assumed.access_key_id,
            assumed.secret_access_key,
            assumed.session_token,
            principal,
            "role",
            role_name,
        )
        with self._lock:
            self._sessions[cache_key] = identity
            return self._remember(identity)

    def _trusts(self, role_arn: str, document: str, service: str) -> bool:
        """Whether the trust policy lets `service` assume the role; parsed once per document,
        since every Batch job (and array child) gets a session of its own."""
        key = (role_arn, document, service)
        allowed = self._trust_decisions.get(key)
        if allowed is None:
            trust = Policy(document, f"trust policy of {role_arn}", resource_based=True)
            allowed = evaluate(
                RequestContext(Principal.aws_service(service), "sts:AssumeRole", role_arn, {}),
                [],
                trust,
                resource_policy_required=True,
            ).allowed
            self._trust_decisions[key] = allowed
        return allowed

    def _role_id(self, role_name: str) -> str:
        for role_id, role in self._iam.roles.items():
            if role.name == role_name:
                return str(role_id)
        return ""

    def service(self, service: str, source_arn: str | None = None) -> Identity:
        """Credentials for an AWS service principal acting for `source_arn` (a rule, a bucket)."""
        with self._lock:
            cached = self._services.get((service, source_arn))
            if cached is not None:
                return cached
            identity = Identity(
                new_access_key("ASIA"),
                new_secret_key(),
                None,
                Principal.aws_service(service),
                "service",
                service,
                source_arn=source_arn,
                source_account=self.account_id if source_arn else None,
            )
            self._services[(service, source_arn)] = identity
            return self._remember(identity)

    def lookup(self, access_key: str) -> Identity | None:
        """The identity of a key: ours, an IAM user's key, or a session made through STS."""
        with self._lock:
            found = self._by_key.get(access_key)
        if found is not None:
            return found
        iam = self._iam
        for user in list(iam.users.values()):
            for key in user.access_keys:
                if key.access_key_id == access_key and key.status == "Active":
                    principal = Principal.user(self.account_id, user.name, path=user.path, userid=user.id)
                    return Identity(access_key, key.secret_access_key, None, principal, "user", user.name)
        assumed = sts_backends[self.account_id][PARTITION].get_assumed_role_from_access_key(access_key)
        if assumed is not None:
            role_name = assumed.role_arn.rsplit("/", 1)[-1]
            principal = Principal.role_session(self.account_id, role_name, assumed.session_name)
            return Identity(
                access_key, assumed.secret_access_key, assumed.session_token, principal, "role", role_name
            )
        return None


def _document_text(document: Any) -> str:
    """moto keeps documents as given: JSON text, sometimes URL-encoded, or a dict."""
    if isinstance(document, Mapping):
        return json.dumps(document)
    text = str(document or "")
    return unquote(text) if text.lstrip().startswith("%7B") else text


def _default_version_document(policy: Any) -> str:
    for version in getattr(policy, "versions", []):
        if getattr(version, "is_default_version", False):
            return _document_text(version.document)
    return _document_text(getattr(policy, "document", ""))


@dataclass
class Denial:
    """A request the policies do not allow."""

    principal: str
    action: str
    resource: str
    message: str


@dataclass
class AuditLog:
    """Denials (iam.jsonl) and first uses of each allowing statement (iam-usage.jsonl)."""

    directory: Path | None
    denials: list[dict[str, Any]] = field(default_factory=list)
    _used: set[tuple[str, str, str]] = field(default_factory=set)
    _unknown_keys: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def denials_path(self) -> Path | None:
        return self.directory / "iam.jsonl" if self.directory else None

    @property
    def usage_path(self) -> Path | None:
        return self.directory / "iam-usage.jsonl" if self.directory else None

    def _append(self, path: Path | None, record: Mapping[str, Any]) -> None:
        if path is None:
            return
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def denied(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.denials.append(record)
            self._append(self.denials_path, record)

    def used(
        self, identity: Identity, action: str, resource: str, statements: Iterable[StatementRef]
    ) -> None:
        for ref in statements:
            key = (identity.group, action.lower(), str(ref))
            if key in self._used:
                continue
            with self._lock:
                if key in self._used:
                    continue
                self._used.add(key)
                self._append(
                    self.usage_path,
                    {
                        "principal": identity.group,
                        "action": action,
                        "resource": resource,
                        "policy": ref.source,
                        "sid": ref.sid,
                        "statement": ref.index,
                    },
                )

    def unknown_keys(self, keys: Iterable[str], action: str, principal: str) -> None:
        for key in keys:
            if key.lower() in self._unknown_keys:
                continue
            self._unknown_keys.add(key.lower())
            log.warning(
                "IAM: condition key %s (in a policy evaluated for %s by %s) is not known to the local "
                "evaluator; the condition is evaluated as if the key were absent",
                key,
                action,
                principal,
            )


# Resource policies: where each service keeps them, and whether it must grant (KMS).
LambdaPolicyLookup = Callable[[str], str | None]


class Authorizer:
    """AWS's evaluation logic for one account, over moto's IAM and the services' policies."""

    def __init__(
        self,
        identities: Identities,
        audit: AuditLog,
        *,
        mode: Mode = "enforce",
        lambda_policy: LambdaPolicyLookup | None = None,
    ) -> None:
        self.identities = identities
        self.audit = audit
        self.mode: Mode = mode
        self.lambda_policy = lambda_policy
        self._generation = 0
        self._identity_cache: dict[tuple[str, str], tuple[int, list[Policy]]] = {}
        self._parsed: dict[tuple[str, str, bool], Policy] = {}
        self._lock = threading.Lock()

    @property
    def account_id(self) -> str:
        return self.identities.account_id

    def resolve(self, kind: str, value: str) -> str | None:
        """What actions.required cannot know from the request alone (a KMS alias's key)."""
        if kind == RESOLVE_KMS_ALIAS:
            parts = value.split(":", 5)
            region = parts[3] if len(parts) == 6 else self.identities.region
            alias = parts[5] if len(parts) == 6 else value
            try:
                key_id = kms_backends[self.account_id][region].get_key_id_from_alias(alias)
            except Exception:
                return None
            return f"arn:aws:kms:{region}:{self.account_id}:key/{key_id}" if key_id else None
        return None

    def policies_changed(self) -> None:
        """An IAM write went through: identity policies are read again on next use."""
        with self._lock:
            self._generation += 1

    # -- policies ----------------------------------------------------------------------------------

    def _policy(self, text: str, source: str, resource_based: bool) -> Policy | None:
        key = (source, text, resource_based)
        cached = self._parsed.get(key)
        if cached is not None:
            return cached
        try:
            policy = Policy(text, source, resource_based=resource_based)
        except (PolicyError, ValueError) as error:
            log.warning("IAM: %s is not a valid policy (%s); it allows nothing", source, error)
            return None
        with self._lock:
            if len(self._parsed) > 4096:
                self._parsed.clear()
            self._parsed[key] = policy
        return policy

    def identity_policies(self, identity: Identity) -> list[Policy]:
        if identity.kind == "service":
            return []
        cache_key = (identity.kind, identity.name)
        with self._lock:
            generation = self._generation
            cached = self._identity_cache.get(cache_key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        iam = iam_backends[self.account_id][PARTITION]
        documents: list[tuple[str, str]] = []
        holders: list[Any]
        if identity.kind == "user":
            user = iam.users.get(identity.name)
            holders = [user] if user is not None else []
            if user is not None:
                holders += [g for g in iam.groups.values() if user in getattr(g, "users", [])]
            label = f"arn:aws:iam::{self.account_id}:user/{identity.name}"
        else:
            role = next((r for r in iam.roles.values() if r.name == identity.name), None)
            holders = [role] if role is not None else []
            label = f"arn:aws:iam::{self.account_id}:role/{identity.name}"
        for holder in holders:
            owner = getattr(holder, "arn", label)
            for name, document in dict(holder.policies).items():
                documents.append((f"{owner} inline policy {name}", _document_text(document)))
            for arn, managed in dict(holder.managed_policies).items():
                documents.append((f"{owner} managed policy {arn}", _default_version_document(managed)))
        policies = [p for source, text in documents if (p := self._policy(text, source, False)) is not None]
        with self._lock:
            self._identity_cache[cache_key] = (generation, policies)
        return policies

    def resource_policy(self, resource: str) -> tuple[Policy | None, bool]:
        """The resource's own policy, and whether it must grant (KMS key policies)."""
        parts = resource.split(":", 5)
        if len(parts) < 6:
            return None, False
        service, region, resource_part = parts[2], parts[3], parts[5]
        text: str | None = None
        required = False
        source = ""
        try:
            if service == "s3":
                bucket_name = resource_part.split("/", 1)[0]
                bucket = s3_backends[self.account_id][PARTITION].buckets.get(bucket_name)
                raw = getattr(bucket, "policy", None) if bucket is not None else None
                text = raw.decode() if isinstance(raw, bytes) else raw
                source = f"bucket policy of {bucket_name}"
            elif service == "sns":
                topic = sns_backends[self.account_id][region].topics.get(resource)
                text = getattr(topic, "policy", None) if topic is not None else None
                source = f"topic policy of {resource}"
            elif service == "sqs":
                queue = sqs_backends[self.account_id][region].queues.get(resource_part)
                text = getattr(queue, "policy", None) if queue is not None else None
                source = f"queue policy of {resource}"
            elif service == "lambda" and self.lambda_policy is not None:
                text = self.lambda_policy(resource)
                source = f"resource-based policy of {resource}"
            elif service == "logs":
                # CloudWatch Logs resource policies are the account's, one document per name; their
                # statements together are the resource's policy.
                statements: list[Any] = []
                for stored in logs_backends[self.account_id][region].resource_policies.values():
                    document = json.loads(_document_text(stored.policy_document))
                    found = document.get("Statement", [])
                    statements.extend(found if isinstance(found, list) else [found])
                text = json.dumps({"Version": "2012-10-17", "Statement": statements}) if statements else None
                source = f"CloudWatch Logs resource policies ({region})"
            elif service == "kms" and resource_part.startswith("key/"):
                key = kms_backends[self.account_id][region].keys.get(resource_part[4:])
                text = getattr(key, "policy", None) if key is not None else None
                required = True
                source = f"key policy of {resource}"
        except (KeyError, ValueError):
            return None, False
        if not text:
            return None, required
        return self._policy(_document_text(text), source, True), required

    # -- decisions ---------------------------------------------------------------------------------

    def context_for(
        self, identity: Identity, region: str, extra: Mapping[str, ContextValue] | None = None
    ) -> dict[str, ContextValue]:
        now = datetime.now(UTC)
        context: dict[str, ContextValue] = {
            # Loopback HTTP stands in for AWS's TLS endpoints (docs/aws-behaviour.md#iam-policy-evaluation).
            "aws:SecureTransport": True,
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": int(now.timestamp()),
            "aws:SourceIp": "127.0.0.1",
            "aws:RequestedRegion": region,
        }
        if identity.source_arn:
            context["aws:SourceArn"] = identity.source_arn
        if identity.source_account:
            context["aws:SourceAccount"] = identity.source_account
        if extra:
            context.update(extra)
        return context

    def decide(
        self,
        identity: Identity,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue],
    ) -> tuple[RequestContext, Decision]:
        ctx = RequestContext(identity.principal, action, resource, context)
        resource_policy, required = self.resource_policy(resource) if resource != "*" else (None, False)
        known = _ALWAYS_KNOWN | known_condition_keys(action)
        decision = evaluate(
            ctx,
            self.identity_policies(identity),
            resource_policy,
            resource_policy_required=required,
            known_keys=known,
        )
        if decision.unknown_keys:
            self.audit.unknown_keys(decision.unknown_keys, action, identity.principal.arn)
        return ctx, decision

    def check(
        self,
        identity: Identity,
        authorizations: Iterable[Authorization],
        *,
        region: str,
        operation: str,
        extra: Mapping[str, ContextValue] | None = None,
        note: str | None = None,
    ) -> Denial | None:
        """The first denial among the request's authorizations (None: allowed), recorded.

        `note`: why these authorizations were checked, when it is not the request's own
        permission (recorded with the denial, not sent to the caller)."""
        if self.mode == "off":
            return None
        base = self.context_for(identity, region, extra)
        first: Denial | None = None
        for authorization in authorizations:
            context = {**base, **authorization.context}
            for resource in authorization.resources or ("*",):
                ctx, decision = self.decide(identity, authorization.action, resource, context)
                if decision.allowed:
                    self.audit.used(identity, authorization.action, resource, decision.allowing)
                    decision, ctx = self._encrypted_topic(identity, authorization.action, resource, base) or (
                        decision,
                        ctx,
                    )
                    if decision.allowed:
                        continue
                denial = Denial(
                    identity.principal.arn,
                    ctx.action,
                    ctx.resource,
                    denial_message(ctx, decision, resource_policy_type=_policy_type(ctx.resource)),
                )
                self._record(denial, identity, operation, note)
                if first is None:
                    first = denial
                if self.mode == "enforce":
                    return first
        return first if self.mode == "enforce" else None

    def check_missing_object(
        self, identity: Identity, bucket: str, *, region: str, operation: str
    ) -> Denial | None:
        """Whether S3 may tell the caller that the object it asked for does not exist.

        GetObject and HeadObject of a key that does not exist answer 404 (NoSuchKey) only when the
        caller also has s3:ListBucket on the bucket, 403 AccessDenied otherwise
        (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html and
        API_HeadObject.html, "Permissions"; docs/aws-behaviour.md#s3-missing-objects). The
        refusal is recorded as what it is: s3:ListBucket, needed to learn that the key is
        missing. None: 404 stands (allowed, audit mode or IAM off); a Denial: answer AccessDenied.
        """
        return self.check(
            identity,
            [Authorization("s3:ListBucket", (f"arn:aws:s3:::{bucket}",), {})],
            region=region,
            operation=operation,
            note=MISSING_OBJECT_NOTE,
        )

    def _encrypted_topic(
        self, identity: Identity, action: str, topic_arn: str, base: Mapping[str, ContextValue]
    ) -> tuple[Decision, RequestContext] | None:
        """Publishing to an SSE topic also needs kms:GenerateDataKey and kms:Decrypt on its key
        (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html); the first refusal, if any.

        For an AWS service publishing (EventBridge), the KMS request context carries no
        aws:SourceArn/aws:SourceAccount (ND on AWS's pages; docs/aws-behaviour.md#iam-policy-evaluation).
        """
        if action.lower() != "sns:publish" or not topic_arn.startswith("arn:"):
            return None
        key_arn = self._topic_key(topic_arn)
        if key_arn is None:
            return None
        region = topic_arn.split(":")[3]
        context = dict(base)
        if identity.kind == "service":
            for name in ("aws:SourceArn", "aws:SourceAccount"):
                context.pop(name, None)
        context["kms:ViaService"] = f"sns.{region}.amazonaws.com"
        context["kms:CallerAccount"] = self.account_id
        for kms_action in ("kms:GenerateDataKey", "kms:Decrypt"):
            ctx, decision = self.decide(identity, kms_action, key_arn, context)
            if not decision.allowed:
                return decision, ctx
            self.audit.used(identity, kms_action, key_arn, decision.allowing)
        return None

    def _topic_key(self, topic_arn: str) -> str | None:
        region = topic_arn.split(":")[3]
        try:
            topic = sns_backends[self.account_id][region].topics.get(topic_arn)
        except KeyError:
            return None
        key = str(getattr(topic, "kms_master_key_id", "") or "") if topic is not None else ""
        if not key:
            return None
        if key.startswith("arn:aws:kms:") and ":alias/" not in key:
            return key
        if key.startswith("alias/") or ":alias/" in key:
            return self.resolve(RESOLVE_KMS_ALIAS, key)
        return f"arn:aws:kms:{region}:{self.account_id}:key/{key}"

    def record_unmapped(self, identity: Identity, message: str) -> str | None:
        """A request no IAM action matches: denied (enforce) or recorded (audit); the message or None."""
        if self.mode == "off":
            return None
        self._record(Denial(identity.principal.arn, "unknown", "*", message), identity, "unknown")
        return message if self.mode == "enforce" else None

    def _record(self, denial: Denial, identity: Identity, operation: str, note: str | None = None) -> None:
        message = f"{denial.message} ({note})" if note else denial.message
        record: dict[str, Any] = {
            "time": time.time(),
            "mode": self.mode,
            "outcome": "denied" if self.mode == "enforce" else "would-deny",
            "principal": denial.principal,
            "role": identity.group,
            "action": denial.action,
            "resource": denial.resource,
            "operation": operation,
            "message": message,
        }
        if note:
            record["note"] = note
        self.audit.denied(record)
        log.warning("IAM %s: %s", "denied" if self.mode == "enforce" else "audit (would deny)", message)


def _policy_type(resource: str) -> str:
    return "key policy" if ":kms:" in resource else "resource-based policy"


@dataclass
class IamService:
    """Local IAM as the rest of the local cloud sees it."""

    identities: Identities
    authorizer: Authorizer
    audit: AuditLog

    @classmethod
    def create(
        cls,
        *,
        account_id: str,
        region: str,
        mode: Mode,
        state_dir: Path | None,
        lambda_policy: LambdaPolicyLookup | None = None,
    ) -> IamService:
        identities = Identities(account_id, region)
        audit = AuditLog(state_dir)
        return cls(identities, Authorizer(identities, audit, mode=mode, lambda_policy=lambda_policy), audit)

    @property
    def mode(self) -> Mode:
        return self.authorizer.mode

    def credentials_for_role(self, role_arn: str, session_name: str, service: str) -> dict[str, str]:
        """Environment variables for a process running as `role_arn` (RoleAssumeError if not)."""
        return self.identities.role_session(role_arn, session_name, service).environment

    def authorize_service(
        self, service: str, source_arn: str | None, action: str, resource: str, region: str
    ) -> Denial | None:
        """Authorize a call a service makes in-process (EventBridge invoking a Lambda function)."""
        identity = self.identities.service(service, source_arn)
        return self.authorizer.check(
            identity,
            [Authorization(action, (resource,), {})],
            region=region,
            operation=action,
        )


# -- moto 5.2.5's AWS managed policies, parsed once -----------------------------------------------
#
# Every IAM backend moto creates parses its ~1,500 AWS managed policies from one JSON string, and
# moto creates one per partition as soon as a request's access key is looked up (six, most never
# used otherwise): ~0.2 s each on `sluice local up`. The backends still get their own policy
# objects; only the parse of the (read-only) data is shared.

_managed_policy_data: list[dict[str, Any]] = []
_original_aws_policies: list[Callable[[Any], list[Any]]] = []


def _aws_managed_policies(backend: Any) -> list[Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy
    from moto.settings import load_iam_aws_managed_policies

    if not load_iam_aws_managed_policies():
        return []
    if not _managed_policy_data:
        _managed_policy_data.append(json.loads(aws_managed_policies_data))
    return [
        AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)
        for name, data in _managed_policy_data[0].items()
    ]


def install_managed_policy_cache() -> None:
    """Share the parse while a local cloud runs (`moto_config.configure`)."""
    from moto.iam.models import IAMBackend

    if not _original_aws_policies:
        _original_aws_policies.append(IAMBackend._init_aws_policies)
        IAMBackend._init_aws_policies = _aws_managed_policies  # type: ignore[method-assign,assignment]


def uninstall_managed_policy_cache() -> None:
    from moto.iam.models import IAMBackend

    if _original_aws_policies:
        IAMBackend._init_aws_policies = _original_aws_policies.pop()  # type: ignore[method-assign,assignment,unused-ignore]
    _managed_policy_data.clear()
