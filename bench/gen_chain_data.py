#!/usr/bin/env python3
"""Synthetic data for bench_chain_search.sh (no real data): reads the patients of
gen_fhir_patients.py and writes, into OUT_DIR,
  organizations.ndjson  K organizations o0..o{K-1}, name "Org <k>"
  patients.ndjson       the patients, patient i managed by organization o{i % K}
  observations.ndjson   one Observation per patient (ids obs0..), subject Patient/p<i>,
                        code http://example.org/bench|c<i % 1000> (100 patients per code at N=100,000)

usage: gen_chain_data.py PATIENTS.ndjson OUT_DIR [K=100]
"""
import json
import os
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "organizations.ndjson"), "w", encoding="utf-8") as f:
        for j in range(k):
            f.write(json.dumps({"resourceType": "Organization", "id": f"o{j}", "name": f"Org {j}"},
                               separators=(",", ":")) + "\n")
    with open(src, encoding="utf-8") as inp, \
            open(os.path.join(out, "patients.ndjson"), "w", encoding="utf-8") as pats, \
            open(os.path.join(out, "observations.ndjson"), "w", encoding="utf-8") as obs:
        for i, line in enumerate(inp):
            p = json.loads(line)
            p["managingOrganization"] = {"reference": f"Organization/o{i % k}"}
            pats.write(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n")
            o = {"resourceType": "Observation", "id": f"obs{i}", "status": "final",
                 "code": {"coding": [{"system": "http://example.org/bench", "code": f"c{i % 1000}"}]},
                 "subject": {"reference": f"Patient/{p['id']}"},
                 "valueQuantity": {"value": i % 200, "unit": "mg/dL",
                                   "system": "http://unitsofmeasure.org", "code": "mg/dL"}}
            obs.write(json.dumps(o, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
