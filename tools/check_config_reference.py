#!/usr/bin/env python3
"""Keeps docs/configuration.md in step with the code.

Reads what the code accepts, from the source (no build needed):
  - the YAML keys: every Reader::CheckKeys list of src/config/config_loader.cpp (inline lists and
    the named k...Keys sets), with the key path each list applies to;
  - the allowed values of the named value sets (kInteractions, kContents);
  - the defaults that src/config/config.h (include/topicbridge/config.h) writes as literals;
  - the destination parameters of src/sinks/parameter_schema.cpp (name, value type, required);
  - the destination kinds of src/sinks/sink_factory.cpp (SupportedSinkKinds).
Then checks the reference doc, both ways:
  - every key has a table row whose first cell names it as `path` (e.g. `postgres.dsn`,
    `topics[].trigger[].fhirPathCriteria`), and every such row names a key the code accepts;
  - a literal default of the code appears in its row's "default" column;
  - every parameter has a row in "## NATS parameters" / "## Kafka parameters" with the value type
    the code expects and "yes" in the required column exactly when the code requires it, and no
    row names a parameter the code does not know;
  - every kind and every allowed value appears in the doc as `value`.
Exit 0 when in step; 1 with one line per difference. Run:
  python3 tools/check_config_reference.py [--source-root DIR] [--doc FILE]
"""

import argparse
import os
import re
import sys

# Named key sets of config_loader.cpp → the key path their keys live under.
KEY_SET_PATHS = {
    "kTopicKeys": "topics[]",
    "kTriggerKeys": "topics[].trigger[]",
    "kDestinationKeys": "destinations[]",
}
# Named value sets → the key whose allowed values they are.
VALUE_SETS = {
    "kInteractions": "topics[].trigger[].supportedInteraction",
    "kContents": "destinations[].content",
}
# Parameter spec lists of parameter_schema.cpp → the doc section that documents them.
SPEC_SECTIONS = {
    "kNatsSpecs": "NATS parameters",
    "kKafkaSpecs": "Kafka parameters",
}
VALUE_TYPES = {"String": "valueString", "Integer": "valueInteger", "Boolean": "valueBoolean"}
# Structs of config.h → the YAML section of their members (member name = key).
STRUCT_SECTIONS = {
    "PostgresConfig": "postgres",
    "HttpConfig": "http",
    "LogConfig": "log",
    "DeliveryConfig": "delivery",
}
# Members of Config that are keys of another section.
CONFIG_MEMBER_KEYS = {
    "aidbox_base_url": "aidbox.base_url",
    "topics_from_database": "aidbox.topics_from_database",
}


def strings(text):
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text)


def read(root, *parts):
    with open(os.path.join(root, *parts), encoding="utf-8") as f:
        return f.read()


def code_keys(loader, problems):
    """{key path: None} for every key any CheckKeys call accepts, plus value sets."""
    named = {name: strings(body) for name, body in re.findall(
        r"const std::set<std::string> (k\w+) = \{(.*?)\};", loader, re.S)}
    keys = set()
    calls = re.findall(r"CheckKeys\(\s*\w+\s*,\s*(\"[^\"]*\"|\w+)\s*,\s*(\{.*?\}|k\w+)\s*\)",
                       loader, re.S)
    if not calls:
        problems.append("config_loader.cpp: found no CheckKeys(...) call: update this tool")
    for path_arg, list_arg in calls:
        if list_arg.startswith("k"):
            if list_arg not in KEY_SET_PATHS:
                problems.append(f"config_loader.cpp: CheckKeys with {list_arg}: add its key path "
                                "to KEY_SET_PATHS in tools/check_config_reference.py")
                continue
            if list_arg not in named:
                problems.append(f"config_loader.cpp: cannot read the set {list_arg}")
                continue
            prefix, names = KEY_SET_PATHS[list_arg], named[list_arg]
        else:
            prefix, names = path_arg.strip('"'), strings(list_arg)
        for name in names:
            keys.add(f"{prefix}.{name}" if prefix else name)
    values = {}
    for name, key in VALUE_SETS.items():
        if name not in named:
            problems.append(f"config_loader.cpp: the value set {name} is gone: update this tool")
        else:
            values[key] = named[name]
    return keys, values


def code_defaults(config_h):
    """{key path: literal default} for members initialised with a string or number literal."""
    defaults = {}
    for struct, body in re.findall(r"struct (\w+) \{(.*?)\n\};", config_h, re.S):
        for member, literal in re.findall(
                r"^\s*[\w:<>]+ (\w+) = (\"[^\"]*\"|-?\d+|true|false);", body, re.M):
            if struct in STRUCT_SECTIONS:
                defaults[f"{STRUCT_SECTIONS[struct]}.{member}"] = literal.strip('"')
            elif struct == "Config" and member in CONFIG_MEMBER_KEYS:
                defaults[CONFIG_MEMBER_KEYS[member]] = literal.strip('"')
    return defaults


def code_parameters(schema, problems):
    """{section: {name: (value type, required)}}"""
    out = {}
    for name, body in re.findall(r"const std::vector<ParameterSpec> (k\w+) = \{(.*?)\};",
                                 schema, re.S):
        if name not in SPEC_SECTIONS:
            problems.append(f"parameter_schema.cpp: {name}: add its doc section to SPEC_SECTIONS "
                            "in tools/check_config_reference.py")
            continue
        specs = re.findall(r'\{"(\w+)",\s*ValueKind::k(\w+),\s*(true|false),\s*(?:true|false)\}',
                           body)
        out[SPEC_SECTIONS[name]] = {p: (VALUE_TYPES.get(kind, kind), req == "true")
                                    for p, kind, req in specs}
    if not out:
        problems.append("parameter_schema.cpp: found no ParameterSpec list: update this tool")
    return out


def code_kinds(factory, problems):
    match = re.search(r"SupportedSinkKinds\(\)\s*\{.*?\{(.*?)\};", factory, re.S)
    if not match:
        problems.append("sink_factory.cpp: cannot find SupportedSinkKinds(): update this tool")
        return []
    return strings(match.group(1))


def doc_tables(doc):
    """[(section heading, header cells, [row cells])] for every markdown table."""
    tables, section, header, rows = [], "", None, []
    for line in doc.splitlines() + [""]:
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(cells)
            continue
        if header is not None:
            tables.append((section, header, rows))
            header, rows = None, []
    return tables


def ticked(cell):
    return re.findall(r"`([^`]+)`", cell)


def check(root, doc_path):
    problems = []
    loader = read(root, "src", "config", "config_loader.cpp")
    config_h = read(root, "include", "topicbridge", "config.h")
    schema = read(root, "src", "sinks", "parameter_schema.cpp")
    factory = read(root, "src", "sinks", "sink_factory.cpp")
    keys, values = code_keys(loader, problems)
    defaults = code_defaults(config_h)
    parameters = code_parameters(schema, problems)
    kinds = code_kinds(factory, problems)
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    doc_name = os.path.relpath(doc_path, root)

    key_rows = {}  # key path -> row cells, from tables whose first column is "key"
    param_rows = {}  # section -> {name: row cells}
    for section, header, rows in doc_tables(doc):
        if header[0] == "key":
            for row in rows:
                for key in ticked(row[0]):
                    key_rows[key] = dict(zip(header, row))
        elif header[0] == "parameter" and section in parameters:
            for row in rows:
                for name in ticked(row[0]):
                    param_rows.setdefault(section, {})[name] = dict(zip(header, row))

    for key in sorted(keys - key_rows.keys()):
        problems.append(f"{doc_name}: no row for key `{key}` (accepted by config_loader.cpp)")
    for key in sorted(key_rows.keys() - keys):
        problems.append(f"{doc_name}: documents `{key}`, which config_loader.cpp does not accept")
    for key, literal in sorted(defaults.items()):
        row = key_rows.get(key)
        if row is not None and literal not in row.get("default", ""):
            problems.append(f"{doc_name}: `{key}` default should show {literal!r} (config.h)")

    for section, specs in sorted(parameters.items()):
        rows = param_rows.get(section, {})
        for name, (value_type, required) in sorted(specs.items()):
            row = rows.get(name)
            if row is None:
                problems.append(f"{doc_name}: no row for `{name}` under '## {section}'")
                continue
            if value_type not in row.get("type", ""):
                problems.append(f"{doc_name}: `{name}` ({section}) takes {value_type}")
            if (row.get("required", "").lower() == "yes") != required:
                problems.append(f"{doc_name}: `{name}` ({section}) required column should be "
                                f"{'yes' if required else 'no'}")
        for name in sorted(rows.keys() - specs.keys()):
            problems.append(f"{doc_name}: documents parameter `{name}` under '## {section}', "
                            "which parameter_schema.cpp does not know")

    prose = re.sub(r"^```.*?^```", "", doc, flags=re.S | re.M)  # fenced blocks would pair badly
    mentioned = set(re.findall(r"`([^`\n]+)`", prose))
    for kind in kinds:
        if kind not in mentioned:
            problems.append(f"{doc_name}: destination kind `{kind}` is not mentioned")
    for key, allowed in sorted(values.items()):
        for value in allowed:
            if value not in mentioned:
                problems.append(f"{doc_name}: value `{value}` of {key} is not mentioned")
    return problems


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source-root", default=os.path.dirname(here))
    parser.add_argument("--doc", help="default: <source-root>/docs/configuration.md")
    args = parser.parse_args()
    doc = args.doc or os.path.join(args.source_root, "docs", "configuration.md")
    problems = check(args.source_root, doc)
    for p in problems:
        print(p)
    if problems:
        print(f"config reference: {len(problems)} differences between the code and {doc}")
        return 1
    print(f"config reference: {doc} matches the code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
