#!/usr/bin/env python3
"""Deterministic synthetic JP patients as NDJSON for bench_gateway.sh (no real data).

usage: gen_fhir_patients.py N OUT.ndjson
Patient ids are p0..p{N-1}; identifier values are 8-digit numbers; family names cycle through a
list of common surnames (kanji + katakana), so a name search matches about N/len(FAMILIES) rows.
"""
import json
import random
import sys

FAMILIES = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
            ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
            ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
            ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
            ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ")]
GIVEN = [("太郎", "タロウ"), ("花子", "ハナコ"), ("一郎", "イチロウ"), ("美咲", "ミサキ"),
         ("健太", "ケンタ"), ("陽菜", "ヒナ"), ("翔", "ショウ"), ("結衣", "ユイ")]
SYSTEM = "urn:oid:1.2.392.100495.20.3.51.11311234567"


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    rng = random.Random(42)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            fam, fam_kana = FAMILIES[i % len(FAMILIES)]
            giv, giv_kana = GIVEN[rng.randrange(len(GIVEN))]
            p = {
                "resourceType": "Patient",
                "id": f"p{i}",
                "identifier": [{"system": SYSTEM, "value": f"{i:08d}"}],
                "name": [
                    {"use": "official", "text": f"{fam} {giv}", "family": fam, "given": [giv]},
                    {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation",
                                    "valueCode": "SYL"}],
                     "text": f"{fam_kana} {giv_kana}", "family": fam_kana, "given": [giv_kana]},
                ],
                "gender": "male" if rng.random() < 0.5 else "female",
                "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            }
            f.write(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
