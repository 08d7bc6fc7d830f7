// Peer benchmark for bench/bench_hl7v2_parse.cpp (never used by the product):
// parses an HL7 v2 file (UTF-8, messages back to back, segments ended by CR) with
// @medplum/core Hl7Message.parse, single-threaded, for at least SECONDS, and prints msgs/s.
//
//   node tools/oracle/bench_hl7v2_peer.mjs FILE [SECONDS]
//
// The timed loop does the same work as kakehashi's figure: split the file into messages, then
// parse each message (medplum splits segments, fields, repetitions and components eagerly).
import { readFileSync } from 'node:fs';
import { Hl7Message } from '@medplum/core';

const [file, secondsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench_hl7v2_peer.mjs FILE [SECONDS]');
  process.exit(2);
}
const seconds = Number(secondsArg ?? 3);
const text = readFileSync(file, 'utf8');

function parseAll() {
  // A message starts at every "MSH" that begins a segment.
  const parts = text.split(/\r(?=MSH)/);
  let n = 0;
  let check = '';
  for (const part of parts) {
    if (!part) continue;
    const msg = Hl7Message.parse(part);
    check = msg.getSegment('PID')?.getField(5)?.getComponent(1);
    n++;
  }
  return { n, check };
}

// Warm-up (JIT), then the timed loop.
const warm = parseAll();
if (warm.n === 0 || !warm.check) {
  console.error('bench_hl7v2_peer: no messages parsed');
  process.exit(1);
}
let messages = 0;
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
let elapsed = 0;
do {
  messages += parseAll().n;
  elapsed = Number(process.hrtime.bigint() - start) / 1e9;
} while (elapsed < seconds);
const cpu = process.cpuUsage(cpuStart);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
console.log(
  `peer @medplum/core Hl7Message.parse: messages=${messages} seconds=${elapsed.toFixed(2)} ` +
    `msgs_per_s=${(messages / elapsed).toFixed(0)} ` +
    `msgs_per_cpu_s=${(messages / cpuSeconds).toFixed(0)}`,
);
