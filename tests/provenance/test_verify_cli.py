"""`auditor verify model` end to end through the real entry point, `auditor.cli.main`.

Two tests run it in a subprocess exactly as a pipeline does; the rest call `main` in-process
(same code path, same exit codes and streams) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.gitrepo import GitRepo
from tests.provenance.conftest import (
    KEYLESS_IDENTITY,
    KEYLESS_ISSUER,
    PUBLIC_GOOD_ROOT,
    Chain,
    KeyPair,
    sign_with_certificate,
    sign_with_key,
)

WritePolicy = Callable[..., Path]

# Runs the real entry point (cli.main: error handling, exit codes). The `verify` group is added
# here when auditor.cli does not register it yet, so these tests hold before and after it does.
_ENTRY = (
    "import sys; from auditor import cli; from auditor.cli.verify import verify; "
    "'verify' in cli.cli.commands or cli.cli.add_command(verify); cli.main(sys.argv[1:])"
)


def verify_subprocess(*args: str, cwd: Path | None = None) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-c", _ENTRY, "verify", "model", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


VerifyCli = Callable[..., CliResult]


@pytest.fixture
def verify_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> VerifyCli:
    from auditor import cli
    from auditor.cli.verify import verify

    if "verify" not in cli.cli.commands:
        monkeypatch.setitem(cli.cli.commands, "verify", verify)

    def run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            cli.main(["verify", "model", *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def repo_model(
    git_repo: GitRepo, keys: dict[str, KeyPair], chain: Chain
) -> tuple[GitRepo, Path, Path]:
    """A GitOps repo holding a model, its signature and the trust policy with relative paths."""
    model = git_repo.path / "models" / "fraud-scorer"
    git_repo.write("models/fraud-scorer/weights.bin", bytes(range(256)) * 32)
    git_repo.write("models/fraud-scorer/config.json", '{"layers": 2}\n')
    git_repo.write("trust/keys/release.pub", keys["ec-p256"].public.read_bytes())
    git_repo.write("trust/keys/ca.pem", chain.root.read_bytes())
    policy = git_repo.write(
        "trust/policy.yaml",
        """
        trust:
          authorities:
            - name: release-key
              key: keys/release.pub
            - name: ml-ca
              certificate_chain: [keys/ca.pem]
          models:
            - match: {namespace: "prod-*"}
              require: [release-key, ml-ca]
            - match: {}
              any_of: [release-key, ml-ca]
        """,
    )
    (git_repo.path / "attestations").mkdir()
    sign_with_key(model, keys["ec-p256"].private, git_repo.path / "attestations" / "fraud.sig")
    git_repo.git("add", "-A")
    git_repo.git("commit", "-qm", "signed model")
    return git_repo, model, policy


def test_verified_model_exits_0_with_the_design_json(
    repo_model: tuple[GitRepo, Path, Path],
) -> None:
    repo, model, policy = repo_model
    result = verify_subprocess(
        str(model),
        "--signature",
        "attestations/fraud.sig",
        "--trust-policy",
        str(policy),
        "-o",
        "json",
        cwd=repo.path,
    )
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["verified"] is True
    assert document["model"]["path"] == str(model)
    assert document["model"]["digest"].startswith("sha256:")
    assert document["signers"][0]["authority"] == "release-key"
    assert document["findings"] == []


def test_tampered_model_exits_1_with_the_reason(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path]
) -> None:
    repo, model, policy = repo_model
    (model / "config.json").write_text('{"layers": 9}\n')
    result = verify_cli(
        str(model),
        "--signature",
        "attestations/fraud.sig",
        "--trust-policy",
        str(policy),
        "-o",
        "json",
        cwd=repo.path,
    )
    assert result.code == 1, result.err
    [finding] = json.loads(result.out)["findings"]
    assert finding["check"] == "provenance.digest_mismatch"
    assert finding["resource"]["kind"] == "Model"
    assert finding["resource"]["name"] == "fraud-scorer"


def test_truncated_bundle_exits_1_never_a_traceback(repo_model: tuple[GitRepo, Path, Path]) -> None:
    repo, model, policy = repo_model
    signature = repo.path / "attestations" / "fraud.sig"
    signature.write_bytes(signature.read_bytes()[:200])
    result = verify_subprocess(
        str(model), "--signature", str(signature), "--trust-policy", str(policy)
    )
    assert result.code == 1
    assert "Traceback" not in result.err + result.out
    assert "REJECTED: Model fraud-scorer" in result.out
    assert "provenance.signature_invalid" in result.out


def test_namespace_picks_the_all_of_rule_and_two_signatures_meet_it(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path], chain: Chain
) -> None:
    repo, model, policy = repo_model
    key_sig = repo.path / "attestations" / "fraud.sig"
    ca_sig = sign_with_certificate(model, chain, repo.path / "attestations" / "fraud-ca.sig")
    args = [str(model), "--trust-policy", str(policy), "--namespace", "prod-eu", "-o", "json"]
    one = verify_cli(*args, "--signature", str(key_sig))
    assert one.code == 1
    assert json.loads(one.out)["findings"][0]["check"] == "provenance.unverified"
    both = verify_cli(*args, "--signature", str(key_sig), "--signature", str(ca_sig))
    assert both.code == 0, both.out
    assert [s["authority"] for s in json.loads(both.out)["signers"]] == ["release-key", "ml-ca"]


def test_ignore_paths_are_relative_to_the_working_directory(
    verify_cli: VerifyCli,
    repo_model: tuple[GitRepo, Path, Path],
) -> None:
    repo, model, policy = repo_model
    (model / "README.md").write_text("notes\n")
    base = ["--signature", "attestations/fraud.sig", "--trust-policy", str(policy)]
    assert verify_cli("models/fraud-scorer", *base, cwd=repo.path).code == 1
    ignored = verify_cli(
        "models/fraud-scorer",
        *base,
        "--ignore-paths",
        "models/fraud-scorer/README.md",
        cwd=repo.path,
    )
    assert ignored.code == 0, ignored.out
    assert ignored.out.startswith("verified: Model fraud-scorer sha256:")


def test_config_file_trust_section_is_used(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path], keys: dict[str, KeyPair]
) -> None:
    repo, model, _ = repo_model
    config = repo.write(
        "auditor.yaml",
        """
        git: {repo: .}
        clusters: [{name: prod, snapshot: live.json}]
        trust:
          authorities:
            - {name: release-key, key: trust/keys/release.pub}
          models:
            - {match: {}, require: [release-key]}
        """,
    )
    result = verify_cli(
        str(model), "--signature", "attestations/fraud.sig", "--config", str(config), cwd=repo.path
    )
    assert result.code == 0, result.err + result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --trust-policy FILE or --config FILE"),
        (["--trust-policy", "trust/policy.yaml", "--config", "x.yaml"], "exactly one of"),
        (["--trust-policy", "nope.yaml"], "trust policy file not found"),
    ],
)
def test_usage_and_config_errors_exit_2(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path], args: list[str], message: str
) -> None:
    repo, model, _ = repo_model
    result = verify_cli(str(model), "--signature", "attestations/fraud.sig", *args, cwd=repo.path)
    assert result.code == 2
    assert message in result.err
    assert result.out == ""


def test_invalid_trust_policy_exits_2_naming_file_key_and_line(
    verify_cli: VerifyCli,
    repo_model: tuple[GitRepo, Path, Path],
) -> None:
    repo, model, _ = repo_model
    bad = repo.write(
        "trust/bad.yaml", "trust:\n  authorities:\n    - name: k\n      key: keys/absent.pub\n"
    )
    result = verify_cli(
        str(model),
        "--signature",
        "attestations/fraud.sig",
        "--trust-policy",
        str(bad),
        cwd=repo.path,
    )
    assert result.code == 2
    assert f"{bad}:4: trust.authorities[0].key:" in result.err
    assert "Traceback" not in result.err


def test_missing_model_exits_2(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path]
) -> None:
    repo, _, policy = repo_model
    result = verify_cli(
        "absent-model",
        "--signature",
        "attestations/fraud.sig",
        "--trust-policy",
        str(policy),
        cwd=repo.path,
    )
    assert result.code == 2
    assert "model path does not exist" in result.err


def test_a_missing_signature_file_is_a_usage_error_not_a_rejection(
    verify_cli: VerifyCli, repo_model: tuple[GitRepo, Path, Path]
) -> None:
    repo, model, policy = repo_model
    result = verify_cli(
        str(model),
        "--signature",
        "attestations/typo.sig",
        "--trust-policy",
        str(policy),
        cwd=repo.path,
    )
    assert result.code == 2, result.err
    assert "attestations/typo.sig" in result.err and "does not exist" in result.err
    assert "Traceback" not in result.err


@pytest.mark.usefixtures("no_network")
def test_keyless_bundle_end_to_end(
    verify_cli: VerifyCli, keyless_dir: Path, write_policy: WritePolicy
) -> None:
    policy = write_policy(
        f"""
        trust:
          authorities:
            - name: ibm
              sigstore:
                issuer: {KEYLESS_ISSUER}
                subject: {KEYLESS_IDENTITY}
                trusted_root: '{PUBLIC_GOOD_ROOT}'
          models:
            - {{match: {{}}, require: [ibm]}}
        """
    )
    result = verify_cli(
        ".",
        "--signature",
        "model.sig",
        "--trust-policy",
        str(policy),
        "--ignore-paths",
        "ignore-me",
        "-o",
        "json",
        cwd=keyless_dir,
    )
    assert result.code == 0, result.err + result.out
    document = json.loads(result.out)
    assert document["signers"] == [{"authority": "ibm", "identity": KEYLESS_IDENTITY}]
    assert document["model"]["digest"] == (
        "sha256:61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226"
    )
