#!/usr/bin/env python3
"""Synthetic data for bench_chain_search.sh (no real data): reads the patients of
gen_fhir_patients.py and writes, into OUT_DIR,
  organizations.ndjson  K organizations o0..o{K-1}, name "Org <k>", part of g<k % 10> (10 more,
                        name "Group <g>", for chains of three links)
  patients.ndjson       the patients, patient i managed by organization o{i % K}, its identifier
                        typed MR (v2-0203, for identifier:of-type)
  observations.ndjson   one Observation per patient (ids obs0..), subject Patient/p<i> with the
                        patient's identifier (Reference.identifier, for subject:identifier),
                        code http://example.org/bench|c<i % 1000> (100 patients per code at N=100,000),
                        narrative "血糖値 glucose kind<i % 1000, 4 digits>" (for _text)

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
        for g in range(10):
            f.write(json.dumps({"resourceType": "Organization", "id": f"g{g}", "name": f"Group {g}"},
                               separators=(",", ":")) + "\n")
        for j in range(k):
            f.write(json.dumps({"resourceType": "Organization", "id": f"o{j}", "name": f"Org {j}",
                                "partOf": {"reference": f"Organization/g{j % 10}"}},
                               separators=(",", ":")) + "\n")
    with open(src, encoding="utf-8") as inp, \
            open(os.path.join(out, "patients.ndjson"), "w", encoding="utf-8") as pats, \
            open(os.path.join(out, "observations.ndjson"), "w", encoding="utf-8") as obs:
        for i, line in enumerate(inp):
            p = json.loads(line)
            p["managingOrganization"] = {"reference": f"Organization/o{i % k}"}
            p["identifier"][0]["type"] = {"coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
            pats.write(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n")
            o = {"resourceType": "Observation", "id": f"obs{i}", "status": "final",
                 "code": {"coding": [{"system": "http://example.org/bench", "code": f"c{i % 1000}"}]},
                 "text": {"status": "generated",
                          "div": f'<div xmlns="http://www.w3.org/1999/xhtml">血糖値 glucose kind{i % 1000:04d}</div>'},
                 "subject": {"reference": f"Patient/{p['id']}", "identifier": p["identifier"][0]},
                 "valueQuantity": {"value": i % 200, "unit": "mg/dL",
                                   "system": "http://unitsofmeasure.org", "code": "mg/dL"}}
            obs.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
