#!/usr/bin/env python3
"""How much of the held-out set a device name alone can reach (bench/QUALITY.md, third round).

For each coded decision of data-fda/last_month/ (the evaluation's devices, none in the index),
checks whether some significant word of its name (lowercase, crude plural/suffix stemming, the
service's stop words) appears in anything the index knows of its own product code: the
classification name, the definition, or the name of any indexed 510(k) under it (the seed files
and the 2015-2026 sample, without the held-out decisions). A device with no such word cannot be
ranked to its code by any method that reads the name.

    python3 bench/name_ceiling.py
"""
import collections
import csv
import re
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data-fda"
STOP = set("""a an and are as at be by for from has have in into is it its of on or that the this
to with without which who will used use using intended indicated indications patient patients
device devices system systems kit kits model models accessory accessories set sets unit units type
product products other various general purpose may can such also than inc co ltd corp llc gmbh mm
cm ml series family new ii iii iv v plus pro x one two""".split())


def stem(word):
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 3:
            return word[: -len(suffix)]
    return word


def words(text):
    return {stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())
            if len(w) > 1 and not w.isdigit() and w not in STOP}


def pmn(path):
    with open(path, encoding="latin-1") as f:
        header = f.readline().rstrip("\n").split("|")
        for line in f:
            row = dict(zip(header, line.rstrip("\n").split("|")))
            yield row["KNUMBER"], row.get("DEVICENAME", "").strip(), row.get("PRODUCTCODE", "").strip()


held = [r for f in sorted((DATA / "last_month").glob("pmnlstmn_*.txt")) for r in pmn(f) if r[2]]
held_k = {k for k, _, _ in held}
known = collections.defaultdict(set)
for f in sorted((DATA / "510k").glob("pmn*.txt")):
    for _, name, code in pmn(f):
        known[code] |= words(name)
with open(DATA / "510k" / "510k_2015-2026_sample.csv", newline="") as f:
    for row in csv.DictReader(f):
        if row["k_number"] not in held_k:
            known[row["product_code"]] |= words(row["device_name"])
table = {}
with open(sorted((DATA / "classification").glob("foiclass_*.txt"))[-1], encoding="latin-1") as f:
    header = f.readline().rstrip("\n").split("|")
    for line in f:
        row = dict(zip(header, line.rstrip("\n").split("|")))
        table[row["PRODUCTCODE"]] = words(row["DEVICENAME"]) | words(row.get("DEFINITION", ""))

n = len(held)
reachable = sum(1 for _, name, code in held if words(name) & (known.get(code, set()) | table.get(code, set())))
print(f"held-out coded decisions: {n}")
print(f"code has an indexed 510(k): {sum(1 for _, _, c in held if c in known) / n:.1%}")
print(f"code is in the classification table: {sum(1 for _, _, c in held if c in table) / n:.1%}")
print(f"name shares a word with what the index knows of its code: {reachable / n:.1%} (the ceiling)")
