#!/usr/bin/env python3
"""Check a regassist audit export (JSON or CSV) offline, with nothing but Python 3's standard library.

usage: verify_audit_export.py EXPORT_FILE [--key-file FILE]
       (or the key in the environment variable AUDIT_CHECKPOINT_KEY)

It recomputes every exported row's hash, checks that the rows and the links the export carries
form one unbroken chain (from the genesis hash when the export starts at seq 1), and that the chain
holds the signed checkpoint the export carries. With the checkpoint key it also checks the
checkpoint's HMAC signature; without it, compare the checkpoint with the copy in the service's log
("audit checkpoint written"). Exit status 0 when everything holds, 1 otherwise. The encoding is
documented in the service's src/audit.rs; `regassist audit verify-export` does the same check.
"""
import csv
import hashlib
import hmac
import io
import json
import os
import sys

GENESIS = "0" * 64
CSV_HEADER = ["seq", "at", "actor_id", "actor_email", "action", "entity_type", "entity_id",
              "project_id", "reason", "before", "after", "request_id", "prev_hash", "hash"]


def canonical_json(value):
    # Object keys sorted, no whitespace, non-ASCII kept (as the service stores it).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(fields, prev_hash):
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def parse_json(text):
    export = json.loads(text)
    rows = []
    for e in export["entries"]:
        before = None if e.get("before") is None else canonical_json(e["before"])
        after = None if e.get("after") is None else canonical_json(e["after"])
        fields = [e["seq"], e["at"], e.get("actor_id"), e.get("actor_email"), e["action"],
                  e["entity_type"], e.get("entity_id"), e.get("project_id"), e.get("reason"),
                  before, after, e["request_id"]]
        rows.append((e["seq"], e["prev_hash"], e["hash"], {row_hash(fields, e["prev_hash"])}))
    links = [(l["seq"], l["prev_hash"], l["hash"]) for l in export.get("links", [])]
    return rows, links, export.get("checkpoint")


def parse_csv(text):
    split = text.rfind("\n# verification:")
    if split < 0:
        raise ValueError("no '# verification:' line")
    body, trailer = text[:split].rstrip("\r\n"), text[split + 1:]
    reader = csv.reader(io.StringIO(body, newline=""))
    if next(reader) != CSV_HEADER:
        raise ValueError("unexpected CSV header")
    rows = []
    for r in reader:
        if not r:
            continue
        seq = int(r[0])
        num = lambda v: None if v == "" else int(v)
        text_or_none = lambda v: None if v == "" else v
        candidates = set()
        # An empty text cell is null or "": try both for the fields that may hold either.
        for mask in range(8):
            pick = [("" if r[i] == "" and mask & (1 << n) else text_or_none(r[i]))
                    for n, i in enumerate((3, 6, 8))]
            fields = [seq, r[1], num(r[2]), pick[0], r[4], r[5], pick[1], num(r[7]), pick[2],
                      text_or_none(r[9]), text_or_none(r[10]), r[11]]
            candidates.add(row_hash(fields, r[12]))
        rows.append((seq, r[12], r[13], candidates))
    checkpoint, links = None, []
    for line in trailer.splitlines():
        line = line.rstrip("\r")
        if line.startswith("# checkpoint: "):
            kv = dict(part.split("=", 1) for part in line[len("# checkpoint: "):].split())
            checkpoint = {"head_seq": int(kv["head_seq"]), "head_hash": kv["head_hash"],
                          "at": kv["at"], "signature": kv["signature"]}
        elif line.startswith("# link: "):
            seq, prev_hash, hash_ = line[len("# link: "):].split()
            links.append((int(seq), prev_hash, hash_))
    return rows, links, checkpoint


def check(rows, links, checkpoint, key):
    problems = []
    chain = {}
    for seq, prev_hash, hash_, candidates in rows:
        if hash_ not in candidates:
            problems.append(f"seq {seq}: the hash does not match the row's fields (edited)")
        if seq in chain:
            problems.append(f"seq {seq} appears twice")
        chain[seq] = (prev_hash, hash_)
    for seq, prev_hash, hash_ in links:
        if seq in chain:
            problems.append(f"seq {seq} is both a row and a link")
        chain[seq] = (prev_hash, hash_)
    previous = None
    for seq in sorted(chain):
        prev_hash, hash_ = chain[seq]
        if previous is None and seq == 1 and prev_hash != GENESIS:
            problems.append("seq 1 does not start from the genesis hash")
        elif previous is not None and seq != previous[0] + 1:
            problems.append(f"seqs {previous[0] + 1}..{seq - 1} are missing (neither rows nor links)")
        elif previous is not None and prev_hash != previous[1]:
            problems.append(f"seq {seq} does not link to its predecessor")
        previous = (seq, hash_)
    state, signature_checked = "not_carried", False
    if checkpoint is None:
        if rows:
            problems.append("the export carries no checkpoint")
    else:
        message = "regassist-audit-checkpoint:v1:{head_seq}:{head_hash}:{at}".format(**checkpoint)
        if key is not None:
            signature_checked = True
            expected = hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, checkpoint["signature"].lower()):
                problems.append("the checkpoint's signature is not valid under this key")
                state = "bad_signature"
        if state != "bad_signature":
            held = chain.get(checkpoint["head_seq"])
            if held is None:
                problems.append(f"the checkpoint's seq {checkpoint['head_seq']} is not in the export")
                state = "not_covered"
            elif held[1] != checkpoint["head_hash"]:
                problems.append(f"seq {checkpoint['head_seq']} differs from the checkpoint")
                state = "mismatch"
            else:
                state = "matched"
    return {"is_valid": not problems, "entries": len(rows), "links": len(links),
            "checkpoint": state, "signature_checked": signature_checked, "problems": problems}


def main(argv):
    args = argv[1:]
    key = os.environ.get("AUDIT_CHECKPOINT_KEY")
    if "--key-file" in args:
        i = args.index("--key-file")
        with open(args[i + 1], encoding="utf-8") as f:
            key = f.read().strip()
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(args[0], encoding="utf-8", newline="") as f:
        text = f.read()
    try:
        parsed = parse_json(text) if text.lstrip().startswith("{") else parse_csv(text)
    except (ValueError, KeyError, IndexError, TypeError) as e:
        print(json.dumps({"is_valid": False, "problems": [f"not a regassist audit export: {e}"]}))
        return 1
    report = check(*parsed, key.encode("utf-8") if key else None)
    print(json.dumps(report, indent=2))
    return 0 if report["is_valid"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
