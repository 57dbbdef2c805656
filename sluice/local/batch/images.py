"""Resolve a Batch job image to a host process, without Docker.

A job definition names an image such as
``123456789012.dkr.ecr.us-east-1.amazonaws.com/<repository>:<tag>``. The repository is an
``AWS::ECR::Repository`` of the deployed stack whose template ``Metadata`` names the Docker
build the way SAM does for image functions (``DockerContext``, ``Dockerfile``, optional
``DockerTag``). The Dockerfile's final stage gives ENV, WORKDIR, ENTRYPOINT and CMD; its
COPY/ADD instructions are mirrored in a host staging directory as symlinks into the
Docker context (``COPY jobkit /app/jobkit`` -> ``<staging>/app/jobkit`` -> ``<context>/jobkit``),
so the job's code runs from the paths the image would have.

Not reproduced: RUN (dependencies come from the project's virtualenv, which runs the
job), USER, and the base image's filesystem. A leading ``python``/``python3`` is the
virtualenv's interpreter (``sys.executable``), whatever version the base image has.
"""

from __future__ import annotations

import atexit
import glob
import io
import json
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dockerfile_parse import DockerfileParser

from sluice.local.deploy.model import DeployedStack

try:
    from sluice.local.batch import LocalImage
except ImportError:  # the Batch engine is optional for the resolver; same fields

    @dataclass(frozen=True)
    class LocalImage:  # type: ignore[no-redef]
        entrypoint: list[str] = field(default_factory=list)
        cmd: list[str] = field(default_factory=list)
        env: dict[str, str] = field(default_factory=dict)
        workdir: str = "."


log = logging.getLogger("sluice.local.batch.images")

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+?)(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>[\w:]+))?$"
)
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# The environment Docker's Python base images start from; $PATH in an ENV line extends
# the host PATH with the virtualenv first, since that is where `python` comes from here.
_BASE_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])


def _substitute(text: str, variables: dict[str, str]) -> str:
    """Dockerfile variable expansion: $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alternative}."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        value = variables.get(name)
        op = match.group("op")
        if op == "-":
            return value if value else match.group("word")
        if op == "+":
            return match.group("word") if value else ""
        return value or ""

    return _VAR.sub(replace, text)


def _key_values(value: str) -> list[tuple[str, str]]:
    """``ENV``/``ARG`` arguments: ``k=v k2="v 2"`` or the legacy ``KEY value with spaces``."""
    first = value.split(None, 1)
    if first and "=" not in first[0]:
        return [(first[0], first[1] if len(first) > 1 else "")]
    pairs = []
    for token in shlex.split(value, posix=True):
        key, _, val = token.partition("=")
        pairs.append((key, val))
    return pairs


def _exec_form(value: str) -> list[str] | None:
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return parsed
    return None


@dataclass
class _Stage:
    name: str | None
    env: dict[str, str] = field(default_factory=dict)
    workdir: PurePosixPath = PurePosixPath("/")
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    # (source on host, destination in the image), in instruction order
    copies: list[tuple[Path, PurePosixPath]] = field(default_factory=list)
    dirs: set[PurePosixPath] = field(default_factory=lambda: {PurePosixPath("/")})


class _DockerfileModel:
    """The parts of a (multi-stage) Dockerfile that matter for running it locally."""

    def __init__(self, dockerfile: Path, context: Path) -> None:
        self.dockerfile = dockerfile
        self.context = context
        parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
        self.stages: list[_Stage] = []
        global_args: dict[str, str] = {}
        stage: _Stage | None = None
        args: dict[str, str] = {}
        for item in parser.structure:
            instruction, value = item["instruction"], item["value"]
            if instruction == "FROM":
                tokens = value.split()
                name = tokens[2] if len(tokens) >= 3 and tokens[1].upper() == "AS" else None
                base = _substitute(tokens[0], global_args) if tokens else ""
                parent = next((s for s in self.stages if s.name == base), None)
                stage = _Stage(name)
                if parent is not None:  # FROM <earlier stage>: inherits its image config
                    stage.env = dict(parent.env)
                    stage.workdir = parent.workdir
                    stage.entrypoint, stage.cmd = list(parent.entrypoint), list(parent.cmd)
                    stage.copies = list(parent.copies)
                    stage.dirs = set(parent.dirs)
                self.stages.append(stage)
                args = dict(global_args)
                continue
            if stage is None:
                if instruction == "ARG":
                    for key, val in _key_values(value):
                        global_args[key] = _substitute(val, global_args)
                continue
            variables = {"PATH": _BASE_PATH, **args, **stage.env}
            if instruction == "ARG":
                for key, val in _key_values(value):
                    args[key] = (
                        global_args.get(key, _substitute(val, variables))
                        if not val
                        else _substitute(val, variables)
                    )
            elif instruction == "ENV":
                for key, val in _key_values(value):
                    stage.env[key] = _substitute(val, {"PATH": _BASE_PATH, **args, **stage.env})
            elif instruction == "WORKDIR":
                stage.workdir = stage.workdir / _substitute(value.strip(), variables)
                stage.dirs.update({stage.workdir, *stage.workdir.parents})
            elif instruction == "ENTRYPOINT":
                stage.entrypoint = _exec_form(value) or ["/bin/sh", "-c", value]
                stage.cmd = []  # Docker resets an inherited CMD when ENTRYPOINT is set
            elif instruction == "CMD":
                stage.cmd = _exec_form(value) or ["/bin/sh", "-c", value]
            elif instruction in ("COPY", "ADD"):
                self._copy(stage, instruction, _substitute(value, variables))
            elif instruction in ("RUN", "USER"):
                log.debug("%s: %s %s is not reproduced locally", dockerfile, instruction, value)

    def _copy(self, stage: _Stage, instruction: str, value: str) -> None:
        args = _exec_form(value) or shlex.split(value)
        from_stage = None
        while args and args[0].startswith("--"):
            flag = args.pop(0)
            if flag.startswith("--from="):
                from_stage = flag.split("=", 1)[1]
        if len(args) < 2:
            return
        *sources, dest_text = args
        dest = PurePosixPath(dest_text)
        if not dest.is_absolute():
            dest = stage.workdir / dest
        # Docker: a destination ending in "/" (or an existing directory, like "." = WORKDIR)
        # receives files by name; a directory source copies its *contents* to the destination.
        into_dir = dest_text.endswith("/") or len(sources) > 1 or dest in stage.dirs
        for source in sources:
            if instruction == "ADD" and re.match(r"^https?://", source):
                log.warning("%s: ADD %s (a URL) is not reproduced locally", self.dockerfile, source)
                continue
            if from_stage is not None:
                self._copy_from_stage(stage, from_stage, source, dest, into_dir)
                continue
            matches = [Path(m) for m in sorted(glob.glob(str(self.context / source)))]
            if not matches:
                log.warning(
                    "%s: %s source %s not found in %s", self.dockerfile, instruction, source, self.context
                )
            for host in matches:
                self._add(
                    stage,
                    host,
                    dest if host.is_dir() or not (into_dir or len(matches) > 1) else dest / host.name,
                )

    @staticmethod
    def _add(stage: _Stage, host: Path, target: PurePosixPath) -> None:
        stage.copies.append((host, target))
        stage.dirs.update(target.parents)
        if host.is_dir():
            stage.dirs.add(target)

    def _copy_from_stage(
        self, stage: _Stage, from_stage: str, source: str, dest: PurePosixPath, into_dir: bool
    ) -> None:
        # Only what the earlier stage itself copied from the context can be mirrored;
        # anything it built with RUN is in the virtualenv instead.
        parent = next((s for s in self.stages if s.name == from_stage), None)
        if parent is None:
            log.warning("%s: COPY --from=%s is not reproduced locally", self.dockerfile, from_stage)
            return
        wanted = PurePosixPath(source)
        if not wanted.is_absolute():
            wanted = parent.workdir / wanted
        for host, target in parent.copies:
            if target == wanted or wanted in target.parents:
                self._add(stage, host, dest / target.relative_to(wanted))
            elif target in wanted.parents and host.is_dir():
                sub = host / wanted.relative_to(target)
                if sub.exists():
                    self._add(stage, sub, dest / sub.name if into_dir and not sub.is_dir() else dest)

    @property
    def final(self) -> _Stage:
        if not self.stages:
            raise ValueError(f"{self.dockerfile} has no FROM instruction")
        return self.stages[-1]


class _Staging:
    """A host directory mirroring the image's filesystem paths with symlinks."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def host_path(self, image_path: PurePosixPath) -> Path:
        return self.root.joinpath(*image_path.parts[1:])

    def _real_dir(self, path: Path) -> None:
        """Make ``path`` a real directory, turning a directory symlink on the way into a
        directory of symlinks (a later COPY adds files inside an earlier one)."""
        if path == self.root:
            return
        self._real_dir(path.parent)
        if path.is_symlink():
            target = path.resolve()
            path.unlink()
            path.mkdir()
            if target.is_dir():
                for child in target.iterdir():
                    (path / child.name).symlink_to(child)
        elif not path.exists():
            path.mkdir()

    def place(self, source: Path, image_path: PurePosixPath) -> None:
        dest = self.host_path(image_path)
        self._real_dir(dest.parent)
        if source.is_dir() and dest.exists() and not dest.is_symlink() and dest.is_dir():
            for child in source.iterdir():  # merge into an existing directory
                self.place(child, image_path / child.name)
            return
        if source.is_dir() and dest.is_symlink() and dest.resolve().is_dir():
            self._real_dir(dest)
            for child in source.iterdir():
                self.place(child, image_path / child.name)
            return
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        elif dest.is_dir():
            shutil.rmtree(dest)
        dest.symlink_to(source.resolve(), target_is_directory=source.is_dir())

    def ensure_dir(self, image_path: PurePosixPath) -> Path:
        path = self.host_path(image_path)
        self._real_dir(path)
        return path


def _map_env_paths(value: str, staging: _Staging, staged_roots: set[str]) -> str:
    """Rewrite ':'-separated absolute paths that live in the staged image tree
    (``PYTHONPATH=/app``) to their host location."""
    parts = []
    for part in value.split(":"):
        image_path = PurePosixPath(part)
        if part.startswith("/") and len(image_path.parts) > 1 and image_path.parts[1] in staged_roots:
            parts.append(str(staging.host_path(image_path)))
        else:
            parts.append(part)
    return ":".join(parts)


def _map_python(argv: list[str]) -> list[str]:
    if argv and _PYTHON.match(argv[0]):
        return [sys.executable, *argv[1:]]
    if len(argv) == 3 and argv[:2] == ["/bin/sh", "-c"]:  # shell form
        words = argv[2].split(None, 1)
        if words and _PYTHON.match(words[0]):
            return ["/bin/sh", "-c", " ".join([shlex.quote(sys.executable), *words[1:]])]
    return argv


class ImageResolver:
    """``resolver(image_uri) -> LocalImage | None`` for the Batch engine.

    With a ``stack``, repositories are looked up in it. Without one (the endpoint builds
    the Batch engine before anything is deployed), the stacks deployed in this process
    from ``project_root`` are used, most recent first.
    """

    def __init__(
        self,
        stack: DeployedStack | Path | None = None,
        project_root: Path | None = None,
        *,
        staging_root: Path | None = None,
    ) -> None:
        if isinstance(stack, (str, Path)):
            project_root, stack = Path(stack), None
        self.stack = stack
        self.project_root = Path(project_root) if project_root is not None else Path.cwd()
        self._own_staging = staging_root is None
        self.staging_root = (
            Path(staging_root) if staging_root else Path(tempfile.mkdtemp(prefix="sluice-images-"))
        )
        if self._own_staging:
            atexit.register(self.close)

    def use_stack(self, stack: DeployedStack) -> None:
        self.stack = stack

    def close(self) -> None:
        if self._own_staging:
            shutil.rmtree(self.staging_root, ignore_errors=True)

    def _stacks(self) -> list[DeployedStack]:
        if self.stack is not None:
            return [self.stack]
        from sluice.local.deploy import deployed_stacks

        root = self.project_root.resolve()
        return [s for s in reversed(deployed_stacks()) if s.project_root is None or s.project_root == root]

    def _repository(self, name: str) -> tuple[DeployedStack, str] | None:
        for stack in self._stacks():
            for logical_id, physical in stack.of_type("AWS::ECR::Repository").items():
                if physical == name:
                    return stack, logical_id
        return None

    def __call__(self, image_uri: str) -> LocalImage | None:
        found = _ECR_IMAGE.match(image_uri.strip())
        if not found:
            log.info("image %s is not in an ECR repository of the stack; no local build context", image_uri)
            return None
        repository = self._repository(found.group("repository"))
        if repository is None:
            log.info("ECR repository %s is not a resource of a deployed stack", found.group("repository"))
            return None
        stack, logical_id = repository
        metadata = stack.metadata.get(logical_id) or {}
        if "DockerContext" not in metadata:
            log.warning("%s has no DockerContext Metadata; its image cannot run locally", logical_id)
            return None
        tag = metadata.get("DockerTag")
        if tag and found.group("tag") and tag != found.group("tag"):
            log.info(
                "image tag %s differs from %s's DockerTag %s; using the Docker context",
                found.group("tag"),
                logical_id,
                tag,
            )
        # DockerContext is relative to the template's directory (SAM's rule), which the
        # deployer recorded as the stack's project root.
        base = stack.project_root if stack.project_root is not None else self.project_root
        context = (base / str(metadata["DockerContext"])).resolve()
        dockerfile = context / str(metadata.get("Dockerfile", "Dockerfile"))
        return self.build(dockerfile, context, name=found.group("repository").replace("/", "_"))

    def build(self, dockerfile: Path, context: Path, *, name: str) -> LocalImage:
        """Stage a Dockerfile's final image layout and return how to run it."""
        model = _DockerfileModel(dockerfile, context)
        stage = model.final
        root = self.staging_root / name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        staging = _Staging(root)
        for source, image_path in stage.copies:
            staging.place(source, image_path)
        workdir = staging.ensure_dir(stage.workdir)
        staged_roots = {p.parts[1] for _, p in stage.copies if len(p.parts) > 1} | (
            {stage.workdir.parts[1]} if len(stage.workdir.parts) > 1 else set()
        )
        env = {key: _map_env_paths(value, staging, staged_roots) for key, value in stage.env.items()}
        return LocalImage(
            entrypoint=_map_python(list(stage.entrypoint)),
            cmd=_map_python(list(stage.cmd)) if not stage.entrypoint else list(stage.cmd),
            env=env,
            workdir=str(workdir),
        )
