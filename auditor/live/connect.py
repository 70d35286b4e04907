"""Connecting to a cluster: an `ApiClient` from a kubeconfig context or in-cluster, and identity.

The `kubernetes` client resolves the credentials (kubeconfig contexts, exec plugins, in-cluster
service accounts); a kubeconfig that cannot be used at all is the one `ConfigError` of the live
stage.
"""

from __future__ import annotations

import json
import logging
import os

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION, KubeConfigMerger

from auditor.bounded import read_bounded
from auditor.config import ClusterSource
from auditor.errors import ConfigError, InputError
from auditor.live.transport import Transport, TransportError
from auditor.model import ClusterInfo
from auditor.safeyaml import load_documents

log = logging.getLogger(__name__)

# Kubeconfigs with embedded certificates for hundreds of contexts stay far below this.
MAX_KUBECONFIG_BYTES = 64 * 1024 * 1024


def connect(source: ClusterSource) -> tuple[ApiClient, str]:
    """An `ApiClient` for the source and the context it uses; global client state is untouched."""
    # type.__call__ bypasses the metaclass older clients use to copy the global default.
    configuration: Configuration = type.__call__(Configuration)
    # urllib3 would otherwise retry dropped connections and timeouts silently, three times;
    # retries are ours, counted and reported.
    configuration.retries = False
    if source.in_cluster:
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise ConfigError(
                f"cluster {source.name}: in-cluster configuration is unusable: {exc}",
                key="in_cluster",
                hint="in_cluster works only inside a pod with a service account token",
            ) from None
        return ApiClient(configuration=configuration), "in-cluster"
    path = os.path.expanduser(source.kubeconfig) if source.kubeconfig else None
    shown = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    check_kubeconfig_files(source.name, path)
    try:
        # the library's own reader, so KUBECONFIG lists merge exactly as they will be loaded
        merged = KubeConfigMerger(path or KUBE_CONFIG_DEFAULT_LOCATION).config
    except Exception as exc:
        # it raises whatever its parsing hits (ConfigException, YAML errors, KeyError, ...)
        raise ConfigError(
            f"cluster {source.name}: kubeconfig is unusable: {exc}", file=shown
        ) from None
    document = getattr(merged, "value", None)
    if not isinstance(document, dict):
        raise ConfigError(f"cluster {source.name}: no kubeconfig found", file=shown)
    entries = [getattr(c, "value", c) for c in document.get("contexts") or ()]  # ConfigNodes
    names = [str(e["name"]) for e in entries if isinstance(e, dict) and e.get("name")]
    context = source.context or document.get("current-context")
    if not context:
        raise ConfigError(
            f"cluster {source.name}: the kubeconfig has no current-context",
            file=shown,
            hint="name one with `context:` in auditor.yaml or --context",
        )
    if context not in names:
        raise ConfigError(
            f"cluster {source.name}: context {context!r} not found in the kubeconfig "
            f"(it has: {', '.join(names) or 'none'})",
            file=shown,
            key="context",
        )
    try:
        api_client = kube_config.new_client_from_config(
            config_file=path,
            context=context,
            # a refreshed token must not be written back into the user's kubeconfig
            persist_config=False,
            client_configuration=configuration,
        )
    except Exception as exc:
        # exec plugins and auth providers run here; any failure means no usable credentials
        raise ConfigError(
            f"cluster {source.name}: context {context!r} is unusable: {exc}", file=shown
        ) from None
    return api_client, context


def check_kubeconfig_files(cluster: str, path: str | None) -> None:
    """Each kubeconfig file the client will read, through the guards every input passes
    (a regular file within MAX_KUBECONFIG_BYTES, no alias bomb, no key given twice) before the
    client reads it: it would block on a named pipe and read `/dev/zero` until memory runs out.

    `path` (from --kubeconfig or auditor.yaml) must exist; files of a KUBECONFIG list that do
    not exist are skipped, as the client and kubectl skip them.
    """
    if path is not None:
        paths, required = [path], True
    else:
        listed = os.environ.get("KUBECONFIG") or KUBE_CONFIG_DEFAULT_LOCATION
        paths = [os.path.expanduser(p) for p in listed.split(os.pathsep) if p]
        required = False
    for name in paths:
        if not required and not os.path.exists(name):
            continue
        content = read_bounded(
            name,
            max_bytes=MAX_KUBECONFIG_BYTES,
            what=f"cluster {cluster}: kubeconfig file",
            error=ConfigError,
        )
        try:
            load_documents(content, name, max_bytes=MAX_KUBECONFIG_BYTES)
        except InputError as exc:
            raise ConfigError(
                f"cluster {cluster}: kubeconfig is unusable: {exc.message}",
                file=exc.file,
                line=exc.line,
            ) from None


def identify(transport: Transport, info: ClusterInfo) -> ClusterInfo:
    """`info` with the server's version and the kube-system namespace's uid, when readable.

    Nice to record, never a reason to fail a read: whatever cannot be read stays blank, and
    one try is enough.
    """
    version = uid = ""
    try:
        reply = transport.get("/version")
        if reply.status == 200:
            version = str(json.loads(reply.body).get("gitVersion") or "")
    except (TransportError, ValueError, AttributeError) as exc:
        log.debug("cluster %s: no version: %s", info.name, exc)
    try:
        reply = transport.get("/api/v1/namespaces/kube-system")
        if reply.status == 200:
            uid = str((json.loads(reply.body).get("metadata") or {}).get("uid") or "")
    except (TransportError, ValueError, AttributeError) as exc:
        log.debug("cluster %s: no kube-system uid: %s", info.name, exc)
    return ClusterInfo(
        name=info.name, server=info.server, context=info.context, uid=uid, version=version
    )
