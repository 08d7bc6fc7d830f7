// Peer benchmark for bench/bench_fhir_json.cpp (never used by the product): JSON.parse +
// JSON.stringify of a FHIR Bundle file in Node.js, single-threaded, for at least SECONDS.
// Prints one JSON line: {"resources": <resources processed>, "seconds": <elapsed>}.
//
//   node tools/oracle/bench_fhir_json_peer.mjs FILE RESOURCES_PER_FILE [SECONDS]
//
// V8's JSON is a strong, allocation-tuned peer; it does no FHIR checks and no reordering, so the
// ratio measures what kakehashi's metadata-driven checking and canonical ordering cost on top.
import { readFileSync } from 'node:fs';

const [file, perFileArg, secondsArg] = process.argv.slice(2);
if (!file || !perFileArg) {
  console.error('usage: node bench_fhir_json_peer.mjs FILE RESOURCES_PER_FILE [SECONDS]');
  process.exit(2);
}
const perFile = Number(perFileArg);
const seconds = Number(secondsArg ?? 2);
const text = readFileSync(file, 'utf8');

let out = JSON.stringify(JSON.parse(text)); // warm-up
let rounds = 0;
const start = process.hrtime.bigint();
let elapsed = 0;
do {
  out = JSON.stringify(JSON.parse(text));
  rounds++;
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
} while (elapsed < seconds);
if (out.length === 0) process.exit(1);
console.log(JSON.stringify({ resources: rounds * perFile, seconds: elapsed }));
