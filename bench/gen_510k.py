#!/usr/bin/env python3
"""Writes synthetic 510(k) rows in FDA's releasable pmn*.txt layout, derived from real pmn files,
for the growth benchmark (bench/growth.sh). Never write them into the repo: use a temp dir.

    bench/gen_510k.py --rows 444005 --out /tmp/x data-fda/510k/pmn*.txt

Each synthetic row copies a real row (applicant, dates, product code, committees, ...) that our
importer accepts, gives it a new K number and a device name that mixes words of the real names
(each word of the source name is swapped, with probability 1/2, for a word drawn from all the
real names by frequency, so the word distribution and name lengths stay realistic).

K numbers are K + two-digit year + four-digit sequence; FDA's 510(k) program began in 1976 and
the files reach 2026, so years 27..75 (K270001..K759999) are unused: the generator counts down
from K759999 and checks that none collides with a number in the source files. The files keep the
source header, Latin-1 bytes and CRLF line ends; they are named pmnsynth_NN.txt, at most
--per-file rows each. Prints the number of rows written.
"""
import argparse
import os
import random
import re
import sys

K_RE = re.compile(r"^(K|BK|DEN)\d{6}$")
DATE_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
FIRST_YEAR, LAST_YEAR = 1976, 2100
SYNTH_YEARS = range(75, 26, -1)  # K75.... down to K27....


def plausible_date(value):
    """Empty or MM/DD/YYYY within the importer's plausible years (src/mirror/text.rs)."""
    value = value.strip()
    if not value:
        return True
    m = DATE_RE.match(value)
    return bool(m) and FIRST_YEAR <= int(m.group(3)) <= LAST_YEAR


def accepted(fields, width, col):
    """The rules of src/mirror/pmn.rs, so every synthetic row imports."""
    if len(fields) != width:
        return False
    code = fields[col["PRODUCTCODE"]].strip()
    return (bool(K_RE.match(fields[col["KNUMBER"]].strip()))
            and bool(fields[col["DEVICENAME"]].strip())
            and (not code or (len(code) == 3 and code.isascii() and code.isupper() and code.isalpha()))
            and plausible_date(fields[col["DECISIONDATE"]])
            and plausible_date(fields[col["DATERECEIVED"]]))


def k_numbers():
    for year in SYNTH_YEARS:
        for seq in range(9999, 0, -1):
            yield "K%02d%04d" % (year, seq)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-file", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=510)
    ap.add_argument("sources", nargs="+")
    args = ap.parse_args()
    capacity = len(SYNTH_YEARS) * 9999
    if args.rows > capacity:
        sys.exit(f"gen_510k: at most {capacity} synthetic K numbers exist, {args.rows} asked")

    header, rows, real_k = None, [], set()
    for path in args.sources:
        with open(path, encoding="latin-1", newline="") as f:
            lines = f.read().splitlines()
        if header is None:
            header = lines[0]
        elif lines[0] != header:
            sys.exit(f"gen_510k: {path} has another header than {args.sources[0]}")
        col = {name: i for i, name in enumerate(header.split("|"))}
        for line in lines[1:]:
            fields = line.split("|")
            if fields and fields[0].strip():
                real_k.add(fields[0].strip())
            if accepted(fields, len(col), col):
                rows.append(fields)
    if not rows:
        sys.exit("gen_510k: no usable source rows")
    rng = random.Random(args.seed)
    vocab = [w for r in rows for w in r[col["DEVICENAME"]].split()]
    os.makedirs(args.out, exist_ok=True)
    ks = k_numbers()
    written, part = 0, 0
    while written < args.rows:
        part += 1
        n = min(args.per_file, args.rows - written)
        path = os.path.join(args.out, "pmnsynth_%02d.txt" % part)
        with open(path, "w", encoding="latin-1", newline="") as out:
            out.write(header + "\r\n")
            for _ in range(n):
                fields = list(rng.choice(rows))
                k = next(ks)
                if k in real_k:
                    sys.exit(f"gen_510k: {k} is a real K number")
                fields[col["KNUMBER"]] = k
                fields[col["DEVICENAME"]] = " ".join(
                    rng.choice(vocab) if rng.random() < 0.5 else w
                    for w in fields[col["DEVICENAME"]].split())
                out.write("|".join(fields) + "\r\n")
        written += n
    print(written)


if __name__ == "__main__":
    main()
