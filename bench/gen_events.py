#!/usr/bin/env python3
"""Writes a synthetic openFDA device/event bulk file of about SIZE bytes, in the real format:
openFDA's bulk envelope ({"meta": ..., "results": [...]}) around copies of the example report in
data-fda/api_json/openfda_docs_example_device_event.json (header fields, device[], mdr_text[],
patient[]), each with its own report key, event type, date, product code and 510(k) number.
Streams as it writes, so it needs no memory for the file.

    bench/gen_events.py OUT.json [SIZE_BYTES]     # default 1 GiB
"""
import copy
import json
import random
import sys

out = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 1 << 30
root = __file__.rsplit("/bench/", 1)[0] if "/bench/" in __file__ else ".."
doc = json.load(open(f"{root}/data-fda/api_json/openfda_docs_example_device_event.json"))
template = copy.deepcopy(doc["header"])
template["device"] = doc["device"]
template["mdr_text"] = doc["mdr_text"]
template["patient"] = doc["patient"]
rng = random.Random(17)
# 2,000 product codes and 50,000 510(k)s: about as many keys as the real files reach.
codes = [chr(65 + i // 676) + chr(65 + i // 26 % 26) + chr(65 + i % 26) for i in range(2000)]
types = ["Malfunction"] * 80 + ["Injury"] * 15 + ["Death"] * 2 + ["Other"] * 2 + ["No answer provided"]
meta = {"disclaimer": "synthetic benchmark data in openFDA's format", "terms": "https://open.fda.gov/terms/",
        "license": "https://open.fda.gov/license/", "last_updated": "2026-08-01",
        "results": {"skip": 0, "limit": 0, "total": 0}}
n = 0
with open(out, "w") as f:
    f.write('{"meta": ' + json.dumps(meta) + ', "results": [\n')
    written = 0
    while written < size:
        r = copy.deepcopy(template)
        r["mdr_report_key"] = str(10_000_000 + n)
        r["event_type"] = rng.choice(types)
        r["date_received"] = f"{rng.randint(1992, 2026)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        d = r["device"][0]
        d["device_report_product_code"] = rng.choice(codes)
        d["pma_pmn_number"] = f"K{rng.randint(0, 49_999) + 100_000:06d}"
        line = ("," if n else "") + json.dumps(r) + "\n"
        f.write(line)
        written += len(line)
        n += 1
    f.write("]}\n")
print(f"{out}: {n} reports, {written} bytes", file=sys.stderr)
