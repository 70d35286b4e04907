"""`auditor verify ...`: click commands only; the library is auditor.provenance.

Errors raised here (ConfigError, InputError) reach `auditor.cli.main`, which prints their
diagnostics and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from auditor.cli.options import output_option, print_json
from auditor.errors import ConfigError
from auditor.exit_codes import ExitCode

if TYPE_CHECKING:
    from auditor.provenance.signing import ModelVerification
    from auditor.trust.policy import TrustPolicy


@click.group()
def verify() -> None:
    """Verify signatures and provenance offline against the trust policy."""


@verify.command("model")
@click.argument("model_dir", type=click.Path(path_type=Path))
# A missing bundle is a usage mistake (exit 2), never a rejected model (exit 1).
@click.option(
    "--signature",
    "signatures",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="model-signing bundle (repeatable: several signatures can meet an all-of rule)",
)
@click.option(
    "--trust-policy", type=click.Path(path_type=Path), help="trust-policy file (top key `trust:`)"
)
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), help="auditor.yaml with `trust:`"
)
@click.option(
    "--ignore-paths",
    "ignore_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="path in the model to leave out, relative to the current directory (repeatable)",
)
@click.option("--namespace", help="pick the trust.models rule for this namespace")
@click.option("--name", help="pick the rule for this model name [default: the directory name]")
@output_option
def model(
    model_dir: Path,
    signatures: tuple[Path, ...],
    trust_policy: Path | None,
    config_file: Path | None,
    ignore_paths: tuple[Path, ...],
    namespace: str | None,
    name: str | None,
    output: str,
) -> None:
    """Verify MODEL_DIR against its model-signing signature. Exit 0 verified, 1 rejected, 2 error.

    Without --namespace/--name the model passes if it satisfies any trust.models rule; give
    them to check it against the rule a serving resource would match.
    """
    # Imported here: model-signing and sigstore cost ~0.15 s, which other commands need not pay.
    from auditor.provenance.signing import verify_model

    policy = _policy(trust_policy, config_file)
    result = verify_model(
        model_dir,
        [s.absolute() for s in signatures],
        policy,
        namespace=namespace,
        name=name,
        # As model-signing's own CLI: relative to where the command runs, not to MODEL_DIR.
        ignore_paths=[p.absolute() for p in ignore_paths],
    )
    if output == "json":
        print_json(result.to_json())
    else:
        _print_text(result)
    sys.exit(ExitCode.CLEAN if result.verified else ExitCode.FINDINGS)


def _policy(trust_policy: Path | None, config_file: Path | None) -> TrustPolicy:
    from auditor.trust.policy import load_trust_from_config, load_trust_policy

    if (trust_policy is None) == (config_file is None):
        raise ConfigError(
            "give exactly one of --trust-policy FILE or --config FILE", key="--trust-policy"
        )
    if trust_policy is not None:
        return load_trust_policy(trust_policy)
    assert config_file is not None
    return load_trust_from_config(config_file)


def _print_text(result: ModelVerification) -> None:
    what = result.ref.display()
    digest = result.digest or "no signed digest"
    if result.verified:
        click.echo(f"verified: {what} {digest}")
    else:
        click.echo(f"REJECTED: {what} ({digest})")
    for signer in result.signers:
        click.echo(f"  signed by {signer.authority}: {signer.identity}")
    if result.requirement:
        click.echo(f"  rule: {result.requirement}")
    for finding in result.findings:
        click.echo(f"  {finding.check}: {finding.message}")


__all__ = ["verify"]


@verify.command("evidence")
@click.argument("envelope", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM public key of the --sign-key that signed it",
)
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a report file that must be one of the evidence's subjects (repeatable)",
)
@output_option
def evidence(envelope: Path, key_file: Path, reports: tuple[Path, ...], output: str) -> None:
    """Verify a run's signed evidence (`auditor report --format intoto`). Exit 0 verified,
    1 rejected (signature, statement or a report's digest), 2 error."""
    from auditor.bounded import read_bounded
    from auditor.config import Limits
    from auditor.evidence_check import check_evidence
    from auditor.provenance.dsse import MAX_ENVELOPE_BYTES, verify_with_key
    from auditor.trust.authorities import PublicKey, TrustMaterialError

    try:
        authority = PublicKey.load("evidence-key", key_file)
    except TrustMaterialError as exc:  # the person's file, not a bug: exit 2 naming it
        raise ConfigError(str(exc), file=str(key_file), key="--key") from None
    data = read_bounded(envelope, max_bytes=MAX_ENVELOPE_BYTES, what="evidence envelope")
    verified = verify_with_key(data, authority, source=str(envelope))  # DsseError: exit 1
    report_limit = Limits().max_snapshot_bytes  # a report is at most as large as a snapshot
    result = check_evidence(
        verified.payload_type,
        verified.payload,
        {
            str(path): read_bounded(path, max_bytes=report_limit, what="report file")
            for path in reports
        },
        source=str(envelope),
    )
    if output == "json":
        print_json({**result, "signer": verified.signer.to_json()})
    else:
        predicate = result["predicate"]
        click.echo(
            f"verified: run {predicate['run']['id']} ({predicate['run']['status']}) signed by "
            f"{verified.signer.identity}"
        )
        for name in result["reports"]:
            click.echo(f"  report {name}: digest matches the evidence")
