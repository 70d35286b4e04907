"""in-toto layouts and links for a training pipeline, verified with the in-toto library.

The layout (who may perform which step, and what each step may consume and produce) must be
signed by a key the trust policy names; links are the signed records each step left. The
library does the verification (`in_toto.verifylib.in_toto_verify`); this module feeds it
untrusted bytes safely and turns every failure into `provenance.layout_failed` with the
library's own reason.

Layouts with inspections are refused: an inspection is a command the layout asks the verifier
to run, and auditor runs in a cron job and an admission webhook, where a command taken from an
attestation in Git must never execute.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from auditor import checks
from auditor.errors import VerificationError
from auditor.model import Finding, ResourceRef
from auditor.provenance.dsse import MAX_ENVELOPE_BYTES, candidate_keys, sha256_digest
from auditor.safeyaml import strict_json
from auditor.tempdirs import temp_dir
from auditor.trust.authorities import PublicKey

MAX_LINKS = 1000
MAX_LINK_BYTES = 16 * 1024 * 1024

# in-toto keeps per-verification state in module globals (RULE_TRACE, ARTIFACT_BASE_PATH):
# one verification at a time per process
_verify_lock = threading.Lock()

_LINK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*\.link$")
_HEX = re.compile(r"^[0-9a-f]+$")


class LayoutFailedError(VerificationError):
    """The layout or its links did not verify; the message is the in-toto library's reason."""

    reason = "layout_failed"
    check = checks.LAYOUT_FAILED


@dataclass(frozen=True, slots=True)
class LayoutVerification:
    """A verified pipeline: which layout, signed by which key, and what it finally produced."""

    layout_digest: str  # `sha256:<hex>` of the layout bytes as read
    signer: str  # the layout key's fingerprint, `sha256:<hex>`
    authority: str
    steps: tuple[str, ...]
    products: Mapping[str, Mapping[str, str]] = field(compare=False, hash=False)
    materials: Mapping[str, Mapping[str, str]] = field(compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "layout_digest": self.layout_digest,
            "signer": self.signer,
            "authority": self.authority,
            "steps": list(self.steps),
            "products": {k: dict(v) for k, v in self.products.items()},
        }


def _load_metadata(data: bytes, source: str, what: str) -> Any:
    """in-toto metadata (a classic Metablock or a DSSE envelope) from untrusted bytes."""
    from in_toto.models.metadata import Metadata

    if len(data) > MAX_ENVELOPE_BYTES:
        raise LayoutFailedError(
            f"{what} is {len(data)} bytes, over the {MAX_ENVELOPE_BYTES}-byte limit", file=source
        )
    try:
        return Metadata.from_dict(strict_json(data))
    except RecursionError:
        raise LayoutFailedError(f"{what} JSON nests too deeply", file=source) from None
    except Exception as exc:  # in-toto raises many types for bad input
        raise LayoutFailedError(
            f"{what} is not in-toto metadata: {_describe(exc)}", file=source
        ) from None


def _signature_keyids(metadata: Any) -> list[str]:
    signatures = metadata.signatures
    if isinstance(signatures, Mapping):  # DSSE envelope: keyid -> Signature
        return [str(k) for k in signatures]
    return [str(s.get("keyid", "")) for s in signatures if isinstance(s, Mapping)]


def _layout_key_dict(metadata: Any, authority: PublicKey) -> dict[str, Any]:
    """The authority's key in in-toto's key-dict form, under the keyid the layout was signed with.

    A PEM key carries no keyid and no scheme; in-toto matches signatures by keyid. Trying the
    key under each keyid the layout's signatures claim (and each scheme of its type) finds the
    signature it made, if any, without trusting the unauthenticated keyid.
    """
    from in_toto.exceptions import SignatureVerificationError

    for keyid in _signature_keyids(metadata):
        if not _HEX.match(keyid):
            continue
        for candidate in candidate_keys(authority.key):
            key_dict = {**candidate.to_dict(), "keyid": keyid}
            try:
                metadata.verify_signature(deepcopy(key_dict))
            except (SignatureVerificationError, ValueError, KeyError):
                continue
            return key_dict
    raise LayoutFailedError(
        f"the layout is not signed by {authority.describe()} [{authority.fingerprint}]"
    )


def _safe_relpath(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise LayoutFailedError(f"link path {name!r} leaves the link directory")
    if not _LINK_NAME.match(path.name):
        raise LayoutFailedError(f"{name!r} is not a link file name (STEP.KEYID.link)")
    return path


def _write_links(links: Mapping[str, bytes], directory: Path) -> None:
    """Materializes links for in-toto, which reads them by file name from a directory."""
    if len(links) > MAX_LINKS:
        raise LayoutFailedError(f"{len(links)} link files, over the limit of {MAX_LINKS}")
    for name, data in links.items():
        rel = _safe_relpath(name)
        if len(data) > MAX_LINK_BYTES:
            raise LayoutFailedError(f"link {name} is over the {MAX_LINK_BYTES}-byte limit")
        target = directory.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def verify_layout(
    layout: bytes,
    links: Mapping[str, bytes],
    authority: PublicKey,
    *,
    source: str = "root.layout",
) -> LayoutVerification:
    """Verifies a layout signed by the key of `authority`, and its links, with in-toto.

    `links` maps a link file name (`train.1a2b3c4d.link`, or `sub/…` for a sublayout) to its
    bytes, as read from Git. Signatures, expiry, thresholds and artifact rules are checked by
    `in_toto_verify`. Raises `LayoutFailedError` with the reason; returns the verified summary.
    """
    from in_toto import verifylib
    from in_toto.models.layout import Layout

    metadata = _load_metadata(layout, source, "layout")
    try:
        payload = metadata.get_payload()
    except Exception as exc:  # in-toto raises many types for bad input
        raise LayoutFailedError(
            f"layout payload is unusable: {_describe(exc)}", file=source
        ) from None
    if not isinstance(payload, Layout):
        raise LayoutFailedError("the metadata is a link, not a layout", file=source)
    if payload.inspect:
        names = ", ".join(i.name for i in payload.inspect)
        raise LayoutFailedError(
            f"the layout has inspections ({names}); auditor never runs commands from a layout",
            file=source,
        )
    try:
        key_dict = _layout_key_dict(metadata, authority)
    except LayoutFailedError as exc:
        exc.file = source
        raise
    with _verify_lock, temp_dir("links") as tmp:
        _write_links(links, tmp)
        try:
            summary = verifylib.in_toto_verify(
                metadata,
                {key_dict["keyid"]: key_dict},
                link_dir_path=tmp,
                persist_inspection_links=False,
            )
        except Exception as exc:  # every in-toto failure becomes the finding
            raise LayoutFailedError(_describe(exc), file=source) from None
    return LayoutVerification(
        layout_digest=sha256_digest(layout),
        signer=authority.fingerprint,
        authority=authority.name,
        steps=tuple(step.name for step in payload.steps),
        products=_artifacts(summary, "products"),
        materials=_artifacts(summary, "materials"),
    )


def read_links_dir(directory: Path) -> dict[str, bytes]:
    """Every `*.link` file under a directory, keyed by its path relative to it."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*.link"))
        if path.is_file()
    }


def _artifacts(summary: Any, kind: str) -> dict[str, dict[str, str]]:
    """`materials` or `products` of in-toto's summary link: path -> digest set."""
    artifacts = getattr(summary, kind, None)
    if not isinstance(artifacts, Mapping):
        return {}
    return {
        str(path): {str(a): str(v) for a, v in digests.items()}
        for path, digests in artifacts.items()
        if isinstance(digests, Mapping)
    }


def _describe(exc: BaseException) -> str:
    """`LayoutExpiredError: Layout expired`: the library's exception name and message."""
    text = str(exc).strip() or (str(exc.__cause__).strip() if exc.__cause__ else "")
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def layout_finding(error: LayoutFailedError, *, ref: ResourceRef) -> Finding:
    """The `provenance.layout_failed` finding for one resource."""
    return checks.finding(
        checks.LAYOUT_FAILED,
        ref,
        "/provenance/layout",
        f"{ref.display()}: in-toto layout verification failed: {error.message}",
        details={"file": error.file} if error.file else {},
    )


__all__ = [
    "LayoutFailedError",
    "LayoutVerification",
    "layout_finding",
    "read_links_dir",
    "verify_layout",
]
