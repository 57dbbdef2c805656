"""How the local cloud configures moto 5.2.5 (process-wide: moto's backends are globals).

- Step Functions runs state machines (`execute_state_machine`); its service tasks call
  `http://localhost:$MOTO_PORT`, so MOTO_PORT is set to the endpoint's real port before any
  execution can start.
- moto's own Batch and Lambda would need Docker; they are never reached (the endpoint routes
  `batch` and `lambda` elsewhere) but are told not to use it anyway.
- The corrections in sluice.local.stepfunctions.backend / s3 / sns are installed with the callbacks of
  the running local cloud, and removed again by `unconfigure`.
- moto's state-machine interpreter logs every task failure, caught or not, at ERROR with the
  whole state's repr; those reach users through the execution's status, error and history, so
  its logger is quieted while the local cloud runs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, cast

from moto.core.config import default_user_config
from moto.moto_api._internal.models import moto_api_backend

from sluice.local.iam import backend as iam
from sluice.local.s3 import backend as s3
from sluice.local.sns import backend as sns
from sluice.local.sns.backend import Outbox
from sluice.local.stepfunctions import backend as stepfunctions
from sluice.local.wire import botodata

EventEmitter = stepfunctions.EventEmitter
_INTERPRETER_LOG = logging.getLogger("moto.stepfunctions.parser")
KEY_BUFFER = "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"
DEFAULT_AMIS = "MOTO_EC2_LOAD_DEFAULT_AMIS"


@dataclass(frozen=True)
class SavedSettings:
    """What `configure` changed, for `unconfigure` to put back."""

    moto_port: str | None
    log_level: int
    config: dict[str, Any]
    key_buffer: str | None = None
    default_amis: str | None = None


def configure(
    port: int,
    *,
    emit: EventEmitter,
    hold: stepfunctions.PendingHold,
    outbox: Outbox,
    role_credentials: stepfunctions.RoleCredentials | None = None,
) -> SavedSettings:
    """Configure moto for an endpoint on `port`, starting from empty backends."""
    saved = SavedSettings(
        moto_port=os.environ.get("MOTO_PORT"),
        key_buffer=os.environ.get(KEY_BUFFER),
        default_amis=os.environ.get(DEFAULT_AMIS),
        log_level=_INTERPRETER_LOG.level,
        config={
            name: dict(cast(dict[str, Any], default_user_config.get(name, {})))
            for name in ("stepfunctions", "batch", "lambda", "iam")
        },
    )
    # AWS managed policies (AWSLambdaBasicExecutionRole, ...) exist in every account; local IAM
    # evaluates the template's roles with them, so they load when the IAM backend is created.
    default_user_config["iam"] = {"load_aws_managed_policies": True}
    # EC2's ~1,300 default AMIs are built whenever an EC2 backend is (the VPC the template's
    # compute environment uses): ~0.9 s of `local up` and again at its stop, for images nothing in
    # the app reads (Batch jobs here are host processes). moto's own test suite turns them off too.
    os.environ[DEFAULT_AMIS] = "false"
    moto_api_backend.reset()  # a new cloud holds nothing from earlier moto users in this process
    os.environ["MOTO_PORT"] = str(port)
    # moto spools every object over ~5 MiB to a temp file and reads it back for the MD5; held in
    # memory instead, uploads run 10-30% faster (bench/README.md). Objects above 1 GiB still spool.
    os.environ[KEY_BUFFER] = saved.key_buffer or str(1024**3)
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    default_user_config["batch"] = {"use_docker": False}
    default_user_config["lambda"] = {"use_docker": False}
    _INTERPRETER_LOG.setLevel(logging.CRITICAL)
    botodata.install()  # boto3 sessions made from here on share parsed botocore data
    iam.install_managed_policy_cache()
    stepfunctions.install(emit, hold, role_credentials)
    s3.install(emit)
    sns.install(outbox)
    return saved


def unconfigure(saved: SavedSettings) -> None:
    """Undo `configure`: remove the corrections and forget every resource moto holds."""
    stepfunctions.uninstall()
    s3.uninstall()
    sns.uninstall()
    botodata.uninstall()
    iam.uninstall_managed_policy_cache()
    # The settings first: moto's reset re-creates every backend in place before dropping it, and
    # with this cloud's IAM setting each IAM backend would load AWS's managed policies again
    # (~1 s of `local up`'s stop).
    default_user_config.update(saved.config)  # type: ignore[typeddict-item]
    moto_api_backend.reset()
    _INTERPRETER_LOG.setLevel(saved.log_level)
    restore = (
        ("MOTO_PORT", saved.moto_port),
        (KEY_BUFFER, saved.key_buffer),
        (DEFAULT_AMIS, saved.default_amis),
    )
    for name, value in restore:
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
