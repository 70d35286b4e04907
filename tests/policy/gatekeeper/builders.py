"""Writing ConstraintTemplates, Constraints and objects as real YAML files for the tests.

Modelled on gatekeeper-library's layout (a template, constraints beside it), written here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml


def indent(text: str, spaces: int) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n") + "\n", " " * spaces)


def template_yaml(
    kind: str,
    rego: str,
    *,
    libs: tuple[str, ...] = (),
    api_version: str = "templates.gatekeeper.sh/v1",
    code_form: bool = False,
) -> str:
    """A ConstraintTemplate with `rego` (and `libs`) as literal blocks, as people write them."""
    head = textwrap.dedent(
        f"""\
        apiVersion: {api_version}
        kind: ConstraintTemplate
        metadata:
          name: {kind.lower()}
          annotations:
            metadata.gatekeeper.sh/title: "{kind} title"
            description: What {kind} checks.
        spec:
          crd:
            spec:
              names:
                kind: {kind}
          targets:
            - target: admission.k8s.gatekeeper.sh
        """
    )
    if code_form:
        body = "      code:\n"
        body += "        - engine: K8sNativeValidation\n"
        body += "          source:\n"
        body += "            validations:\n"
        body += "              - expression: 'true'\n"
        body += "        - engine: Rego\n"
        body += "          source:\n"
        body += "            rego: |\n" + indent(rego, 14)
        if libs:
            body += "            libs:\n"
            body += "".join("              - |\n" + indent(lib, 16) for lib in libs)
    else:
        body = "      rego: |\n" + indent(rego, 8)
        if libs:
            body += "      libs:\n"
            body += "".join("        - |\n" + indent(lib, 10) for lib in libs)
    return head + body


def constraint_yaml(kind: str, name: str, spec: dict[str, Any] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec or {},
        },
        sort_keys=False,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pod(name: str, namespace: str = "ml", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": spec or {"containers": [{"name": "main", "image": "registry.example/model:1"}]},
    }


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def ingress(
    name: str, namespace: str, host: str, api_version: str = "networking.k8s.io/v1"
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": host}]},
    }


def write_objects(path: Path, *objects: dict[str, Any]) -> Path:
    return write(path, yaml.safe_dump_all(list(objects), sort_keys=False))


# Rego v0, as every gatekeeper-library template is written.
REQUIRED_LABELS_REGO = """
package k8srequiredlabels

violation[{"msg": msg, "details": {"missing_labels": missing}}] {
  provided := {label | input.review.object.metadata.labels[label]}
  required := {label | label := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("you must provide labels: %v", [missing])
}
"""

PRIVILEGED_REGO = """
package k8spspprivileged

import data.lib.exempt.is_exempt

violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  not is_exempt(c)
  c.securityContext.privileged
  msg := sprintf("Privileged container is not allowed: %v", [c.name])
}
"""

EXEMPT_LIB = """
package lib.exempt

is_exempt(container) {
  exemption := object.get(input.parameters, "exemptImages", [])[_]
  startswith(container.image, trim_suffix(exemption, "*"))
}
"""

UNIQUE_HOST_REGO = """
package k8suniqueingresshost

identical(obj, review) {
  obj.metadata.namespace == review.object.metadata.namespace
  obj.metadata.name == review.object.metadata.name
}

violation[{"msg": msg}] {
  input.review.kind.kind == "Ingress"
  re_match("^(extensions|networking.k8s.io)$", input.review.kind.group)
  host := input.review.object.spec.rules[_].host
  other := data.inventory.namespace[ns][otherapiversion]["Ingress"][name]
  re_match("^(extensions|networking.k8s.io)/.+$", otherapiversion)
  other.spec.rules[_].host == host
  not identical(other, input.review)
  msg := sprintf("Ingress host conflicts with Ingress %v/%v <%v>", [ns, name, host])
}
"""

EXTERNAL_DATA_REGO = """
package k8sexternaldata

violation[{"msg": msg}] {
  images := [img | img := input.review.object.spec.containers[_].image]
  response := external_data({"provider": "cosign", "keys": images})
  count(response.errors) > 0
  msg := sprintf("unsigned images: %v", [response.errors])
}
"""
