#!/usr/bin/env node
// `kakehashi validate` end to end: exit codes, one line per resource (NDJSON lines, Bundle
// entries), --quiet, --format json (one OperationOutcome per line), usage errors.
// Usage: node cli_validate_test.mjs --kakehashi BIN --root SRC   (run by ctest)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const bin = args[args.indexOf('--kakehashi') + 1];
const root = args[args.indexOf('--root') + 1];
const dir = mkdtempSync(join(tmpdir(), 'kakehashi-validate-'));
const failures = [];
const check = (cond, what) => {
  if (!cond) failures.push(what);
};
const run = (...argv) => spawnSync(bin, ['validate', ...argv], { encoding: 'utf8' });

try {
  const ndjson = join(dir, 'in.ndjson');
  writeFileSync(
    ndjson,
    '{"resourceType":"Patient","id":"a"}\n\n' +
      '{"resourceType":"Patient","id":"b","birthDate":"1980-02-30","gender":"SECRET"}\n' +
      '{not json\n',
  );
  let r = run(ndjson);
  check(r.status === 1, `ndjson exit ${r.status}, want 1`);
  const lines = r.stdout.split('\n');
  check(lines[0] === `OK    ${ndjson}#1 Patient/a`, `ndjson line 1: ${lines[0]}`);
  check(lines[1] === `ERROR ${ndjson}#3 Patient/b: 2 errors`, `ndjson line 3: ${lines[1]}`);
  check(/^ {4}error +conformance\.binding\.required at Patient\.gender: /.test(lines[2]), `issue line: ${lines[2]}`);
  check(/^ {4}error +conformance\.format\.date at Patient\.birthDate: /.test(lines[3]), `issue line: ${lines[3]}`);
  check(r.stdout.includes(`ERROR ${ndjson}#4 (unparsable): 1 error`), 'unparsable line reported');
  check(!r.stdout.includes('SECRET'), 'values never printed');
  check(/validated 3 resource\(s\): 2 with errors/.test(r.stderr), `summary: ${r.stderr}`);

  const bundle = join(root, 'tests/cases/conformance/invalid/bundle-entry-invalid-resource.json');
  r = run(bundle);
  check(r.status === 1, `bundle exit ${r.status}`);
  check(r.stdout.startsWith(`OK    ${bundle} Bundle (1 entry)\nERROR ${bundle}#entry[0] Patient/p1: 1 error\n`), `bundle lines: ${r.stdout}`);

  const valid = join(root, 'tests/cases/conformance/valid/patient-full.json');
  r = run('--quiet', valid);
  check(r.status === 0 && r.stdout === '' && r.stderr === '', `quiet valid: ${r.status} ${r.stdout}${r.stderr}`);
  r = run('--quiet', valid, ndjson);
  check(r.status === 1 && !r.stdout.includes('OK ') && r.stdout.includes('ERROR '), `quiet mixed: ${r.stdout}`);

  r = run('--format', 'json', valid, ndjson);
  const outcomes = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  check(outcomes.length === 4, `json: ${outcomes.length} outcomes, want 4`);
  check(outcomes.every((o) => o.resourceType === 'OperationOutcome' && o.issue.length > 0), 'json outcomes');
  check(outcomes[0].issue[0].severity === 'information', 'json valid resource is information');
  check(outcomes[2].issue.some((i) => i.expression?.[0] === 'Patient.birthDate' &&
      i.details.coding[0].code === 'conformance.format.date'), 'json issue expression and code');

  r = run('--help');
  check(r.status === 0 && r.stdout.startsWith('Usage: kakehashi validate'), 'help');
  check(run().status === 2, 'no files: exit 2');
  check(run('--format', 'xml', valid).status === 2, 'bad format: exit 2');
  check(run('--bogus', valid).status === 2, 'unknown option: exit 2');
  check(run(join(dir, 'missing.json')).status === 2, 'unreadable file: exit 2');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const f of failures) console.error(`FAIL ${f}`);
console.log(failures.length === 0 ? 'cli validate: ok' : `cli validate: ${failures.length} failure(s)`);
process.exit(failures.length === 0 ? 0 : 1);
