"""Write deploy/base/prometheusrule.yaml from prometheus/rules/*.yml (run by `make k8s-rules`).

The rule files stay the single source: promtool tests them, compose mounts them, and Kubernetes gets
the same groups through one PrometheusRule, with one translation: the monitoring components' job
selectors take kube-prometheus-stack's job names (K8S_JOB_SELECTORS). `--check` exits 1 when the committed file is out
of date, without writing.

Label and annotation values are kept as the text written in the rule file. Prometheus reads them as
strings, but a plain YAML load would turn `0.99` into a float and `true` into a bool, which the
PrometheusRule schema rejects (or, for `true`, spells differently).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "prometheus" / "rules"
OUT = ROOT / "deploy" / "base" / "prometheusrule.yaml"
RESOURCE_NAME = "grpc-observability-demo"
STR_TAG = "tag:yaml.org,2002:str"

# The compose and native job names of the monitoring components, and what they are called under
# kube-prometheus-stack: the operator names a ServiceMonitor's job after the Service it scrapes,
# `<release>-kube-prom-prometheus` / `...-alertmanager` or `<release>-prometheus` when the release
# is the chart's name. userd and orderd keep their names (their Services here are userd, orderd).
K8S_JOB_SELECTORS: dict[str, str] = {
    'job="prometheus"': 'job=~".+-prometheus"',
    'job="alertmanager"': 'job=~".+-alertmanager"',
}
# The alerts' runbook links point at the Slack sink natively and in compose; a cluster has none, so
# `--runbook-base-url` (make k8s-rules RUNBOOK_BASE_URL=...) points them at a served copy of
# docs/runbook.md. Without it they keep the local URL.
LOCAL_RUNBOOK = "http://127.0.0.1:9095/runbook"


class RulesError(Exception):
    """The rule files cannot be turned into one PrometheusRule; the message says which and why."""


def _mapping_value(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    pairs: list[tuple[yaml.Node, yaml.Node]] = node.value
    for key_node, value_node in pairs:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def _keep_label_values_as_text(document: yaml.Node) -> None:
    if not isinstance(document, yaml.MappingNode):
        return
    groups = _mapping_value(document, "groups")
    if not isinstance(groups, yaml.SequenceNode):
        return
    for group in groups.value:
        rules = _mapping_value(group, "rules") if isinstance(group, yaml.MappingNode) else None
        if not isinstance(rules, yaml.SequenceNode):
            continue
        for rule in rules.value:
            if not isinstance(rule, yaml.MappingNode):
                continue
            for field in ("labels", "annotations"):
                values = _mapping_value(rule, field)
                if not isinstance(values, yaml.MappingNode):
                    continue
                for _, value in values.value:
                    if isinstance(value, yaml.ScalarNode):
                        value.tag = STR_TAG


def load_rule_file(path: Path) -> list[dict[str, Any]]:
    """The `groups` of one Prometheus rule file, label and annotation values as written."""
    loader = yaml.SafeLoader(path.read_text(encoding="utf-8"))
    try:
        document = loader.get_single_node()
        if document is None:
            raise RulesError(f"{path}: empty file")
        _keep_label_values_as_text(document)
        data = loader.construct_document(document)
    except yaml.YAMLError as error:
        raise RulesError(f"{path}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise RulesError(f"{path}: expected a top-level `groups:` list")
    groups: list[dict[str, Any]] = data["groups"]
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise RulesError(f"{path}: every group needs a `name`")
    return groups


def rule_files(rules_dir: Path) -> list[Path]:
    return sorted(rules_dir.glob("*.yml"))


def collect_groups(files: Iterable[Path]) -> list[dict[str, Any]]:
    """All groups in file order. The operator writes one rule file per PrometheusRule, and
    Prometheus rejects a file with two groups of the same name, so names must be unique across
    files here even though separate files would allow a repeat."""
    groups: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for path in files:
        for group in load_rule_file(path):
            name = group["name"]
            if name in seen:
                raise RulesError(f"group {name!r} is defined in both {seen[name]} and {path}")
            seen[name] = path
            groups.append(group)
    if not groups:
        raise RulesError("no rule groups found: a PrometheusRule without groups is a mistake")
    return groups


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (most PromQL expressions) as literal blocks, so the file reads like the
    sources and diffs line by line."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(STR_TAG, value, style=style)


_Dumper.add_representer(str, _represent_str)


def for_kubernetes(groups: list[dict[str, Any]], runbook_base_url: str | None = None) -> list[dict[str, Any]]:
    """The groups with the monitoring components' job selectors renamed for kube-prometheus-stack
    and, when given, the runbook links on `runbook_base_url`."""
    for group in groups:
        for rule in group["rules"]:
            for local, cluster in K8S_JOB_SELECTORS.items():
                rule["expr"] = rule["expr"].replace(local, cluster)
            annotations = rule.get("annotations", {})
            if runbook_base_url and "runbook_url" in annotations:
                annotations["runbook_url"] = annotations["runbook_url"].replace(
                    LOCAL_RUNBOOK, runbook_base_url
                )
    return groups


def render(files: Sequence[Path], root: Path = ROOT, runbook_base_url: str | None = None) -> str:
    groups = for_kubernetes(collect_groups(files), runbook_base_url)
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": RESOURCE_NAME,
            "labels": {"app.kubernetes.io/name": RESOURCE_NAME},
        },
        "spec": {"groups": groups},
    }
    sources = "\n".join(f"#   {path.relative_to(root).as_posix()}" for path in files)
    header = (
        "# GENERATED by tools/gen_k8s_rules.py (`make k8s-rules`) from:\n"
        f"{sources}\n"
        "# Do not edit: change the rule files and regenerate; a test fails when this file drifts.\n"
    )
    body = yaml.dump(resource, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
    return header + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the PrometheusRule from prometheus/rules/*.yml.")
    parser.add_argument("--rules-dir", type=Path, default=RULES_DIR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is not up to date")
    parser.add_argument(
        "--runbook-base-url", help=f"where docs/runbook.md is served (default: {LOCAL_RUNBOOK})"
    )
    args = parser.parse_args(argv)
    root = ROOT if args.rules_dir.resolve().is_relative_to(ROOT) else args.rules_dir.resolve().parent
    try:
        text = render(rule_files(args.rules_dir.resolve()), root, args.runbook_base_url)
    except RulesError as error:
        print(f"gen_k8s_rules: {error}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
        if current != text:
            print(f"gen_k8s_rules: {args.out} is out of date; run `make k8s-rules`", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
