# The province table (out/parquet, written by province.py) against careledger's `report term
# --county` JSON of each county (report-c*.json), cell by cell, keyed by (school, grade, class).
# Run in the work folder of measure.sh.
import glob
import json

import duckdb

con = duckdb.connect()
rows = con.execute("SELECT * FROM read_parquet('out/parquet/*.parquet')").fetchall()
names = [d[0] for d in con.description]
table = [dict(zip(names, r)) for r in rows]
compared = diffs = 0
for path in sorted(glob.glob("report-c*.json")):
    report = json.load(open(path, encoding="utf-8"))
    county_rows = [r for r in table if r["level"] != "province"]
    # the report's county: the county of its schools in the table
    schools = {r["school"] for r in report if r["school"]}
    county = {r["county"] for r in county_rows if r["school"] in schools}
    assert len(county) == 1, county
    county = county.pop()
    mine = {(r["school"], r["grade"], r["class"]): r for r in county_rows if r["county"] == county}
    want = [r for r in report if r["children"] > 0]
    assert len(mine) == len(want), (path, len(mine), len(want))
    for r in want:
        s = mine[(r["school"], r["grade"], r["class"])]
        for k, v in r.items():
            compared += 1
            if s[k] != v or type(s[k]) is not type(v):
                diffs += 1
                print("DIFF", path, k, s[k], v)
prov = [r for r in table if r["level"] == "province"][0]
print(f"{compared} cells compared, {diffs} differ; province children {prov['children']}")
raise SystemExit(1 if diffs else 0)
