"""A Sigstore instance of our own, offline: keyless signatures made in the tests.

Keyless signing needs Fulcio (a CA issuing short-lived certificates to OIDC identities), a CT
log (the SCT embedded in each certificate) and Rekor (the transparency log). Here each is a
fresh key: the CA signs a certificate naming an identity and issuer with an SCT signed by the
CT key; the Rekor key signs the log entry's inclusion promise and the checkpoint over its
inclusion proof (a one-entry tree). `trusted_root.json` names the three, as the public-good
root names the real ones, and sigstore-python verifies the bundles made here exactly as it
verifies public-good bundles: chain at the signed time, SCT, log entry, identity, signature.
Nothing is mocked; nothing touches the network.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from auditor.provenance.dsse import IN_TOTO_PAYLOAD_TYPE, pae

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER = "https://token.actions.githubusercontent.com"
IDENTITY = "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Sigstore's and RFC 6962's key id: SHA-256 of the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(_der(key)).digest()


def _octet_string(data: bytes) -> bytes:
    length = len(data)
    if length < 0x80:
        return b"\x04" + bytes([length]) + data
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(encoded)]) + encoded + data


@dataclass
class LocalSigstore:
    """One Sigstore instance: its CA, CT log and Rekor keys, and the trusted root naming them."""

    trusted_root: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    ct_key: ec.EllipticCurvePrivateKey
    rekor_key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, directory: Path, name: str = "test") -> LocalSigstore:
        directory.mkdir(parents=True, exist_ok=True)
        ca_key = ec.generate_private_key(ec.SECP384R1())
        ct_key = ec.generate_private_key(ec.SECP256R1())
        rekor_key = ec.generate_private_key(ec.SECP256R1())
        ca = _ca_certificate(ca_key, name)
        root = directory / f"{name}-trusted_root.json"
        root.write_text(json.dumps(_trusted_root(ca, ct_key, rekor_key, name)))
        return cls(root, ca_key, ca, ct_key, rekor_key)

    def sign_digest(self, digest: str, *, identity: str = IDENTITY, issuer: str = ISSUER) -> bytes:
        """A bundle whose message signature is over `digest` (`sha256:<hex>`), as
        `cosign sign-blob --bundle` over an image manifest writes it."""
        key, certificate = self._certificate(identity, issuer)
        raw = bytes.fromhex(digest.partition(":")[2])
        signature = key.sign(raw, ec.ECDSA(Prehashed(hashes.SHA256())))
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": raw.hex()}},
                "signature": {
                    "content": _b64(signature),
                    "publicKey": {"content": _pem(certificate)},
                },
            },
        }
        content = {
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(raw)},
                "signature": _b64(signature),
            }
        }
        return self._bundle(certificate, body, content)

    def sign_dsse(
        self,
        payload: bytes,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        payload_type: str = IN_TOTO_PAYLOAD_TYPE,
    ) -> bytes:
        """A bundle holding a DSSE envelope over `payload`, as `cosign sign --bundle`
        (cosign 3) and `cosign attest --bundle` write them."""
        key, certificate = self._certificate(identity, issuer)
        signature = key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
        envelope = {
            "payload": _b64(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": _b64(signature), "keyid": ""}],
        }
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                },
                "payloadHash": {
                    "algorithm": "sha256",
                    "value": hashlib.sha256(payload).hexdigest(),
                },
                "signatures": [{"signature": _b64(signature), "verifier": _pem(certificate)}],
            },
        }
        return self._bundle(certificate, body, {"dsseEnvelope": envelope})

    # --- Fulcio: a short-lived certificate with an embedded SCT ------------------------------

    def _certificate(
        self, identity: str, issuer: str
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))  # Fulcio's: the identity is in the SAN
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(minutes=10))
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(_san(identity), critical=True)
            .add_extension(
                x509.UnrecognizedExtension(OIDC_ISSUER_OID, issuer.encode()), critical=False
            )
        )
        # the SCT signs the certificate without its SCT list (RFC 6962 precertificate entry)
        precertificate = builder.sign(self.ca_key, hashes.SHA384())
        sct = self._sct(precertificate.tbs_certificate_bytes, now)
        listed = struct.pack("!H", len(sct)) + sct
        extension = x509.UnrecognizedExtension(
            SCT_LIST_OID, _octet_string(struct.pack("!H", len(listed)) + listed)
        )
        certificate = builder.add_extension(extension, critical=False).sign(
            self.ca_key, hashes.SHA384()
        )
        assert certificate.tbs_precertificate_bytes == precertificate.tbs_certificate_bytes
        return key, certificate

    def _sct(self, tbs: bytes, now: datetime.datetime) -> bytes:
        timestamp = int(now.timestamp() * 1000)
        issuer_key_id = _key_id(self.ca_key.public_key())
        entry = issuer_key_id + len(tbs).to_bytes(3, "big") + tbs
        signed = struct.pack("!BBQH", 0, 0, timestamp, 1) + entry + struct.pack("!H", 0)
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = _key_id(self.ct_key.public_key())
        return (
            struct.pack("!B", 0)
            + log_id
            + struct.pack("!QH", timestamp, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )

    # --- Rekor: a one-entry log with its inclusion proof, checkpoint and promise -----------

    def _bundle(
        self, certificate: x509.Certificate, body: dict[str, Any], content: dict[str, Any]
    ) -> bytes:
        canonical = rfc8785.dumps(body)
        log_id = _key_id(self.rekor_key.public_key())
        integrated = int(datetime.datetime.now(datetime.UTC).timestamp())
        promise = rfc8785.dumps(
            {
                "body": _b64(canonical),
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": 0,
            }
        )
        root_hash = hashlib.sha256(b"\x00" + canonical).digest()  # a tree of one leaf
        note = f"rekor.test - 1\n1\n{_b64(root_hash)}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        checkpoint = f"{note}\n\u2014 rekor.test {_b64(log_id[:4] + note_signature)}\n"
        entry = {
            "logIndex": "0",
            "logId": {"keyId": _b64(log_id)},
            "kindVersion": {"kind": body["kind"], "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {
                "signedEntryTimestamp": _b64(
                    self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256()))
                )
            },
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": _b64(root_hash),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": _b64(canonical),
        }
        material = {
            "certificate": {"rawBytes": _b64(certificate.public_bytes(serialization.Encoding.DER))},
            "tlogEntries": [entry],
        }
        return json.dumps(
            {"mediaType": BUNDLE_V03, "verificationMaterial": material, **content}
        ).encode()


def _pem(certificate: x509.Certificate) -> str:
    return _b64(certificate.public_bytes(serialization.Encoding.PEM))


def _usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _san(identity: str) -> x509.SubjectAlternativeName:
    name: x509.GeneralName = (
        x509.RFC822Name(identity)
        if "@" in identity and "://" not in identity
        else x509.UniformResourceIdentifier(identity)
    )
    return x509.SubjectAlternativeName([name])


def _ca_certificate(key: ec.EllipticCurvePrivateKey, label: str) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{label}.sigstore.example"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{label} sigstore"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )


def _log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
    public = key.public_key()
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": _b64(_der(public)),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        },
        "logId": {"keyId": _b64(_key_id(public))},
    }


def _trusted_root(
    ca: x509.Certificate,
    ct_key: ec.EllipticCurvePrivateKey,
    rekor_key: ec.EllipticCurvePrivateKey,
    label: str,
) -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [_log(rekor_key, f"https://rekor.{label}.sigstore.example")],
        "certificateAuthorities": [
            {
                "subject": {"organization": f"{label}.sigstore.example", "commonName": label},
                "uri": f"https://fulcio.{label}.sigstore.example",
                "certChain": {
                    "certificates": [
                        {"rawBytes": _b64(ca.public_bytes(serialization.Encoding.DER))}
                    ]
                },
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }
        ],
        "ctlogs": [_log(ct_key, f"https://ctfe.{label}.sigstore.example")],
        "timestampAuthorities": [],
    }
