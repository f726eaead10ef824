#!/usr/bin/env python3
"""Keeps the alert rules and dashboards of deploy/ in step with the metrics topicbridge exports.

Reads the metric families of src/status/metrics.cpp (every `"name", "counter"|"gauge"|...`
pair: the Family() calls and the per-destination family table; all prefixed topicbridge_),
then checks every text file under deploy/ (and the paths given with --check):
  - each topicbridge_<name> it mentions is an exported family (histogram/summary families also
    allow _bucket, _sum, _count), so a renamed metric cannot leave a silent alert or panel;
  - *.json parses; *.yml/*.yaml parses (PyYAML when installed, else a minimal indentation and
    tab check);
  - every rule of deploy/prometheus/alerts.yml has alert, expr and summary/description/runbook
    annotations; every dashboard panel that is not a row has at least one target with an expr;
  - when promtool is installed (Debian package `prometheus`): `promtool check config` of
    deploy/prometheus/prometheus.yml (which also checks the rules' PromQL) and
    `promtool test rules` of deploy/prometheus/alerts_test.yml; otherwise says it skipped them.
Exit 0 when in step; 1 with one line per problem. Run:
  python3 tools/check_observability.py [--source-root DIR] [--check PATH]...
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

FAMILY_RE = re.compile(r'"([a-z][a-z0-9_]*)",\s*"(counter|gauge|histogram|summary)"')
REFERENCE_RE = re.compile(r"\btopicbridge_[a-z0-9_]+")
TEXT_SUFFIXES = (".yml", ".yaml", ".json", ".md", ".conf", ".service", ".txt")
SUFFIXES_BY_TYPE = {"histogram": ("", "_bucket", "_sum", "_count"),
                    "summary": ("", "_sum", "_count")}


def exported_names(metrics_cpp):
    with open(metrics_cpp, encoding="utf-8") as f:
        families = FAMILY_RE.findall(f.read())
    names = set()
    for name, kind in families:
        for suffix in SUFFIXES_BY_TYPE.get(kind, ("",)):
            names.add("topicbridge_" + name + suffix)
    return names


def text_files(paths):
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, _, files in os.walk(path):
            for name in sorted(files):
                if name.endswith(TEXT_SUFFIXES):
                    yield os.path.join(root, name)


def load_yaml(path, text, problems):
    try:
        import yaml  # noqa: PLC0415 - optional
    except ImportError:
        for number, line in enumerate(text.splitlines(), 1):
            if "\t" in line[: len(line) - len(line.lstrip())]:
                problems.append(f"{path}:{number}: tab in indentation")
        return None
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        problems.append(f"{path}: YAML does not parse: {e}")
        return None


def check_rules(path, documents, problems):
    for doc in documents or []:
        for group in (doc or {}).get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("alert") or rule.get("record") or "?"
                if not str(rule.get("expr", "")).strip():
                    problems.append(f"{path}: rule {name}: no expr")
                if "alert" in rule:
                    notes = rule.get("annotations", {})
                    for key in ("summary", "description", "runbook"):
                        if not str(notes.get(key, "")).strip():
                            problems.append(f"{path}: alert {name}: no {key} annotation")


def check_dashboard(path, dashboard, problems):
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    for panel in walk(dashboard.get("panels", [])):
        if panel.get("type") == "row":
            continue
        if not any(str(t.get("expr", "")).strip() for t in panel.get("targets", [])):
            problems.append(f"{path}: panel {panel.get('title')!r}: no target expression")


def check_file(path, known, problems):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for number, line in enumerate(text.splitlines(), 1):
        for name in REFERENCE_RE.findall(line):
            if name not in known:
                problems.append(f"{path}:{number}: {name} is not a metric of src/status/metrics.cpp")
    if path.endswith(".json"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{path}: JSON does not parse: {e}")
            return
        if "panels" in document:
            check_dashboard(path, document, problems)
    elif path.endswith((".yml", ".yaml")):
        documents = load_yaml(path, text, problems)
        if os.path.basename(path) == "alerts.yml":
            check_rules(path, documents, problems)


def run_promtool(prometheus_dir, problems):
    """PromQL syntax and the alert unit tests; returns a note for the summary line."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return "promtool not installed: PromQL and alert unit tests skipped"
    for args in (["check", "config", "prometheus.yml"], ["test", "rules", "alerts_test.yml"]):
        run = subprocess.run([promtool, *args], cwd=prometheus_dir, capture_output=True,
                             text=True, timeout=120)
        if run.returncode != 0:
            problems.append(f"promtool {' '.join(args)} failed:\n{run.stdout}{run.stderr}")
    return "promtool check config and test rules passed"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source-root", default=os.path.join(os.path.dirname(__file__), ".."))
    parser.add_argument("--check", action="append", default=[],
                        help="more files or folders to check (default: deploy/ only)")
    args = parser.parse_args()
    root = args.source_root
    known = exported_names(os.path.join(root, "src", "status", "metrics.cpp"))
    problems = []
    if len(known) < 10:
        problems.append(f"only {len(known)} families found in src/status/metrics.cpp: "
                        "has its Family(\"name\", \"type\", ...) shape changed?")
    paths = [os.path.join(root, "deploy")] + args.check
    checked = 0
    for path in text_files(paths):
        check_file(path, known, problems)
        checked += 1
    note = run_promtool(os.path.join(root, "deploy", "prometheus"), problems)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok: {checked} files under deploy/ reference only the {len(known)} exported names; "
              f"{note}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
