#!/usr/bin/env python3
"""Prints the field tables of docs/mapping.md from the built-in rule files, so the document lists
exactly what the rules read. Usage: tools/gen_mapping_table.py [RULE_DIR] > table.md"""
import json, os, re, sys

RULES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'mapping', 'rules', 'hl7v2')

def load(path):
    text = open(path, encoding='utf-8').read()
    out, i, in_str = [], 0, False
    while i < len(text):  # strip // and /* */ comments outside strings
        c = text[i]
        if in_str:
            out.append(c)
            if c == '\\':
                out.append(text[i + 1]); i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True; out.append(c)
        elif text.startswith('//', i):
            while i < len(text) and text[i] != '\n': i += 1
            continue
        elif text.startswith('/*', i):
            i = text.index('*/', i) + 2; continue
        else:
            out.append(c)
        i += 1
    return json.loads(re.sub(r',(\s*[}\]])', r'\1', ''.join(out)))

EXPR = {'path', 'const', 'lookup', 'ref', 'datatype', 'fn', 'first', 'concat', 'hash', 'each'}

def how(e):
    parts = []
    if 'datatype' in e: parts.append('datatype ' + e['datatype'] + (' (each repetition)' if e.get('repeat') else ''))
    if 'lookup' in e: parts.append('table ' + e['lookup'])
    if 'fn' in e: parts.append(e['fn'] + '()')
    return ', '.join(parts)

def walk(node, fhir, rows, outer=''):
    if isinstance(node, list):
        for x in node: walk(x, fhir, rows, outer)
    elif isinstance(node, dict):
        if EXPR & node.keys():
            if node.get('fn') == 'no_fhir_target':  # read only to report the segment (no target)
                for a in node.get('args', []):
                    if isinstance(a, dict) and 'path' in a:
                        rows.append((a['path'], '(none)', 'no FHIR target: information issue mapping.no_fhir_target'))
                return
            if node.get('fn') == 'require_any':  # a guard around a template: transparent
                walk(node.get('args', [None])[0], fhir, rows, outer)
                return
            h = how(node)
            if 'path' in node: rows.append((node['path'], fhir, h or outer))
            inner = ('argument of ' + node['fn'] + '()') if 'fn' in node else (h or outer)
            for k in ('args', 'first', 'concat', 'hash'):
                if k in node: walk(node[k], fhir, rows, inner if k == 'args' else outer)
            if 'value' in node: walk(node['value'], fhir, rows, inner)
            if 'each' in node and 'template' in node: walk(node['template'], fhir + ' (each ' + node['each'] + ')', rows)
            return
        for k, v in node.items():
            if k in ('$require', '$keep'): continue
            walk(v, (fhir + '.value[x]' if isinstance(v, dict) and v.get('fn') == 'obx_value' else fhir) if k == '$merge' else fhir + '.' + k, rows, outer)

print('### Resources (resource/*.json)\n')
print('| Source field | FHIR element | How | Rule file |')
print('|---|---|---|---|')
for f in sorted(os.listdir(os.path.join(RULES, 'resource'))):
    rule = load(os.path.join(RULES, 'resource', f))
    rows = []
    walk(rule.get('body', {}), rule['resourceType'], rows)
    seen = set()
    for src, fhir, h in rows:
        if (src, fhir) in seen: continue
        seen.add((src, fhir))
        print(f'| `{src}` | `{fhir}` | {h} | resource/{f} |')
print('\n### Datatypes (datatype/*.json; `.n` = component n of the field, `.n.m` its subcomponent)\n')
print('| Component | FHIR element | How | Rule file |')
print('|---|---|---|---|')
for f in sorted(os.listdir(os.path.join(RULES, 'datatype'))):
    rows = []
    walk(load(os.path.join(RULES, 'datatype', f)), f[:-5], rows)
    seen = set()
    for src, fhir, h in rows:
        if (src, fhir) in seen: continue
        seen.add((src, fhir))
        print(f'| `{src}` | `{fhir}` | {h} | datatype/{f} |')
print('\n### Messages (message/*.json)\n')
print('| SS-MIX2 data type | MSH-9 | Resources (per segment) | Rule file |')
print('|---|---|---|---|')
for f in sorted(os.listdir(os.path.join(RULES, 'message'))):
    m = load(os.path.join(RULES, 'message', f))
    res = ', '.join(r['resource'] + (' per ' + r['each'] if 'each' in r else '') for r in m['resources'])
    print(f'| {f[:-5]} | {", ".join(m.get("messages", [])) or "(by data type only)"} | {res}; Provenance | message/{f} |')
