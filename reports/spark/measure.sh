#!/usr/bin/env bash
# The measurements of docs/province.md: five full-size generated counties (100 schools × 300
# children each), each built, exported and deleted in turn (a county store is ~4 GB), then the
# province job over their child-term feeds, a Spark aggregate over their event feeds, and the
# province table compared with each county's own report (compare.py). Release build:
#   cargo build --release -p careledger && reports/spark/measure.sh WORK_DIR
set -euo pipefail
BIN=${CARELEDGER_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/careledger-target}/release/careledger}
PY=${CARELEDGER_PYSPARK:-$HOME/.cache/careledger-pyspark}/bin/python
SPARK=$(cd "$(dirname "$0")" && pwd)
M=${1:?usage: measure.sh WORK_DIR (about 6 GB free)}
mkdir -p "$M" && cd "$M"
rm -rf feeds events out store* *.jsonl
T="/usr/bin/time -f %e_s_%M_KiB"
i=0
for county in 测一县 测二县 测三县 测四县 测五县; do
  i=$((i + 1))
  echo "== county $i $county $(date -u +%T)"
  $T $BIN fixtures generate --schools 100 --children-per-school 300 --seed $i --county $county --out c.jsonl
  ls -l c.jsonl | awk '{print "jsonl bytes", $5}'
  $BIN --db store init >/dev/null 2>&1
  $T $BIN --db store import --preserve-recorded-at --quiet c.jsonl
  rm c.jsonl
  du -sb store | awk '{print "store bytes", $1}'
  python3 -c "import hashlib,sys;c=sys.argv[1];print(f'careledger county secret v1\ncounty: {c}\nkey: '+hashlib.sha256(('measure '+c).encode()).hexdigest())" $county > secret.txt
  $BIN --db store keys import-county-secret secret.txt
  $T $BIN --db store export child-terms --term 2025-2026-1 --format parquet --out feeds/c$i
  du -sb feeds/c$i | awk '{print "child-term feed bytes", $1}'
  $T $BIN --db store export events --format parquet --out events/c$i
  du -sb events/c$i | awk '{print "event feed bytes", $1}'
  $T $BIN --db store report term --term 2025-2026-1 --county $county --format json > report-c$i.json
  rm -rf store store.keys
done
echo "== spark $(date -u +%T)"
$T $PY $SPARK/province.py --master 'local[2]' --term 2025-2026-1 --out out $(ls -d feeds/c*)
cat > spark_events.py <<'PY'
import sys, time
sys.path.insert(0, sys.argv[1])
import province
from pyspark.sql import functions as F
spark = province.session(master="local[2]")
spark.sparkContext.setLogLevel("ERROR")
t = time.monotonic()
ev = province.union([spark.read.parquet(d) for d in sys.argv[2:]])
rows = ev.groupBy("county", "event_type").agg(F.count("*").alias("n"), F.sum("amount_fen").alias("fen")).collect()
total = sum(r["n"] for r in rows)
print(f"spark over the event feeds: {total} rows, {len(rows)} groups in {time.monotonic() - t:.1f} s", file=sys.stderr)
PY
$T $PY spark_events.py $SPARK $(ls -d events/c*)
$PY "$SPARK/compare.py"
echo "== done $(date -u +%T)"
