#!/usr/bin/env python3
"""Write a FHIR R4 transaction Bundle of N Observations (POST, one per subject Patient/p0..pN-1)
for the gateway write benchmarks (bench_gateway.sh: 100 per Bundle; bench_gateway_pg.sh: its
--size). Usage: gen_tx_bundle.py N OUT.json"""
import json
import sys

n = int(sys.argv[1])
entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}",
            "resource": {"resourceType": "Observation", "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                         "subject": {"reference": f"Patient/p{i}"},
                         "effectiveDateTime": "2026-11-30T09:00:00+09:00",
                         "valueQuantity": {"value": 100 + i, "unit": "mg/dL",
                                           "system": "http://unitsofmeasure.org", "code": "mg/dL"}},
            "request": {"method": "POST", "url": "Observation"}} for i in range(n)]
with open(sys.argv[2], "w") as out:
    json.dump({"resourceType": "Bundle", "type": "transaction", "entry": entries}, out,
              separators=(",", ":"))
