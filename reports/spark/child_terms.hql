-- The child-term feeds as a Hive external table (docs/province.md). ${LOCATION} is the
-- warehouse folder holding every county's `county=…/school=…/term=…/` folders, as
-- `careledger export child-terms` writes them. Run MSCK REPAIR TABLE after each delivery so
-- the metastore learns the new partitions.
CREATE EXTERNAL TABLE IF NOT EXISTS child_terms (
  child STRING COMMENT 'pseudonym of the child: HMAC-SHA256 under the county secret, 32 hex',
  township STRING,
  grade INT,
  class BIGINT,
  both_parents_away BOOLEAN,
  one_parent_away BOOLEAN,
  grandparent_guardian BOOLEAN,
  boarding BOOLEAN,
  hardship BOOLEAN,
  archived BOOLEAN,
  paired BOOLEAN,
  talked BOOLEAN,
  home_visited BOOLEAN,
  dropped_out BOOLEAN,
  talks BIGINT,
  home_visits BIGINT,
  parent_calls BIGINT,
  family_calls BIGINT,
  letters BIGINT,
  warmth_visits BIGINT,
  counseling_sessions BIGINT,
  aid_fen BIGINT COMMENT 'aid granted in the term, in fen (1/100 yuan), exact',
  incidents BIGINT,
  escalated_on_time BIGINT
)
PARTITIONED BY (county STRING, school STRING, term STRING)
STORED AS PARQUET
LOCATION '${LOCATION}';
MSCK REPAIR TABLE child_terms;
