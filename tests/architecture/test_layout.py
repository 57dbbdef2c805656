"""Every emulated or corrected AWS service under sluice/local/ has the same file roles
(docs/architecture.md), and nothing in the repository points outside it."""

from __future__ import annotations

import ast
import re
import subprocess

from tests.helpers import ROOT

LOCAL = ROOT / "sluice" / "local"
# Packages under sluice/local that are not AWS services: the template deployer and the wire
# protocol layer the services share.
NOT_SERVICES = {"deploy", "wire"}
# The names a service package's modules may take for the shared roles.
REQUIRED = {"__init__.py", "backend.py"}
ROLE_NAMES = {"__init__.py", "backend.py", "api.py", "errors.py", "models.py"}


def service_packages() -> list[str]:
    return sorted(
        p.name
        for p in LOCAL.iterdir()
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in NOT_SERVICES
    )


def test_every_service_package_has_the_shared_roles():
    services = service_packages()
    assert {"awslambda", "batch", "events", "iam", "s3", "sns", "stepfunctions"} <= set(services)
    for name in services:
        files = {p.name for p in (LOCAL / name).glob("*.py")}
        missing = REQUIRED - files
        assert not missing, f"sluice/local/{name} lacks {sorted(missing)}"


def test_service_packages_say_what_they_are():
    for name in service_packages():
        doc = ast.get_docstring(ast.parse((LOCAL / name / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"sluice/local/{name}/__init__.py has no docstring saying what it emulates"


def test_moto_corrections_name_the_moto_version_they_target():
    for name in service_packages():
        backend = (LOCAL / name / "backend.py").read_text(encoding="utf-8")
        init = (LOCAL / name / "__init__.py").read_text(encoding="utf-8")
        if re.search(r"^from moto[.\s]|^import moto", backend, re.M):
            assert "moto 5.2.5" in backend + init, (
                f"sluice/local/{name} patches moto without naming its version"
            )


def test_no_other_module_is_named_like_a_role_in_a_non_service_way():
    # api.py is a wire protocol, backend.py state and behaviour: the top of sluice/local holds
    # only the process, the endpoint and moto's configuration.
    top = sorted(p.name for p in LOCAL.glob("*.py"))
    assert top == ["__init__.py", "cloud.py", "endpoint.py", "moto_config.py"]


def test_the_repository_refers_to_no_file_outside_it():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = []
    # The design notes outside the repository, and the development machine's checkout paths
    # (spelled in pieces so this line does not match itself).
    outside = re.compile(
        "|".join([r"\.\./shared/", "AWS" + "-FACTS", "DESIGN" + r"\.md", "/wor" + "k/(main|shared)" + r"\b"])
    )
    for name in tracked.splitlines():
        if name.startswith("bench/results/") or not name.endswith(
            (".py", ".md", ".yaml", ".toml", ".json", "Makefile")
        ):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{name}:{number}")
    assert not offenders, f"references to files outside the repository: {offenders}"
