"""One module per provenance check, each a function of plain values returning a frozen result.

`attestations` finds the resource's attestation directory in Git; `signature` checks the
model's own signature and the digest Git declares; `running` the digest the pods of an OCI model
run; `slsa` the SLSA provenance and its datasets against the lockfile Git pins; `layout` an
in-toto layout and its links; `commit` the audited commit's signature, once per run. Each result
carries its findings, its `Attestation` records and what the policy input needs of it;
`auditor.provenance.project` joins a resource's results into one `ProvenanceResult`.
"""
