# syntax=docker/dockerfile:1
# auditor's image: the nightly CronJob (deploy/cron) and the admission webhook run it.
#
#   docker build -t auditor:0.1.0 .
#   docker run --rm auditor:0.1.0 --help
#
# Base images are pinned to an exact release; pin their digests too (`@sha256:...`) in a
# registry you control, and let Renovate or Dependabot move both together.
# Debian bookworm's glibc (2.36) runs the manylinux_2_34 wheel of regorus, the Rego engine.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm
ARG KUBECTL_VERSION=v1.32.4

# --- build: the wheel and every dependency, into a venv copied whole into the runtime image
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/auditor
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY auditor ./auditor
COPY policies ./policies
COPY attestations ./attestations
COPY reports ./reports
RUN /opt/auditor/bin/pip install . \
    && /opt/auditor/bin/auditor --version

# --- kubectl, for `kubectl kustomize` of the paths in Git that hold a kustomization.yaml;
# checked against the checksum the Kubernetes release publishes
FROM ${PYTHON_IMAGE} AS kubectl
ARG KUBECTL_VERSION
ARG TARGETARCH=amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl /kubectl
ADD https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${TARGETARCH}/kubectl.sha256 /kubectl.sha256
RUN echo "$(cat /kubectl.sha256)  /kubectl" | sha256sum --check \
    && chmod 0755 /kubectl

# --- runtime: Python, the venv, git (auditor reads Git itself), ssh/gpg (Git over ssh, commit
# signatures), kubectl; no compilers, no pip cache, no root
FROM ${PYTHON_IMAGE} AS runtime
# Not pinned to package versions: the base image pins the Debian release, whose updates are
# security fixes that a rebuild should pick up.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 auditor \
    && useradd --uid 10001 --gid 10001 --home-dir /home/auditor --create-home \
        --shell /usr/sbin/nologin auditor
COPY --from=build /opt/auditor /opt/auditor
COPY --from=kubectl /kubectl /usr/local/bin/kubectl
# The root filesystem is mounted read-only in deploy/: temporary files (Git clones, kustomize
# renders) go to TMPDIR, an emptyDir there; the store and reports to /var/lib/auditor, a PVC.
ENV PATH=/opt/auditor/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/auditor \
    TMPDIR=/tmp
WORKDIR /var/lib/auditor
# numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd
USER 10001:10001
ENTRYPOINT ["auditor"]
CMD ["--help"]
