"""History is stored by fingerprint: however it is computed, its value never changes.

`reference` is the computation every stored fingerprint so far was made with (auditor at
88c8b1a); the fast one must agree with it on every kind of text."""

from __future__ import annotations

import hashlib
import json

import pytest

from auditor.model import ResourceRef, fingerprint


def reference(category: str, check: str, ref: ResourceRef, path: str, discriminator: str) -> str:
    identity = [category, check, ref.cluster, ref.group, ref.kind, ref.namespace, ref.name, path]
    if discriminator:
        identity.append(discriminator)
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]


TEXTS = [
    "",
    "plain",
    'quote " and backslash \\',
    "tab\tnewline\ncarriage\rnul\x00bell\x07",
    "ünïcödé, 日本語, emoji 🧪",
    "lone surrogate \ud800",
    "/spec/template/spec/containers/0/env/LEGACY_TOKENIZER",
    "</script><b>&amp;",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("api_version", ["v1", "apps/v1", "serving.kserve.io/v1beta1", ""])
def test_fingerprint_is_the_value_stored_fingerprints_were_made_with(
    text: str, api_version: str
) -> None:
    ref = ResourceRef(f"prod-{text}", api_version, "Deployment", text, f"name-{text}")
    for discriminator in ("", "deny", f"warn:{text}"):
        args = ("policy", f"auditor.{text}", ref, text, discriminator)
        assert fingerprint(*args) == reference(*args)


def test_a_fingerprint_of_values_that_are_not_text_is_still_the_reference_value() -> None:
    # Typed as str everywhere, but a caller that slips in None must not get another identity.
    ref = ResourceRef("prod", "v1", "Service", "", "web")
    args = ("drift", "drift.changed", ref, None, "")
    assert fingerprint(*args) == reference(*args)  # type: ignore[arg-type]
