"""`auditor admission serve` (the validating webhook) and `auditor admission decisions` (what it
decided, from the store). The library is `auditor.admit` and `auditor.admission`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from auditor.cli.decisions import DATE_FORMATS, decision_filters, show_decisions
from auditor.cli.options import output_option
from auditor.cli.stored import store_option
from auditor.errors import ConfigError


@click.group()
def admission() -> None:
    """The admission webhook: verify models and policies before objects are admitted."""


def _readable(path: Path, option: str) -> str:
    if not path.is_file():
        raise ConfigError("not a readable file", file=str(path), key=option)
    return str(path)


@admission.command("serve")
@click.option("--config", "config_file", required=True, type=click.Path(path_type=Path))
@click.option("--tls-cert", required=True, type=click.Path(path_type=Path), help="PEM chain")
@click.option("--tls-key", required=True, type=click.Path(path_type=Path), help="PEM key")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--store", "store_path", help="SQLite store for decisions [default: config's]")
def serve(
    config_file: Path,
    tls_cert: Path,
    tls_key: Path,
    host: str,
    port: int,
    workers: int,
    store_path: str | None,
) -> None:
    """Serve AdmissionReview v1 on https://HOST:PORT/validate until SIGTERM."""
    from auditor.admission.serve import serve as run_server
    from auditor.admit import CONFIG_ENV, STORE_ENV
    from auditor.config import load_config

    # checked here, once, so a mistake is a diagnosis and exit 2 rather than every worker
    # failing to start
    config = load_config(config_file)
    environment = {CONFIG_ENV: str(Path(config.path))}
    store = store_path or config.store
    if not store:
        # every decision is recorded (DESIGN "Admission"): no store, no webhook
        raise ConfigError(
            "admission serve records every decision: give --store FILE or `store:` in the config",
            file=config.path,
            key="store",
        )
    environment[STORE_ENV] = str(Path(store).resolve())
    run_server(
        host=host,
        port=port,
        certfile=_readable(tls_cert, "--tls-cert"),
        keyfile=_readable(tls_key, "--tls-key"),
        workers=workers,
        environment=environment,
    )


@admission.command("decisions")
@store_option
@click.option("--denied", is_flag=True, help="only denials (fail-closed errors included)")
@click.option("--since", type=click.DateTime(DATE_FORMATS), help="only at or after (UTC)")
@decision_filters
@output_option
def decisions(
    store_path: str,
    denied: bool,
    since: datetime | None,
    results: tuple[str, ...],
    namespace: str | None,
    limit: int | None,
    output: str,
) -> None:
    """The webhook's decisions, newest first (also `auditor findings --admission`)."""
    show_decisions(
        store_path,
        output=output,
        denied_only=denied,
        results=results,
        namespace=namespace,
        since=since,
        limit=limit,
    )
