"""The province job (docs/province.md): the term statistics of rules §8 for every class,
school, county and the province, computed by Spark SQL (province.sql) from the child-term
feeds that `careledger export child-terms` writes in each county.

    spark-submit reports/spark/province.py --term 2025-2026-1 --out OUT FEED [FEED ...]
    python3 reports/spark/province.py ...            (with pyspark installed; local mode)

Each FEED is a folder holding `county=…/school=…/term=…/*.parquet` (one county's export, or
a warehouse folder holding many). OUT receives the table as Parquet (`OUT/parquet`) and as one
CSV with a header (`OUT/csv`). Partition values are read as strings (a school id like `007`
stays `007`), never inferred as numbers or dates.

`province_table(spark, feeds, term)` returns the table as a DataFrame for other jobs (and the
test in fixtures/crosscheck/province_run.sh).
"""

import argparse
import pathlib
import sys
import time

SQL = (pathlib.Path(__file__).resolve().parent / "province.sql").read_text(encoding="utf-8")


def session(app="careledger-province", master=None, metastore=None):
    """A Spark session set as the feeds need: partition values as strings, UTC. With
    `metastore` (a folder), Hive support with a local Derby metastore there."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app)
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master:
        builder = builder.master(master)
    if metastore:
        m = pathlib.Path(metastore).resolve()
        builder = (
            builder.enableHiveSupport()
            .config("spark.sql.warehouse.dir", str(m / "warehouse"))
            .config("spark.hadoop.javax.jdo.option.ConnectionURL",
                    f"jdbc:derby:;databaseName={m / 'metastore_db'};create=true")
            .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={m}")
        )
    return builder.getOrCreate()


def union(frames):
    """One frame of several with the same columns (Spark reads several feed roots only one by
    one: their partition folders are not under one base path)."""
    df = frames[0]
    for other in frames[1:]:
        df = df.unionByName(other)
    return df


def child_terms(spark, feeds):
    """The child-term rows of every feed folder, partition columns included."""
    return union([spark.read.parquet(str(f)) for f in feeds])


def province_sql(spark, term):
    """The §8 table of `term` over the table or view `child_terms` (province.sql)."""
    return spark.sql(SQL, args={"term": term})


def province_table(spark, feeds, term):
    """The §8 table of `term` over the feed folders, as a DataFrame."""
    child_terms(spark, feeds).createOrReplaceTempView("child_terms")
    return province_sql(spark, term)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--term", required=True, help="the term id, e.g. 2025-2026-1")
    ap.add_argument("--out", required=True, help="folder for the table (parquet/ and csv/)")
    ap.add_argument("--master", help="Spark master, e.g. local[2] (spark-submit sets its own)")
    ap.add_argument("feeds", nargs="+", help="child-term feed folders")
    args = ap.parse_args(argv)
    for f in args.feeds:
        if not pathlib.Path(f).is_dir():
            print(f"province: {f}: not a folder (give child-term feed folders)", file=sys.stderr)
            return 2
    spark = session(master=args.master)
    start = time.monotonic()
    table = province_table(spark, args.feeds, args.term).cache()
    rows = table.count()
    table.write.mode("errorifexists").parquet(str(pathlib.Path(args.out) / "parquet"))
    table.coalesce(1).write.mode("errorifexists").option("header", True).csv(
        str(pathlib.Path(args.out) / "csv")
    )
    elapsed = time.monotonic() - start
    print(f"province: {rows} rows of term {args.term} in {elapsed:.1f} s under {args.out}",
          file=sys.stderr)
    spark.stop()
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
