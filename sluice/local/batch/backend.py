"""The local AWS Batch engine: the public face the endpoint server and tests use.

Threads (all started by :meth:`BatchEngine.start`, all joined by :meth:`BatchEngine.stop`):
- the scheduler thread sleeps on the scheduler's condition variable, places RUNNABLE jobs and
  starts their processes;
- the executor's I/O thread reads job output and notices exits;
- a timer thread enforces attempt timeouts and SIGKILL grace periods;
- an event thread hands Batch Job State Change events to ``emit_event``;
- a log thread ships job output to CloudWatch Logs in batches.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from sluice.local.batch.api import BatchApi
from sluice.local.batch.container import LocalImage, RoleCredentials, baseline_environment, build_launch
from sluice.local.batch.executor import Executor, LaunchError
from sluice.local.batch.logsink import CloudWatchLogSink, LoggingSink, LogSink
from sluice.local.batch.models import MILLI, Attempt, Job
from sluice.local.batch.reclaim import (
    DEFAULT_GRACE_SECONDS,
    ReclaimCandidate,
    ReclaimPolicy,
    choose_share,
    host_terminated_reason,
)
from sluice.local.batch.registry import Registries
from sluice.local.batch.scheduler import RECLAIM, TIMEOUT, TIMEOUT_REASON, Scheduler
from sluice.local.batch.statechange import EventDispatcher, discard_event
from sluice.local.batch.timers import Timers
from sluice.local.batch.zygote import ZygoteExecutor

log = logging.getLogger(__name__)

DEFAULT_LOG_GROUP = "/aws/batch/job"
# "If the container is still running after 30 seconds, a SIGKILL signal is sent"
# https://docs.aws.amazon.com/batch/latest/userguide/job_timeouts.html
CONTAINER_STOP_SECONDS = 30.0


def _no_image(image: str) -> LocalImage | None:
    return None


def _drop_output(events: list[tuple[int, str]]) -> None:
    pass


class BatchEngine:
    """AWS Batch on one machine: the Batch REST-JSON API, a scheduler, and jobs as processes.

    Local-only knobs beyond AWS's API:
    - ``max_local_vcpus`` / ``max_local_memory_mib``: what all running jobs may hold of this
      machine together (default: its cores and its physical memory), on top of each compute
      environment's ``maxvCpus``.
    - ``timeout_scale``: multiplies attempt timeouts and the 30 s stop grace. 1.0 is AWS's
      behaviour; tests use a small value so a 60 s timeout (the API minimum) passes quickly.
      Settable while the engine runs (``engine.timeout_scale = ...``); it applies to attempts
      that start running afterwards.
    - ``time_limit_scale``: the same for job queues' jobStateTimeLimitActions (whose minimum is
      600 s); it applies to jobs found stuck in RUNNABLE afterwards (timelimits.py).
    - ``reclaim_seed``: seeds the random choices of Spot reclaim injection.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        endpoint_url: str | None = None,
        emit_event: Callable[[dict[str, Any]], None] = discard_event,
        image_resolver: Callable[[str], LocalImage | None] = _no_image,
        max_local_vcpus: float | None = None,
        executor: Executor | None = None,
        max_local_memory_mib: int | None = None,
        timeout_scale: float = 1.0,
        reclaim_seed: int = 0,
        role_credentials: RoleCredentials | None = None,
    ) -> None:
        if timeout_scale <= 0:
            raise ValueError("timeout_scale must be positive")
        self.region = region
        self.account_id = account_id
        self.endpoint_url = endpoint_url
        self._image_resolver = image_resolver
        self._images: dict[str, LocalImage | None] = {}
        self._executor = executor
        self._timeout_scale = timeout_scale
        self._baselines: dict[str, dict[str, str]] = {}
        self._role_credentials = role_credentials
        self._events = EventDispatcher(emit_event)
        self._timers = Timers()
        # One log sink per region: a job's output goes to CloudWatch Logs in the job's region.
        self._sinks: dict[str, LogSink] = {}
        self._sinks_started = False
        self._sink = self._sink_for(region)
        self._rng = random.Random(reclaim_seed)
        self._reclaim_grace = DEFAULT_GRACE_SECONDS
        self._policy: ReclaimPolicy | None = None
        self.registry = Registries(region, account_id)
        vcpus = max_local_vcpus if max_local_vcpus is not None else float(os.cpu_count() or 1)
        self._max_local_vcpus = float(vcpus)
        self.scheduler = Scheduler(
            self.registry,
            self._events,
            max_vcpu_milli=int(vcpus * MILLI),
            max_memory_mib=max_local_memory_mib or _physical_memory_mib(),
            stop_attempt=self._stop_attempt,
            call_later=self._timers.call_later,
        )
        self.lock = self.scheduler.cond
        self._api = BatchApi(self.scheduler, self._ecs_cluster if endpoint_url else None)
        self._ecs_clients: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._timers.start()
        self._events.start()
        with self.lock:
            self._sinks_started = True
            sinks = list(self._sinks.values())
        for sink in sinks:
            sink.start()
        # Batch's default log group exists before any job runs, as in an account where Batch is
        # used: "By default, AWS Batch enables the awslogs log driver to send log information to
        # CloudWatch Logs" in the /aws/batch/job group
        # (https://docs.aws.amazon.com/batch/latest/userguide/using_awslogs.html).
        self._sink.create_group_later(DEFAULT_LOG_GROUP)
        if self._executor is None:
            # Python job images fork from a pre-imported zygote; anything else is exec'ed.
            self._executor = ZygoteExecutor()
        self._thread = threading.Thread(target=self._run, name="batch-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Kill running attempts and join every thread the engine started."""
        with self.lock:
            self._stopping = True
            self.lock.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self._executor is not None:
            self._executor.close()
        self._timers.close()
        self._events.close()
        with self.lock:
            sinks = list(self._sinks.values())
        for sink in sinks:
            sink.shutdown()

    @property
    def max_local_vcpus(self) -> float:
        """vCPUs all running jobs may hold together on this machine (besides each CE's maxvCpus)."""
        return self._max_local_vcpus

    @property
    def timeout_scale(self) -> float:
        return self._timeout_scale

    @timeout_scale.setter
    def timeout_scale(self, value: float) -> None:
        if value <= 0:
            raise ValueError("timeout_scale must be positive")
        with self.lock:
            self._timeout_scale = value

    @property
    def time_limit_scale(self) -> float:
        """Multiplies the job queues' jobStateTimeLimitActions maxTimeSeconds (1.0 = AWS's clock)."""
        return self.scheduler.time_limits.scale

    @time_limit_scale.setter
    def time_limit_scale(self, value: float) -> None:
        if value <= 0:
            raise ValueError("time_limit_scale must be positive")
        with self.lock:
            self.scheduler.time_limits.scale = value

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until published events were delivered and job output was shipped."""
        deadline = time.monotonic() + timeout
        with self.lock:
            sinks = list(self._sinks.values())
        return self._events.wait_idle(timeout) and all(
            [sink.flush(max(0.0, deadline - time.monotonic())) for sink in sinks]
        )

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The Batch REST-JSON API as boto3 sends it (POST /v1/submitjob, ...)."""
        return self._api(environ, start_response)

    # -- Spot reclaim injection -----------------------------------------------------------------------

    def reclaim(self, *, fraction: float | None = None, job_id: str | None = None) -> list[str]:
        """Reclaim running attempts: a share of all of them, or one job's (an array's: its children's).

        Returns the IDs of the jobs whose attempts were reclaimed.
        """
        if (fraction is None) == (job_id is None):
            raise ValueError("give either fraction or job_id")
        with self.lock:
            running = [
                (job, attempt)
                for job, attempt in self.scheduler.running.items()
                if attempt.stop is None and not attempt.exited
            ]
            if job_id is not None:
                target = self.scheduler.find_job(job_id)
                if target is None:
                    raise ValueError(f"no job {job_id}")
                chosen = [(job, attempt) for job, attempt in running if job is target or job.parent is target]
            else:
                assert fraction is not None
                chosen = choose_share(running, fraction, self._rng)
            for _, attempt in chosen:
                self._stop_attempt(attempt, RECLAIM, host_terminated_reason(attempt))
            return [job.job_id for job, _ in chosen]

    def set_reclaim_policy(
        self,
        fraction: float,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        stage_filter: Callable[[ReclaimCandidate], bool] | None = None,
        seed: int | None = None,
    ) -> None:
        """Reclaim each attempt that starts running with probability `fraction` (0 turns it off).

        `stage_filter` picks which attempts are eligible; it runs under the engine lock, so it
        must be quick and must not call the engine.
        """
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        with self.lock:
            if seed is not None:
                self._rng.seed(seed)
            self._reclaim_grace = grace_seconds
            self._policy = ReclaimPolicy(fraction, stage_filter, self._rng) if fraction else None

    # -- the scheduler thread -------------------------------------------------------------------------

    def _run(self) -> None:
        scheduler = self.scheduler
        while True:
            with self.lock:
                while not (scheduler.dirty or self._stopping):
                    self.lock.wait()
                if self._stopping:
                    return
                launches = scheduler.next_launches()
            for job, attempt in launches:
                self._launch(job, attempt)

    def _launch(self, job: Job, attempt: Attempt) -> None:
        assert self._executor is not None
        region = _region_of(job)
        with self.lock:
            sink = self._sink_for(region)
        destination = self._log_destination(job, attempt)
        if destination:
            # The awslogs driver needs the group before the container starts.
            sink.ensure_group(destination[0])
        try:
            image = self._image(job.spec.container["image"])
        except Exception as error:  # resolving the image is this engine's "docker pull"
            log.exception("Could not resolve image %s", job.spec.container["image"])
            self._launch_failed(job, attempt, f"CannotPullContainerError: {error}")
            return
        try:
            spec = build_launch(
                job, attempt, image, self._baseline(region), self.endpoint_url, self._role_credentials
            )
            on_output = partial(sink.write, *destination) if destination else _drop_output
            process = self._executor.launch(spec, on_output, partial(self._on_exit, job, attempt))
        except Exception as error:  # LaunchError, or anything else that keeps the container from starting
            if not isinstance(error, LaunchError):
                log.exception("Could not start %s", job.job_id)
            self._launch_failed(job, attempt, f"CannotStartContainerError: {error}")
            return
        with self.lock:
            attempt.process = process
            if destination:
                attempt.log_group = destination[0]
                sink.open(*destination)
            self.scheduler.attempt_running(job, attempt, destination[1] if destination else None)
            if attempt.stop is not None:  # terminated while STARTING
                self._signal_stop(attempt)
            elif job.spec.timeout_seconds is not None:
                delay = job.spec.timeout_seconds * self._timeout_scale
                attempt.timer = self._timers.call_later(delay, partial(self._on_timeout, attempt))
            if self._policy is not None and attempt.stop is None and self._policy.picks(job, attempt):
                self._stop_attempt(attempt, RECLAIM, host_terminated_reason(attempt))
            if attempt.early_exit is not None:
                self._attempt_done(job, attempt, attempt.early_exit)

    def _launch_failed(self, job: Job, attempt: Attempt, error: str) -> None:
        with self.lock:
            self.scheduler.attempt_finished(job, attempt, None, launch_error=error)

    def _image(self, image: str) -> LocalImage | None:
        if image not in self._images:
            resolved = self._image_resolver(image)
            if resolved is None:
                log.warning(
                    "Image %s has no local Docker context: its jobs run their command directly on this host",
                    image,
                )
            self._images[image] = resolved
        return self._images[image]

    def _ecs_cluster(self, cluster_arn: str, create: bool) -> None:
        """Create or delete a compute environment's cluster in ECS (its region), through the endpoint."""
        region, name = cluster_arn.split(":")[3], cluster_arn.rsplit("/", 1)[1]
        client = self._ecs_clients.get(region)
        if client is None:
            import boto3

            client = self._ecs_clients[region] = boto3.session.Session().client(
                "ecs",
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
            )
        try:
            if create:
                client.create_cluster(clusterName=name)
            else:
                client.delete_cluster(cluster=name)
        except Exception as error:  # the compute environment works without it
            log.warning("Could not %s ECS cluster %s: %s", "create" if create else "delete", name, error)

    def _sink_for(self, region: str) -> LogSink:
        """The log sink of a region, made (and started, once the engine runs) on first use."""
        sink = self._sinks.get(region)
        if sink is None:
            sink = self._sinks[region] = (
                CloudWatchLogSink(endpoint_url=self.endpoint_url, region=region)
                if self.endpoint_url
                else LoggingSink()
            )
            if self._sinks_started:
                sink.start()
        return sink

    def _baseline(self, region: str) -> dict[str, str]:
        """The host part of a job's environment; AWS_REGION is the job's region."""
        baseline = self._baselines.get(region)
        if baseline is None:
            baseline = self._baselines[region] = baseline_environment(region, self.endpoint_url)
            if region != self.region:  # the engine's process environment names its own region
                baseline["AWS_REGION"] = baseline["AWS_DEFAULT_REGION"] = region
        return baseline

    @staticmethod
    def _log_destination(job: Job, attempt: Attempt) -> tuple[str, str] | None:
        """(log group, log stream) for an awslogs definition; None when it logs elsewhere.

        Streams are named as AWS names Batch's, ``jobDefinitionName/default/ecs_task_id``
        (https://docs.aws.amazon.com/batch/latest/userguide/job_states.html), i.e. ECS's
        ``<awslogs-stream-prefix>/<container name>/<task id>`` with the definition's name as the
        default prefix. "Each container attempt receives a log stream name when they reach the
        RUNNING status" (API_AttemptContainerDetail): every attempt is a new task, so retries
        never share a stream.
        """
        config = job.spec.container.get("logConfiguration") or {"logDriver": "awslogs"}
        if config.get("logDriver") != "awslogs":
            return None
        options = config.get("options") or {}
        prefix = options.get("awslogs-stream-prefix", job.spec.definition.name)
        return options.get("awslogs-group", DEFAULT_LOG_GROUP), f"{prefix}/default/{attempt.task_id}"

    # -- attempts ending or being stopped -------------------------------------------------------------

    def _on_exit(self, job: Job, attempt: Attempt, exit_code: int) -> None:
        with self.lock:
            if not attempt.running:  # exited before _launch marked it RUNNING
                attempt.early_exit = exit_code
                return
            self._attempt_done(job, attempt, exit_code)

    def _attempt_done(self, job: Job, attempt: Attempt, exit_code: int) -> None:
        """The attempt's process exited (caller holds the lock). The job stays RUNNING until its
        output is in CloudWatch Logs: whoever sees it terminal in DescribeJobs can read every
        line it wrote, as on AWS, where the task stops after its log driver flushed."""
        self._timers.cancel(attempt.timer)
        attempt.timer = None
        attempt.exited = True
        if attempt.log_group and attempt.log_stream:
            self._sink_for(_region_of(job)).close(
                attempt.log_group, attempt.log_stream, partial(self._attempt_shipped, job, attempt, exit_code)
            )
        else:
            self.scheduler.attempt_finished(job, attempt, exit_code)

    def _attempt_shipped(self, job: Job, attempt: Attempt, exit_code: int) -> None:
        """The attempt's last output was sent (from the log thread, or at once without logs)."""
        with self.lock:
            if not self._stopping:
                self.scheduler.attempt_finished(job, attempt, exit_code)

    def _on_timeout(self, attempt: Attempt) -> None:
        with self.lock:
            if attempt.running and attempt.stopped_at is None and not attempt.exited:
                self._stop_attempt(attempt, TIMEOUT, TIMEOUT_REASON)

    def _stop_attempt(self, attempt: Attempt, kind: str, reason: str) -> None:
        """Stop an attempt (caller holds the lock); the first reason given is the one recorded."""
        if attempt.stop is not None or attempt.exited:  # exited: only its output is still being sent
            return
        attempt.stop = (kind, reason)
        self._signal_stop(attempt)

    def _signal_stop(self, attempt: Attempt) -> None:
        """SIGTERM now, SIGKILL after the grace period (applied at launch if still STARTING)."""
        process = attempt.process
        if process is None or attempt.stop is None:
            return
        kind = attempt.stop[0]
        grace = self._reclaim_grace if kind == RECLAIM else CONTAINER_STOP_SECONDS * self._timeout_scale
        process.terminate()
        self._timers.call_later(grace, process.kill)


def _region_of(job: Job) -> str:
    """The region in a job's ARN (arn:aws:batch:<region>:<account>:job/<id>)."""
    return job.arn.split(":")[3]


def _physical_memory_mib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return 1 << 20
