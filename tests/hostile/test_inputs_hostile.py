"""Hostile inputs are bounded before they are read: every one is exit 2 naming the file.

Devices and named pipes given where a file is expected, alias bombs in files a kustomization
lists, renders that run away, duplicate mapping keys. Every case runs the real CLI with its
address space capped (`MEMORY_CAP`, inherited by kubectl), so a regression fails the test
instead of taking the machine down; the named-pipe cases would hang without a fix, and
`PIPE_TIMEOUT` turns that into a failure too.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.test_drift_cli import CONFIGMAP, live_configmap, snapshot
from tests.conftest import EXAMPLES, CliResult, GitRepo, run_cli

MEMORY_CAP = 4 * 1024**3  # far above what these commands need, far below the machine
PIPE_TIMEOUT = 30

needs_kustomize = pytest.mark.skipif(
    not (shutil.which("kubectl") or shutil.which("kustomize")),
    reason="needs kubectl or kustomize on PATH (a prerequisite, see README)",
)

POLICY = """\
package hostile.example

deny contains msg if {
    input.kind == "Pod"
    msg := "no bare pods"
}
"""
EXAMPLE_KEY = EXAMPLES / "keys" / "EXAMPLE-ONLY-release.pub"
EXAMPLE_MODEL = EXAMPLES / "models" / "acme-models" / "fraud-scorer" / "v3"
EXAMPLE_SIGNATURE = EXAMPLES / "gitops" / "attestations" / "ml-prod" / "fraud-scorer" / "model.sig"


def alias_bomb(levels: int = 9) -> str:
    """A ConfigMap of a few hundred bytes that expands to 10**levels strings."""
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: lol}",
        "data:",
        '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def cli(*args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*args, env=env, timeout=PIPE_TIMEOUT, max_memory_bytes=MEMORY_CAP)


def assert_refused(result: CliResult, *expected: str) -> None:
    """Exit 2, no traceback, and every expected text (the file, what is wrong) in stderr."""
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err, result.err
    for text in expected:
        assert text in result.err, (text, result.err)


# --- devices and named pipes, wherever a file is read -----------------------------------------


@dataclass(frozen=True)
class World:
    """Good inputs for every command, so that only the one hostile file is wrong."""

    tmp: Path
    repo: Path
    snapshot: Path
    policy: Path
    resource: Path

    def drift(self, repo: GitRepo) -> CliResult:
        """`auditor drift` of the `app` folder of `repo` against the world's snapshot."""
        argv = ["--repo", str(repo.path), "--path", "app", "--live-snapshot", str(self.snapshot)]
        return cli("drift", *argv)

    def config(self, repo: GitRepo, limits: str) -> Path:
        """An auditor.yaml for the `app` folder of `repo` with these `limits`."""
        path = self.tmp / "auditor.yaml"
        path.write_text(
            f"git: {{repo: {repo.path}, paths: [app]}}\n"
            f"clusters: [{{name: c, snapshot: {self.snapshot}}}]\n"
            f"limits: {limits}\n"
        )
        return path

    def trust_policy(self, authority: str) -> Path:
        path = self.tmp / "trust.yaml"
        path.write_text(
            textwrap.dedent(
                f"""\
                trust:
                  authorities:
                    - name: release
                      {authority}
                  models:
                    - match: {{namespace: "*", name: "*"}}
                      require: [release]
                """
            )
        )
        return path


@pytest.fixture
def world(tmp_path: Path, git_repo: GitRepo) -> World:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "pods.rego").write_text(POLICY)
    resource = tmp_path / "configmap.yaml"
    resource.write_text(CONFIGMAP)
    live = snapshot(tmp_path, live_configmap())
    return World(tmp_path, git_repo.path, live, policy, resource)


@pytest.fixture(params=["named pipe", "character device"])
def hostile(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A path that is not a regular file: reading it blocks forever or never ends."""
    if request.param == "named pipe":
        path = tmp_path / "hostile.yaml"
        os.mkfifo(path)  # no writer: a plain open() blocks forever
        return path, "named pipe"
    return Path("/dev/zero"), "character device"  # endless zero bytes


Command = Callable[[World, str], tuple[list[str], dict[str, str] | None]]


def _verify(world: World, trust: Path, signature: str = str(EXAMPLE_SIGNATURE)) -> list[str]:
    model = str(EXAMPLE_MODEL)
    return ["verify", "model", model, "--signature", signature, "--trust-policy", str(trust)]


COMMANDS: dict[str, Command] = {
    "drift --live-snapshot": lambda w, h: (
        ["drift", "--repo", str(w.repo), "--live-snapshot", h],
        None,
    ),
    "drift --config": lambda w, h: (
        ["drift", "--repo", str(w.repo), "--live-snapshot", str(w.snapshot), "--config", h],
        None,
    ),
    "audit --config": lambda w, h: (["audit", "--config", h], None),
    "drift --kubeconfig": lambda w, h: (["drift", "--repo", str(w.repo), "--kubeconfig", h], None),
    "KUBECONFIG": lambda w, h: (["drift", "--repo", str(w.repo)], {"KUBECONFIG": h}),
    "policy eval --policy": lambda w, h: (["policy", "eval", "--policy", h, str(w.resource)], None),
    "policy eval --data": lambda w, h: (
        ["policy", "eval", "--policy", str(w.policy), "--data", h, str(w.resource)],
        None,
    ),
    "policy eval --inventory": lambda w, h: (
        ["policy", "eval", "--policy", str(w.policy), "--inventory", h, str(w.resource)],
        None,
    ),
    "policy eval RESOURCE_FILE": lambda w, h: (
        ["policy", "eval", "--policy", str(w.policy), h],
        None,
    ),
    "verify --signature": lambda w, h: (
        _verify(w, w.trust_policy(f"key: {EXAMPLE_KEY}"), signature=h),
        None,
    ),
    "verify --trust-policy": lambda w, h: (_verify(w, Path(h)), None),
    "verify evidence ENVELOPE": lambda w, h: (
        ["verify", "evidence", h, "--key", str(EXAMPLE_KEY)],
        None,
    ),
    "trust key": lambda w, h: (_verify(w, w.trust_policy(f"key: {h}")), None),
    "trust certificate_chain": lambda w, h: (
        _verify(w, w.trust_policy(f"certificate_chain: [{h}]")),
        None,
    ),
    "trust sigstore trusted_root": lambda w, h: (
        _verify(
            w,
            w.trust_policy(
                "sigstore: {issuer: https://issuer.example, subject: a@example.com, "
                f"trusted_root: {h}}}"
            ),
        ),
        None,
    ),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_device_or_named_pipe_is_refused_by_name_never_read(
    command: str, world: World, hostile: tuple[Path, str]
) -> None:
    path, kind = hostile
    argv, env = COMMANDS[command](world, str(path))
    result = cli(*argv, env=env)
    assert_refused(result, str(path), kind)


# --- alias bombs behind a kustomization --------------------------------------------------------

BOMB_LAYOUTS: dict[str, dict[str, str]] = {
    # the bomb in a file the kustomization lists as a resource
    "resource": {
        "app/kustomization.yaml": "resources: [config.yaml, bomb.yaml]\n",
        "app/config.yaml": CONFIGMAP,
        "app/bomb.yaml": alias_bomb(),
    },
    # in a patch file
    "patch": {
        "app/kustomization.yaml": "resources: [config.yaml]\npatches:\n  - path: bomb.yaml\n",
        "app/config.yaml": CONFIGMAP,
        "app/bomb.yaml": alias_bomb(),
    },
    # in a resource of a base the overlay includes
    "base resource": {
        "app/kustomization.yaml": "resources: [../base]\n",
        "base/kustomization.yaml": "resources: [config.yaml, bomb.yaml]\n",
        "base/config.yaml": CONFIGMAP,
        "base/bomb.yaml": alias_bomb(),
    },
    # in a component's patch
    "component": {
        "app/kustomization.yaml": "resources: [config.yaml]\ncomponents: [../extra]\n",
        "app/config.yaml": CONFIGMAP,
        "extra/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
            "patchesStrategicMerge: [bomb.yaml]\n"
        ),
        "extra/bomb.yaml": alias_bomb(),
    },
}


@needs_kustomize
@pytest.mark.parametrize("layout", sorted(BOMB_LAYOUTS))
def test_alias_bomb_in_a_listed_file_never_reaches_kustomize(
    layout: str, git_repo: GitRepo, world: World
) -> None:
    files = BOMB_LAYOUTS[layout]
    for path, content in files.items():
        git_repo.write(path, content)
    git_repo.commit()
    bomb = next(p for p in files if p.endswith("bomb.yaml"))

    result = world.drift(git_repo)

    # the guard's own words: kustomize, had it run, would have died of memory or said otherwise
    assert_refused(result, f"{bomb}@", "aliases expand to more than")


@needs_kustomize
def test_alias_bomb_in_an_inline_patch_never_reaches_kustomize(
    git_repo: GitRepo, world: World
) -> None:
    inline = textwrap.indent(alias_bomb(), "      ")
    git_repo.write(
        "app/kustomization.yaml",
        f"resources: [config.yaml]\npatches:\n  - patch: |\n{inline}",
    )
    git_repo.write("app/config.yaml", CONFIGMAP)
    git_repo.commit()

    result = world.drift(git_repo)

    assert_refused(result, "app/kustomization.yaml@", "patches[0].patch", "aliases expand")


@needs_kustomize
def test_a_generator_file_is_size_checked_but_never_parsed_as_yaml(
    git_repo: GitRepo, world: World
) -> None:
    # configMapGenerator files are data, not YAML: a script full of `*` and `<<` is fine
    git_repo.write(
        "app/kustomization.yaml",
        "configMapGenerator:\n  - name: scripts\n    namespace: ml\n    files: [run.sh]\n"
        "generatorOptions: {disableNameSuffixHash: true}\n",
    )
    git_repo.write("app/run.sh", "cat <<EOF\n*a *b: [\nEOF\nls *.yaml\n")
    git_repo.commit()
    live = live_configmap()
    live["metadata"] = {"name": "scripts", "namespace": "ml"}
    live["data"] = {"run.sh": "cat <<EOF\n*a *b: [\nEOF\nls *.yaml\n"}
    world.snapshot.write_text(json.dumps(live))

    result = world.drift(git_repo)

    assert result.code == 0, result.err


@needs_kustomize
def test_a_generator_file_over_the_size_limit_never_reaches_kustomize(
    git_repo: GitRepo, world: World
) -> None:
    git_repo.write(
        "app/kustomization.yaml", "configMapGenerator:\n  - name: blob\n    files: [big.bin]\n"
    )
    git_repo.write("app/big.bin", b"x" * 4096)
    git_repo.commit()

    result = cli("drift", "--config", str(world.config(git_repo, "{max_manifest_bytes: 1024}")))

    assert_refused(result, "app/big.bin@", "4096 bytes is over the 1024-byte limit")


# --- kustomize runs with a time and memory limit ----------------------------------------------


RENDER_LIMITS = {
    # kustomize (Go) reserves more address space than this before it reads a file: a render
    # that needs more memory than allowed looks exactly like this to auditor
    "memory": ("{render_memory_bytes: 268435456}", "ran out of memory"),
    "time": ("{render_timeout_seconds: 0.001}", "did not finish"),
}


@needs_kustomize
@pytest.mark.parametrize("limit", sorted(RENDER_LIMITS))
def test_a_render_over_its_limits_is_a_clear_error_naming_the_kustomization(
    limit: str, git_repo: GitRepo, world: World
) -> None:
    limits, message = RENDER_LIMITS[limit]
    git_repo.write("app/kustomization.yaml", "resources: [config.yaml]\n")
    git_repo.write("app/config.yaml", CONFIGMAP)
    git_repo.commit()

    result = cli("drift", "--config", str(world.config(git_repo, limits)))

    key = limits.strip("{}").split(":")[0]
    assert_refused(result, "app/kustomization.yaml@", message, f"limits.{key}")


@needs_kustomize
def test_a_render_larger_than_the_output_limit_is_refused_while_it_is_written(
    git_repo: GitRepo, world: World
) -> None:
    git_repo.write("app/kustomization.yaml", "resources: [config.yaml]\n")
    git_repo.write("app/config.yaml", CONFIGMAP + "  blob: " + "x" * 4000 + "\n")
    git_repo.commit()

    result = cli("drift", "--config", str(world.config(git_repo, "{max_snapshot_bytes: 2048}")))

    assert_refused(result, "app/kustomization.yaml@", "output is over the 2048-byte limit")


# --- duplicate mapping keys, refused as kubectl refuses them ---------------------------------

DUPLICATE_NAME = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: model-config
  namespace: ml
  name: other-config
data:
  threshold: "0.8"
"""


def test_a_duplicate_key_in_a_git_manifest_is_refused_with_file_and_line(
    git_repo: GitRepo, world: World
) -> None:
    git_repo.write("ml/config.yaml", DUPLICATE_NAME)
    git_repo.commit()

    result = cli("drift", "--repo", str(git_repo.path), "--live-snapshot", str(world.snapshot))

    assert_refused(result, "ml/config.yaml@", ":6:", "duplicate key 'name' (first at line 4)")


DUPLICATE_NAME_JSON = (
    '{"apiVersion": "v1", "kind": "ConfigMap",\n'
    ' "metadata": {"name": "model-config", "namespace": "ml",\n'
    '              "name": "other-config"}}\n'
)


@pytest.mark.parametrize(
    ("name", "content", "line", "first"),
    [("live.yaml", DUPLICATE_NAME, 6, 4), ("live.json", DUPLICATE_NAME_JSON, 3, 2)],
)
def test_a_duplicate_key_in_a_snapshot_is_refused_with_file_and_line(
    world: World, tmp_path: Path, name: str, content: str, line: int, first: int
) -> None:
    live = tmp_path / name
    live.write_text(content)

    result = cli("drift", "--repo", str(world.repo), "--live-snapshot", str(live))

    assert_refused(result, f"{live}:{line}:", f"duplicate key 'name' (first at line {first})")


def test_a_duplicate_key_in_auditor_yaml_is_refused_with_file_and_line(
    world: World, tmp_path: Path
) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"git: {{repo: {world.repo}}}\n"
        f"clusters: [{{name: c, snapshot: {world.snapshot}}}]\n"
        "fail_on: high\n"
        "fail_on: info\n"
    )

    result = cli("audit", "--config", str(config))

    assert_refused(result, f"{config}:4:", "duplicate key 'fail_on' (first at line 3)")


@needs_kustomize
def test_a_duplicate_key_in_a_listed_file_is_refused_before_kustomize(
    git_repo: GitRepo, world: World
) -> None:
    git_repo.write("app/kustomization.yaml", "resources: [config.yaml]\n")
    git_repo.write("app/config.yaml", DUPLICATE_NAME)
    git_repo.commit()

    result = world.drift(git_repo)

    assert_refused(result, "app/config.yaml@", ":6:", "duplicate key 'name'")


# --- a limit is a ceiling, not an allocation ------------------------------------------------


def test_a_generous_size_limit_reserves_no_memory(world: World, tmp_path: Path) -> None:
    # a 16 GiB snapshot limit once meant a 16 GiB read buffer for a 300-byte file: under a
    # memory cap (a container, ulimit -v) every audit then died of MemoryError, exit 4
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"git: {{repo: {world.repo}}}\n"
        f"clusters: [{{name: c, snapshot: {world.snapshot}}}]\n"
        f"limits: {{max_snapshot_bytes: {16 * 1024**3}}}\n"
    )

    result = cli("drift", "--config", str(config))

    assert result.code == 0, result.err
