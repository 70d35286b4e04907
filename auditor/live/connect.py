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

from auditor.config import ClusterSource
from auditor.errors import ConfigError
from auditor.live.transport import Transport, TransportError
from auditor.model import ClusterInfo

log = logging.getLogger(__name__)


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
    if path is not None and not os.path.isfile(path):
        raise ConfigError(f"cluster {source.name}: kubeconfig file not found", file=path)
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
