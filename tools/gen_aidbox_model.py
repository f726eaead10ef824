#!/usr/bin/env python3
"""Generates src/aidbox/fhir_model_table.cpp: the FHIR R4 facts the Aidbox -> FHIR converter
needs (choice elements and their types, References, contained resources, complex types to descend
into), from HL7 fhirpath.js's model files (shared/fhir-model/r4, BSD-style licence beside them).

Usage: tools/gen_aidbox_model.py ../shared/fhir-model/r4 src/aidbox/fhir_model_table.cpp [--check]
With --check it writes nothing and fails if the committed table differs from what the model files
give (exit 77, "skipped" to meson, when the model files are absent).

The output is committed, so building never needs shared/. Rows that the runtime would find anyway
by falling back along the type hierarchy (Observation.id -> DomainResource.id, Age.value ->
Quantity.value, Observation.component.extension -> BackboneElement.extension) are left out, and so
are the expanded choice names (Observation.valueQuantity): choices are kept as one row with a type
mask. Layout and lookup rules: src/aidbox/fhir_model.h.
"""
import json
import os
import sys

BACKBONE_TYPES = ("BackboneElement", "Element")


def lower_first(s):
    return s[:1].lower() + s[1:]


def is_primitive(type_name):
    return type_name[:1].islower() or type_name.startswith("System.")


def main():
    src, out = sys.argv[1], sys.argv[2]
    check = "--check" in sys.argv[3:]
    if check and not os.path.isdir(src):
        print("skipped: no model files at " + src)
        return 77

    def load(name):
        with open(os.path.join(src, name + ".json")) as f:
            return json.load(f)

    path2type = load("path2Type")
    choices = load("choiceTypePaths")
    elsewhere = load("pathsDefinedElsewhere")
    parents = load("type2Parent")

    # Complex types (and resources): the ones whose children can be looked up.
    type_names = {t for t in parents if not is_primitive(t)}
    type_names |= {p for p in parents.values() if not is_primitive(p)}
    type_names |= {"Element", "Resource"}
    types = sorted(type_names)
    type_index = {t: i for i, t in enumerate(types)}

    def parent_of(t):
        p = parents.get(t)
        return type_index[p] if p in type_index else -1

    # Choice types: FHIR suffix as in choiceTypePaths ("DateTime"), Aidbox key as the FHIR type
    # name ("dateTime" for primitives, "Quantity" for complex types).
    choice_suffixes = sorted({t for ts in choices.values() for t in ts})
    if len(choice_suffixes) > 64:
        sys.exit("more than 64 choice types: widen the mask")
    primitive_names = {t for t in parents if is_primitive(t)}
    choice_rows = []
    for suffix in choice_suffixes:
        if lower_first(suffix) in primitive_names:
            choice_rows.append((lower_first(suffix), suffix, -1))
        elif suffix in type_index:
            choice_rows.append((suffix, suffix, type_index[suffix]))
        else:
            sys.exit("choice type %s is neither primitive nor a known type" % suffix)
    choice_bit = {suffix: i for i, suffix in enumerate(choice_suffixes)}

    # Every path as (tag, value): value is a type name, a fallback type, a target path or a mask.
    rows = {}
    expanded = set()
    for path, ts in choices.items():
        mask = 0
        for t in ts:
            mask |= 1 << choice_bit[t]
            expanded.add(path + t)
        rows[path] = ("kChoice", mask)
    for path, t in path2type.items():
        if path in expanded or "." not in path:
            continue
        if isinstance(t, dict):
            t = t["code"]
        if t in BACKBONE_TYPES:
            rows[path] = ("kBackbone", t)
        elif is_primitive(t):
            rows[path] = ("kPrimitive", None)
        elif t in type_index:
            rows[path] = ("kType", t)
        else:
            sys.exit("%s: unknown type %s" % (path, t))
    for path, target in elsewhere.items():
        rows[path] = ("kAlias", target)

    def fallback_of(base):
        """The first type the runtime tries after `base` itself for a child of `base`."""
        if base in type_index:
            return parents.get(base)
        row = rows.get(base)
        if row and row[0] == "kBackbone":
            return row[1]
        if row and row[0] == "kAlias":
            return fallback_of(row[1])
        return None

    def inherited(path):
        base, _, name = path.rpartition(".")
        t = fallback_of(base)
        while t:
            if t + "." + name in rows:
                return rows[t + "." + name]
            t = parents.get(t)
        return None

    # MetadataResource is an abstract profile no resource names as its parent: unreachable.
    reachable = [p for p in rows if p.split(".")[0] in type_index]
    kept = sorted(p for p in reachable if inherited(p) != rows[p])
    row_index = {p: i for i, p in enumerate(kept)}
    for path in kept:
        if rows[path][0] == "kAlias" and rows[path][1] not in row_index:
            sys.exit("%s: alias target %s has no row" % (path, rows[path][1]))

    masks = sorted({v for tag, v in rows.values() if tag == "kChoice"})
    mask_index = {m: i for i, m in enumerate(masks)}

    def arg(path):
        tag, v = rows[path]
        if tag == "kChoice":
            return mask_index[v]
        if tag in ("kType", "kBackbone"):
            return type_index[v]
        if tag == "kAlias":
            return row_index[v]
        return 0

    lines = [
        "// Generated by tools/gen_aidbox_model.py from HL7 fhirpath.js's FHIR R4 model files",
        "// (shared/fhir-model/r4, BSD-style licence). Do not edit: regenerate.",
        "// clang-format off",
        '#include "fhir_model.h"',
        "",
        "namespace topicbridge::fhir_model {",
        "",
        "const TypeRow kTypes[] = {",
    ]
    for t in types:
        lines.append('    {"%s", %d},' % (t, parent_of(t)))
    lines += ["};", "const std::size_t kTypeCount = %d;" % len(types), ""]
    lines.append("const ChoiceTypeRow kChoiceTypes[] = {")
    for key, suffix, t in choice_rows:
        lines.append('    {"%s", "%s", %d},' % (key, suffix, t))
    lines += ["};", "const std::size_t kChoiceTypeCount = %d;" % len(choice_rows), ""]
    lines.append("const std::uint64_t kChoiceMasks[] = {")
    for m in masks:
        lines.append("    0x%016xull," % m)
    lines += ["};", ""]
    lines.append("// Every path below, concatenated in sorted order; kPaths holds offsets into it.")
    lines.append("const char kPathText[] =")
    offset = 0
    entries = []
    for path in kept:
        entries.append("    {%d, %d, PathTag::%s, %d}," % (offset, len(path), rows[path][0], arg(path)))
        offset += len(path)
        lines.append('    "%s"' % path)
    lines[-1] += ";"
    lines += ["", "// In kPathText order: offset, length, what the path is, argument (see PathTag)."]
    lines += ["const PathRow kPaths[] = {"] + entries
    lines += ["};", "const std::size_t kPathCount = %d;" % len(kept), ""]
    lines += ["}  // namespace topicbridge::fhir_model", ""]
    text = "\n".join(lines)
    summary = "%d paths (of %d), %d types, %d choice types, %d masks" % (
        len(kept), len(rows), len(types), len(choice_rows), len(masks))
    if check:
        with open(out) as f:
            if f.read() != text:
                print("%s is stale: rerun tools/gen_aidbox_model.py" % out)
                return 1
        print("up to date: " + summary)
        return 0
    with open(out, "w") as f:
        f.write(text)
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
