#!/usr/bin/env python3
"""Builds schemas/catalog/default.json from the public reference CSVs.

Usage: python3 schemas/catalog/build_default.py [REFERENCE_DIR]
(default ../shared/reference/catalog). English glosses come from
gloss_en.csv; a GB/T subclass named "X异常" is glossed "X: faulty".
"""
import csv, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
ref = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "..", "shared", "reference", "catalog")
gloss = {r["name_zh"]: r["name_en"] for r in csv.DictReader(open(os.path.join(here, "gloss_en.csv"), encoding="utf-8"))}

def english(zh):
    if zh in gloss:
        return gloss[zh]
    for suffix in ("异常SOS", "异常"):
        if zh.endswith(suffix):
            base = zh[: -len(suffix)] + ("SOS" if suffix == "异常SOS" else "")
            if base in gloss:
                return gloss[base] + ": faulty"
    raise SystemExit(f"no English gloss for {zh!r}: add it to gloss_en.csv")

entries = []
for fname, family, prefix in (("catalog_cjt214_2007_components.csv", "component", "BJ"),
                              ("catalog_cjt214_2007_events_partial.csv", "event", "SJ")):
    for r in csv.DictReader(open(os.path.join(ref, fname), encoding="utf-8")):
        entries.append({"code": prefix + r["code4"], "family": family, "standard": "CJ/T 214-2007",
                        "major_code": r["major_code"], "major_name": r["major_name"],
                        "name_zh": r["name"], "name_en": english(r["name"]), "confidence": r["confidence"]})
# GB/T 47678.5 lists each component (管理部件) and, under the same 5-digit
# code, the matter "that component is faulty" (管理事项 classes 01-05). One
# code is one subclass: the component entry carries the matter's name.
by_code = {}
for r in csv.DictReader(open(os.path.join(ref, "catalog_gbt47678_5_2026.csv"), encoding="utf-8")):
    code = r["code5"]
    if code in by_code:
        by_code[code]["issue_name_zh"] = r["name"]
        by_code[code]["issue_name_en"] = english(r["name"])
        continue
    family = "component" if r["kind"] == "管理部件" else "event"
    by_code[code] = {"code": code, "family": family, "standard": "GB/T 47678.5-2026",
                     "major_code": r["major_code"], "major_name": r["major_name"],
                     "name_zh": r["name"], "name_en": english(r["name"])}
entries.extend(by_code.values())
out = {"version": "default-2026.11", "entries": entries}
with open(os.path.join(here, "default.json"), "w", encoding="utf-8") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
print(f"{len(entries)} subclasses written")
