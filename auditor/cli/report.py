"""`auditor report`: render a stored run (never re-audit) in one of the report formats."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from auditor.cli.stored import open_store, store_option
from auditor.errors import ConfigError

FORMAT_CHOICES = ("md", "html", "json", "sarif", "junit", "policyreport", "intoto")


@click.command()
@store_option
@click.option("--run", "run_id", default="latest", show_default=True, help="run id, or latest")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), required=True)
@click.option("--output", type=click.Path(dir_okay=False), help="write here instead of stdout")
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False),
    help="PEM private key that signs the intoto evidence",
)
@click.option(
    "--reports-dir",
    type=click.Path(file_okay=False),
    help="intoto: also write the reports whose digests the evidence signs",
)
def report(
    store_path: str,
    run_id: str,
    fmt: str,
    output: str | None,
    sign_key: str | None,
    reports_dir: str | None,
) -> None:
    """Render a stored run: md or html for people; json, sarif, junit, policyreport for
    machines; intoto for signed evidence (with --sign-key). Exit 0, or 2 for a usage error."""
    from auditor.bounded import read_bounded
    from auditor.reports.files import check_writable, write_atomically
    from auditor.reports.render import render, render_evidence

    if fmt == "intoto" and not sign_key:
        raise ConfigError(
            "--format intoto signs the evidence: give --sign-key KEY", key="--sign-key"
        )
    if sign_key and fmt != "intoto":
        raise ConfigError(
            "--sign-key signs intoto evidence only: add --format intoto", key="--sign-key"
        )
    if output:
        check_writable(output)  # --format names the format: any file name will do
    with open_store(store_path) as store:
        stored = store.report(run_id)
    if stored is None:
        raise ConfigError(
            f"the store has no run {run_id!r}"
            if run_id != "latest"
            else "the store has no finished run",
            file=store_path,
            hint="`auditor runs --store FILE` lists the runs",
        )
    if fmt == "intoto":
        # here: the trust module loads sigstore, a third of a second that no other format needs
        from auditor.trust.authorities import MAX_TRUST_FILE_BYTES

        assert sign_key is not None
        # a key file is small: a pipe, a device or a huge file is refused, never read whole
        key = read_bounded(
            sign_key, max_bytes=MAX_TRUST_FILE_BYTES, what="signing key", error=ConfigError
        )
        evidence = render_evidence(stored, key, key_file=sign_key)
        text = evidence.envelope
        for name, data in evidence.reports.items() if reports_dir else ():
            write_atomically(str(Path(reports_dir or ".") / name), data)
    else:
        text = render(stored, fmt)
    if output:
        write_atomically(output, text.encode("utf-8"))
    else:
        sys.stdout.write(text)


__all__ = ["report"]
