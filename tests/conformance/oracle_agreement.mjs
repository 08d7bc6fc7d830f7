#!/usr/bin/env node
// Agreement between kakehashi's validator (`kakehashi validate`) and the independent validator
// (tools/oracle/validate.mjs, @medplum/core 4.5.2). Run by ctest (tests/conformance/CMakeLists.txt).
//
// Usage: node oracle_agreement.mjs --kakehashi BIN --root SRC MODE
//   MODE fixtures   tests/cases/conformance/{valid,invalid}/*.json: kakehashi must accept every
//                   valid fixture and reject every invalid one; the oracle must give the same
//                   verdict, except for the fixtures listed in
//                   tests/cases/conformance/oracle_exceptions.tsv with the oracle's verdict and
//                   the reason. A listed fixture on which both agree is a stale entry and fails.
//                   The JSON samples under samples/jpcore/ must pass both validators.
//   MODE expected   every expected.json under tests/cases/ (found afresh on each run, so new
//                   conversion cases are picked up automatically) must pass both validators.
// Exit 0 when everything holds, 1 otherwise (each failure is printed).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const kakehashi = opt('--kakehashi');
const root = opt('--root');
const mode = args[args.length - 1];
if (!kakehashi || !root || !['fixtures', 'expected'].includes(mode)) {
  console.error('usage: oracle_agreement.mjs --kakehashi BIN --root SRC fixtures|expected');
  process.exit(2);
}
const oracleDir = join(root, 'tools/oracle');
if (!existsSync(join(oracleDir, 'node_modules/@medplum/core'))) {
  console.error('oracle_agreement: tools/oracle/node_modules is missing: run tools/setup.sh');
  process.exit(1);
}

function walk(dir, accept, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, accept, out);
    else if (accept(name)) out.push(path);
  }
  return out;
}

// kakehashi's verdict per file, from one `kakehashi validate --quiet` over all of them (one
// process instead of one per file: each start costs ~50 ms of CPU, most of this test's time).
// --quiet prints only the resources with errors: a line "ERROR WHERE LABEL: ..." (WHERE is the
// file, FILE#N for an NDJSON line, FILE#entry[i] for a Bundle entry) and its issues indented
// below. A file without such a line is valid. The exit status must agree (0: no file invalid,
// 1: some); any other status (a file unreadable, a crash) is a failure for every file.
function kakehashiVerdicts(files) {
  const verdicts = new Map();
  if (files.length === 0) return verdicts;
  const r = spawnSync(kakehashi, ['validate', '--quiet', ...files], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0 && r.status !== 1) {
    const why = `kakehashi validate exited ${r.status ?? r.signal}: ${(r.stderr || '').trim()}`;
    for (const file of files) verdicts.set(file, { error: why });
    return verdicts;
  }
  for (const file of files) verdicts.set(file, { valid: true });
  let current = null;  // the verdict the indented issue lines below belong to
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('ERROR ')) {
      const rest = line.slice(6);
      // The longest listed file that this line names (a path, then ' ' or '#').
      let owner;
      for (const file of files) {
        if (rest.startsWith(file) && (rest[file.length] === ' ' || rest[file.length] === '#') &&
            (!owner || file.length > owner.length)) {
          owner = file;
        }
      }
      if (!owner) {
        current = null;
        failures.push(`kakehashi validate printed a line for no listed file: ${line}`);
        continue;
      }
      current = verdicts.get(owner);
      current.valid = false;
      current.detail = current.detail ? `${current.detail}\n${line}` : line;
    } else if (line.trim() && current) {
      current.detail += `\n${line}`;
    } else if (line.trim()) {
      failures.push(`kakehashi validate printed an issue line outside a resource: ${line}`);
    }
  }
  const invalid = [...verdicts.values()].some((v) => !v.valid);
  if (invalid !== (r.status === 1)) {
    failures.push(`kakehashi validate exited ${r.status} but ${invalid ? 'reported' : 'did not report'} an invalid resource`);
  }
  return verdicts;
}

// The oracle's verdict per file (a Bundle or resource file is one line; NDJSON several).
function oracleVerdicts(files) {
  const verdicts = new Map();
  if (files.length === 0) return verdicts;
  const r = spawnSync(process.execPath, [join(oracleDir, 'validate.mjs'), ...files], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0 && r.status !== 1) {
    console.error(`oracle failed (exit ${r.status}): ${r.stderr}`);
    process.exit(1);
  }
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const d = JSON.parse(line);
    const prev = verdicts.get(d.file) ?? { valid: true, issues: [] };
    prev.valid = prev.valid && d.valid;
    prev.issues.push(...(d.issues ?? []).filter((i) => i.severity === 'error' || i.severity === 'fatal'));
    verdicts.set(d.file, prev);
  }
  return verdicts;
}

const failures = [];
const label = (v) => (v ? 'valid' : 'invalid');
const rel = (f) => relative(root, f);

// `oracle`: the oracle's verdicts, for these files among others.
function bothPass(files, what, oracle) {
  const kakehashiOf = kakehashiVerdicts(files);
  for (const file of files) {
    const k = kakehashiOf.get(file);
    const o = oracle.get(file);
    if (k.error) failures.push(`${rel(file)}: ${k.error}`);
    else if (!k.valid) failures.push(`${rel(file)}: kakehashi rejects ${what}:\n${k.detail}`);
    if (!o) failures.push(`${rel(file)}: no oracle verdict`);
    else if (!o.valid) {
      failures.push(`${rel(file)}: oracle rejects ${what}: ${JSON.stringify(o.issues)}`);
    }
  }
  return files.length;
}

if (mode === 'fixtures') {
  const base = join(root, 'tests/cases/conformance');
  const exceptions = new Map();
  for (const line of readFileSync(join(base, 'oracle_exceptions.tsv'), 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [fixture, verdict, reason] = line.split('\t');
    if (!['valid', 'invalid'].includes(verdict) || !reason) {
      failures.push(`oracle_exceptions.tsv: malformed line: ${line}`);
      continue;
    }
    exceptions.set(fixture, { verdict, reason });
  }
  const fixtures = [
    ...walk(join(base, 'valid'), (n) => n.endsWith('.json')).map((f) => ({ file: f, expect: true })),
    ...walk(join(base, 'invalid'), (n) => n.endsWith('.json')).map((f) => ({ file: f, expect: false })),
  ];
  const samples = walk(join(root, 'samples/jpcore'), (n) => n.endsWith('.json'));
  // One oracle run over the fixtures and the samples (its start loads the definitions, ~2 s).
  const oracle = oracleVerdicts([...fixtures.map((f) => f.file), ...samples]);
  const kakehashiOf = kakehashiVerdicts(fixtures.map((f) => f.file));
  let agreed = 0;
  let known = 0;
  for (const { file, expect } of fixtures) {
    const name = relative(base, file);
    const k = kakehashiOf.get(file);
    const o = oracle.get(file);
    if (k.error) {
      failures.push(`${name}: ${k.error}`);
      continue;
    }
    if (k.valid !== expect) {
      failures.push(`${name}: kakehashi says ${label(k.valid)}, fixture is ${label(expect)}${k.detail ? '\n' + k.detail : ''}`);
    }
    if (!o) {
      failures.push(`${name}: no oracle verdict`);
      continue;
    }
    const listed = exceptions.get(name);
    if (o.valid === k.valid) {
      if (listed) failures.push(`${name}: listed in oracle_exceptions.tsv but both now say ${label(k.valid)} (stale entry)`);
      else agreed++;
    } else if (listed && listed.verdict === label(o.valid)) {
      known++;
    } else {
      failures.push(`${name}: kakehashi says ${label(k.valid)}, oracle says ${label(o.valid)} ${JSON.stringify(o.issues)} (not in oracle_exceptions.tsv)`);
    }
    exceptions.delete(name);
  }
  for (const name of exceptions.keys()) failures.push(`oracle_exceptions.tsv: ${name} is not a fixture`);
  const passing = bothPass(samples, 'a sample', oracle);
  console.log(`fixtures: ${fixtures.length} (${agreed} agree, ${known} listed oracle exceptions); samples passing both: ${passing}`);
} else {
  const files = walk(join(root, 'tests/cases'), (n) => n === 'expected.json');
  const n = bothPass(files, 'an expected output', oracleVerdicts(files));
  console.log(`expected.json files under tests/cases: ${n} checked by both validators`);
}

for (const f of failures) console.error(`FAIL ${f}`);
console.log(failures.length === 0 ? 'oracle agreement: ok' : `oracle agreement: ${failures.length} failure(s)`);
process.exit(failures.length === 0 ? 0 : 1);
