"""What the apiserver validates in a create that the simulator checks too: object names, and the field
selectors each kind supports (k8s.io/apimachinery's validation, the field label conversions)."""

from __future__ import annotations

import json
import re

from kuryr_cleanup.sim.kube.errors import bad_request, invalid_fields
from kuryr_cleanup.sim.kube.resources import Kind

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
# name rule -> (regex, max length, message with examples), as apimachinery's validation words them.
_NAME_RULES: dict[str, tuple[str, int, str]] = {
    "subdomain": (_DNS1123_SUBDOMAIN, 253,
                  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', "),
    "label": (_DNS1123_LABEL, 63,
              "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "),
    "dns1035": (_DNS1035_LABEL, 63,
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "),
}
# Namespaces are DNS labels and Services DNS-1035 labels; every other kind's name is a DNS subdomain.
_NAME_RULE_OF_KIND = {"v1/Namespace": "label", "v1/Service": "dns1035"}


def _go_quote(text: str) -> str:
    """Go's %q for the names validation quotes (JSON's escaping matches it for what names hold)."""
    return json.dumps(text, ensure_ascii=False)


def check_name(kind: Kind, name: str) -> None:
    """422 Invalid for a name the kind does not accept, with one cause per broken rule."""
    pattern, max_length, message = _NAME_RULES[_NAME_RULE_OF_KIND.get(kind.store_key, "subdomain")]
    problems = []
    if len(name) > max_length:
        problems.append(f"must be no more than {max_length} characters")
    if not re.fullmatch(pattern, name):
        problems.append(f"{message}regex used for validation is '{pattern}')")
    if problems:
        raise invalid_fields(kind, name, [("metadata.name", "FieldValueInvalid",
                                           f"Invalid value: {_go_quote(name)}: {p}") for p in problems])


# Field selectors each built-in kind's conversion accepts (pkg/apis/core/v1/conversion.go); the others
# accept metadata.name and metadata.namespace, with another message. Custom resources: those two, and
# the CRD handler's message.
_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    "v1/Pod": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
               "spec.serviceAccountName", "status.phase", "status.podIP", "status.podIPs",
               "status.nominatedNodeName"),
    "v1/Node": ("metadata.name", "spec.unschedulable"),
    "v1/Namespace": ("status.phase", "metadata.name"),
    "v1/Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                 "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                 "reportingComponent", "source", "type", "metadata.namespace", "metadata.name"),
}
_FIELD_ALIASES = {("v1/Pod", "spec.host"): "spec.nodeName"}


def check_field_selector(kind: Kind, fields: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The field selector as the kind's conversion makes it (aliases resolved); 400 for a field it
    does not support."""
    checked = []
    for path, op, value in fields:
        path = _FIELD_ALIASES.get((kind.store_key, path), path)
        supported = _FIELD_LABELS.get(kind.store_key)
        if supported is not None or not kind.builtin:
            if path not in (supported or ("metadata.name", "metadata.namespace")):
                raise bad_request(f"field label not supported: {path}")
        elif path not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f'"{path}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        checked.append((path, op, value))
    return checked
