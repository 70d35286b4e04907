"""The trust policy: loading, validation errors with file/key/line, rules and requirements."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.trust.authorities import (
    AllOf,
    AnyOf,
    CertificateChain,
    PublicKey,
    Signed,
    SigstoreIdentity,
)
from auditor.trust.policy import load_trust_from_config, load_trust_policy
from tests.provenance.conftest import PUBLIC_GOOD_ROOT, Chain, KeyPair

WritePolicy = Callable[..., Path]


def _full_policy(keys: dict[str, KeyPair], chain: Chain) -> str:
    return f"""
    trust:
      authorities:
        - name: release-key
          key: {keys["ec-p256"].public}
        - name: ml-ca
          certificate_chain: [{chain.root}]
        - name: ci-keyless
          sigstore:
            issuer: https://token.actions.githubusercontent.com
            subject_regexp: "https://github.com/acme/models/.+@refs/heads/main"
            trusted_root: {PUBLIC_GOOD_ROOT}
      models:
        - match: {{namespace: "prod-*", name: "*"}}
          require: [release-key, ci-keyless]
        - match: {{namespace: "staging"}}
          any_of: [release-key, ml-ca]
        - match: {{}}
          require: [ml-ca]
      datasets:
        lockfile: dvc.lock
    """


def test_full_policy_loads_every_authority_kind(
    write_policy: WritePolicy, keys: dict[str, KeyPair], chain: Chain
) -> None:
    policy = load_trust_policy(write_policy(_full_policy(keys, chain)))
    kinds = {a.name: type(a) for a in policy.authorities}
    assert kinds == {
        "release-key": PublicKey,
        "ml-ca": CertificateChain,
        "ci-keyless": SigstoreIdentity,
    }
    assert policy.digest.startswith("sha256:")
    assert policy.datasets.lockfile is not None
    assert policy.datasets.lockfile.endswith("/dvc.lock")


def test_first_matching_rule_wins_and_no_match_is_none(
    write_policy: WritePolicy, keys: dict[str, KeyPair], chain: Chain
) -> None:
    policy = load_trust_policy(write_policy(_full_policy(keys, chain)))
    prod = policy.rule_for("prod-eu", "fraud")
    assert prod is not None and prod.index == 0
    assert prod.requirement == AllOf(["release-key", "ci-keyless"])
    staging = policy.rule_for("staging", "fraud")
    assert staging is not None and staging.requirement == AnyOf(["release-key", "ml-ca"])
    assert policy.rule_for("dev", "x") is not None  # the catch-all
    only_prod = load_trust_policy(
        write_policy(
            f"""
            trust:
              authorities: [{{name: k, key: {keys["ec-p256"].public}}}]
              models: [{{match: {{namespace: "prod-*"}}, require: [k]}}]
            """,
            name="prod-only.yaml",
        )
    )
    assert only_prod.rule_for("dev", "fraud") is None


def test_relative_paths_resolve_against_the_policy_directory(
    tmp_path: Path, keys: dict[str, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_dir = tmp_path / "gitops" / "trust"
    (policy_dir / "keys").mkdir(parents=True)
    (policy_dir / "keys" / "release.pub").write_bytes(keys["ec-p384"].public.read_bytes())
    path = policy_dir / "policy.yaml"
    path.write_text(
        "trust:\n  authorities:\n    - name: release-key\n      key: keys/release.pub\n"
    )
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    policy = load_trust_policy(path)
    authority = policy.authority("release-key")
    assert isinstance(authority, PublicKey)
    assert authority.path == policy_dir / "keys" / "release.pub"
    assert authority.key_type == "ecdsa-p-384"


@pytest.mark.parametrize("kind", ["ec-p256", "ec-p384", "ec-p521", "ed25519", "rsa"])
def test_every_supported_key_type_loads(
    write_policy: WritePolicy, keys: dict[str, KeyPair], kind: str
) -> None:
    policy = load_trust_policy(
        write_policy(f"trust:\n  authorities: [{{name: k, key: {keys[kind].public}}}]\n")
    )
    assert isinstance(policy.authority("k"), PublicKey)


def test_a_policy_of_keys_and_chains_loads_without_sigstore_s_models(
    write_policy: WritePolicy, keys: dict[str, KeyPair], chain: Chain
) -> None:
    """sigstore's models and verification policies (a third of a second to import) load with
    a Sigstore authority only."""
    path = write_policy(
        f"trust:\n  authorities:\n    - {{name: k, key: {keys['ec-p256'].public}}}\n"
        f"    - {{name: ca, certificate_chain: [{chain.root}]}}\n"
    )
    script = (
        "import sys\n"
        "from auditor.trust.policy import load_trust_policy\n"
        f"policy = load_trust_policy({str(path)!r})\n"
        "print(len(policy.authorities), 'sigstore.models' in sys.modules,"
        " 'sigstore.verify' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "False", "False"]


def test_policy_digest_changes_with_the_key_file_contents(
    tmp_path: Path, write_policy: WritePolicy, keys: dict[str, KeyPair]
) -> None:
    key = tmp_path / "k.pub"
    key.write_bytes(keys["ec-p256"].public.read_bytes())
    path = write_policy("trust:\n  authorities: [{name: k, key: k.pub}]\n")
    before = load_trust_policy(path).digest
    key.write_bytes(keys["other"].public.read_bytes())
    assert load_trust_policy(path).digest != before


def test_policy_digest_is_the_same_wherever_the_policy_is_checked_out(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    digests = []
    for checkout in ("replica-a", "elsewhere/replica-b"):
        folder = tmp_path / checkout
        folder.mkdir(parents=True)
        (folder / "k.pub").write_bytes(keys["ec-p256"].public.read_bytes())
        policy = folder / "trust.yaml"
        policy.write_text(
            "trust:\n  authorities: [{name: k, key: k.pub}]\n"
            "  models: [{match: {}, require: [k]}]\n  datasets: {lockfile: dvc.lock}\n"
        )
        digests.append(load_trust_policy(policy).digest)
    assert digests[0] == digests[1]


def test_trust_section_of_auditor_yaml_is_read_with_its_lines(
    write_policy: WritePolicy, keys: dict[str, KeyPair]
) -> None:
    path = write_policy(
        f"""
        git: {{repo: .}}
        clusters: [{{name: prod, snapshot: live.json}}]
        trust:
          authorities:
            - name: release-key
              key: {keys["ec-p256"].public}
          models:
            - match: {{namespace: prod}}
              require: [release-key, nobody]
        """,
        name="auditor.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        load_trust_from_config(path)
    assert (caught.value.key, caught.value.line) == ("trust.models[0].require[1]", 9)


def test_auditor_yaml_without_trust_section_is_a_config_error(write_policy: WritePolicy) -> None:
    path = write_policy("git: {repo: .}\n", name="auditor.yaml")
    with pytest.raises(ConfigError, match="no `trust:` section"):
        load_trust_from_config(path)


# ---------------------------------------------------------------------------------------------
# Validation errors: file, key and line


def _cases(keys: dict[str, KeyPair]) -> list[tuple[str, str, str, int, str]]:
    p256 = keys["ec-p256"].public
    root = PUBLIC_GOOD_ROOT
    return [
        (
            "unknown authority in a rule",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n  models:\n    - match: {{}}\n      any_of: [a, b]\n",
            "trust.models[0].any_of[1]",
            7,
            "unknown authority 'b'",
        ),
        (
            "duplicate authority name",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n    - name: a\n      key: {p256}\n",
            "trust.authorities[1].name",
            5,
            "used twice",
        ),
        (
            "both subject and subject_regexp",
            f"trust:\n  authorities:\n    - name: ci\n      sigstore:\n        issuer: https://i\n        subject: me\n        subject_regexp: m.*\n        trusted_root: {root}\n",
            "trust.authorities[0].sigstore.subject_regexp",
            7,
            "both subject and subject_regexp",
        ),
        (
            "invalid regexp",
            f"trust:\n  authorities:\n    - name: ci\n      sigstore:\n        issuer: https://i\n        subject_regexp: 'a(b'\n        trusted_root: {root}\n",
            "trust.authorities[0].sigstore.subject_regexp",
            6,
            "invalid regular expression",
        ),
        (
            "missing key file",
            "trust:\n  authorities:\n    - name: a\n      key: keys/nope.pub\n",
            "trust.authorities[0].key",
            4,
            "does not exist",
        ),
        (
            "missing certificate in a chain",
            f"trust:\n  authorities:\n    - name: ca\n      certificate_chain:\n        - {p256}\n        - nope.pem\n",
            "trust.authorities[0].certificate_chain[1]",
            6,
            "does not exist",
        ),
        (
            "missing trusted root",
            "trust:\n  authorities:\n    - name: ci\n      sigstore:\n        issuer: https://i\n        subject: me\n        trusted_root: root.json\n",
            "trust.authorities[0].sigstore.trusted_root",
            7,
            "does not exist",
        ),
        (
            "sigstore without a local trust root",
            "trust:\n  authorities:\n    - name: ci\n      sigstore:\n        issuer: https://i\n        subject: me\n",
            "trust.authorities[0].sigstore",
            5,
            "never fetches",
        ),
        (
            "two sources in one authority",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n      certificate_chain: [{p256}]\n",
            "trust.authorities[0].certificate_chain",
            5,
            "exactly one of key, certificate_chain, sigstore",
        ),
        (
            "no source",
            "trust:\n  authorities:\n    - name: a\n",
            "trust.authorities[0]",
            3,
            "sets none",
        ),
        (
            "unknown key",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n      keys: x\n",
            "trust.authorities[0].keys",
            5,
            "unknown key 'keys'",
        ),
        (
            "rule without require or any_of",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n  models:\n    - match: {{name: x}}\n",
            "trust.models[0]",
            6,
            "needs `require",
        ),
        (
            "a certificate file that is not a certificate",
            f"trust:\n  authorities:\n    - name: ca\n      certificate_chain: {p256}\n",
            "trust.authorities[0].certificate_chain",
            4,
            "no valid PEM certificate",
        ),
        (
            "a key file that is not a key",
            f"trust:\n  authorities:\n    - name: a\n      key: {root}\n",
            "trust.authorities[0].key",
            4,
            "not a PEM public key",
        ),
        (
            "a trusted root that is not one",
            f"trust:\n  authorities:\n    - name: ci\n      sigstore:\n        issuer: https://i\n        subject: me\n        trusted_root: {p256}\n",
            "trust.authorities[0].sigstore.trusted_root",
            7,
            "not a valid Sigstore trusted_root.json",
        ),
        (
            "an empty require list",
            f"trust:\n  authorities:\n    - name: a\n      key: {p256}\n  models:\n    - match: {{}}\n      require: []\n",
            "trust.models[0].require",
            7,
            "should be non-empty",
        ),
    ]


@pytest.mark.parametrize("index", range(16))
def test_trust_policy_mistakes_name_file_key_and_line(
    index: int, write_policy: WritePolicy, keys: dict[str, KeyPair]
) -> None:
    label, text, key, line, message = _cases(keys)[index]
    path = write_policy(text)
    with pytest.raises(ConfigError) as caught:
        load_trust_policy(path)
    error = caught.value
    assert (error.file, error.key, error.line) == (str(path), key, line), label
    assert message in error.message, (label, error.message)


def test_standalone_file_holds_only_trust(write_policy: WritePolicy) -> None:
    path = write_policy("trust: {}\nextra: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_trust_policy(path)
    assert (caught.value.key, caught.value.line) == ("extra", 2)


def test_weak_rsa_key_is_refused(tmp_path: Path, write_policy: WritePolicy) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    (tmp_path / "weak.pub").write_bytes(
        weak.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(ConfigError, match="too weak"):
        load_trust_policy(write_policy("trust:\n  authorities: [{name: w, key: weak.pub}]\n"))


def test_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_trust_policy(tmp_path / "absent.yaml")


# ---------------------------------------------------------------------------------------------
# Requirements compose like sigstore's policies


@pytest.mark.parametrize(
    ("requirement", "signed", "expected"),
    [
        (AllOf(["a", "b"]), {"a", "b"}, True),
        (AllOf(["a", "b"]), {"a"}, False),
        (AllOf([]), {"a"}, False),  # empty all-of never passes: fail closed
        (AnyOf(["a", "b"]), {"b"}, True),
        (AnyOf(["a", "b"]), {"c"}, False),
        (AnyOf([]), {"a"}, False),
        (AllOf(["a", AnyOf(["b", "c"])]), {"a", "c"}, True),
        (AllOf(["a", AnyOf(["b", "c"])]), {"b", "c"}, False),
        (Signed("a"), {"a"}, True),
    ],
)
def test_requirement_is_satisfied_by_the_set_of_signers(
    requirement: AllOf | AnyOf | Signed, signed: set[str], expected: bool
) -> None:
    assert requirement.is_satisfied(signed) is expected


def test_requirement_describes_itself() -> None:
    assert AllOf(["a", AnyOf(["b", "c"])]).describe() == "all of: a, (any of: b, c)"
    assert list(AllOf(["a", AnyOf(["b", "c"])]).names()) == ["a", "b", "c"]


def test_rule_with_require_and_any_of_needs_both(
    write_policy: WritePolicy, keys: dict[str, KeyPair]
) -> None:
    policy = load_trust_policy(
        write_policy(
            f"""
            trust:
              authorities:
                - {{name: a, key: {keys["ec-p256"].public}}}
                - {{name: b, key: {keys["ec-p384"].public}}}
                - {{name: c, key: {keys["other"].public}}}
              models:
                - match: {{}}
                  require: [a]
                  any_of: [b, c]
            """
        )
    )
    rule = policy.rule_for("x", "y")
    assert rule is not None
    assert rule.requirement.is_satisfied({"a", "c"})
    assert not rule.requirement.is_satisfied({"a"})
    assert not rule.requirement.is_satisfied({"b", "c"})


def test_shipped_example_policy_loads_when_its_files_exist(
    tmp_path: Path, keys: dict[str, KeyPair], chain: Chain
) -> None:
    example = Path(__file__).resolve().parents[2] / "attestations" / "trust-policy.example.yaml"
    policy_file = tmp_path / "trust-policy.yaml"
    policy_file.write_text(example.read_text())
    (tmp_path / "keys").mkdir()
    (tmp_path / "trust").mkdir()
    (tmp_path / "keys" / "release.pub").write_bytes(keys["ec-p256"].public.read_bytes())
    (tmp_path / "keys" / "ca-cert.pem").write_bytes(chain.root.read_bytes())
    (tmp_path / "trust" / "trusted_root.json").write_bytes(PUBLIC_GOOD_ROOT.read_bytes())
    policy = load_trust_policy(policy_file)
    assert [a.name for a in policy.authorities] == ["release-key", "ml-ca", "ci-keyless"]
    rule = policy.rule_for("prod-eu", "fraud-scorer")
    assert rule is not None and rule.requirement == AllOf(["release-key", "ci-keyless"])
    assert policy.rule_for("dev", "fraud-scorer") is None
