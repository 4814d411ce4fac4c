-- The term statistics of rules §8 for every class, school, county and the province, from the
-- child-term feeds of many counties (docs/province.md). One row per child counted in the term
-- is read from the table or view `child_terms` (its partition columns county, school and term
-- as strings); :term is the term id, e.g. '2025-2026-1'.
--
-- Every figure is a sum over those rows, and every rate the same IEEE double division as
-- careledger's own report (count / children; aid_yuan = fen / 100; retention = 1 - dropped /
-- children), so each county's rows equal `careledger report term --county` cell by cell.
-- `level` says which row it is: class, school (grade and class null), county (school null
-- too) or province (county null too). Rows are ordered as careledger orders a county report:
-- by county, then school, a school's class rows before its total, then grade and class; each
-- county's total after its schools, the province's last.
WITH sums AS (
  SELECT
    county,
    school,
    grade,
    class,
    GROUPING_ID(county, school, grade, class) AS gid,
    COUNT(*) AS children,
    SUM(CAST(both_parents_away AS BIGINT)) AS both_parents_away,
    SUM(CAST(one_parent_away AS BIGINT)) AS one_parent_away,
    SUM(CAST(grandparent_guardian AS BIGINT)) AS grandparent_guardian,
    SUM(CAST(boarding AS BIGINT)) AS boarding,
    SUM(CAST(hardship AS BIGINT)) AS hardship,
    SUM(CAST(archived AS BIGINT)) AS archived,
    SUM(CAST(paired AS BIGINT)) AS paired,
    SUM(CAST(talked AS BIGINT)) AS talked,
    SUM(CAST(home_visited AS BIGINT)) AS home_visited,
    SUM(talks) AS talks,
    SUM(parent_calls) AS parent_calls,
    SUM(family_calls) AS family_calls,
    SUM(letters) AS letters,
    SUM(warmth_visits) AS warmth_visits,
    SUM(counseling_sessions) AS counseling_sessions,
    SUM(aid_fen) AS aid_fen,
    SUM(CAST(dropped_out AS BIGINT)) AS dropped_out,
    SUM(incidents) AS incidents,
    SUM(escalated_on_time) AS escalated_on_time
  FROM child_terms
  WHERE term = :term
  GROUP BY GROUPING SETS ((county, school, grade, class), (county, school), (county), ())
)
SELECT
  CASE gid WHEN 0 THEN 'class' WHEN 3 THEN 'school' WHEN 7 THEN 'county' ELSE 'province' END
    AS level,
  county,
  school,
  grade,
  class,
  children,
  both_parents_away,
  one_parent_away,
  grandparent_guardian,
  boarding,
  hardship,
  archived,
  CASE WHEN children = 0 THEN NULL
       ELSE CAST(archived AS DOUBLE) / CAST(children AS DOUBLE) END AS archive_rate,
  paired,
  CASE WHEN children = 0 THEN NULL
       ELSE CAST(paired AS DOUBLE) / CAST(children AS DOUBLE) END AS pairing_rate,
  talked,
  CASE WHEN children = 0 THEN NULL
       ELSE CAST(talked AS DOUBLE) / CAST(children AS DOUBLE) END AS talk_coverage,
  home_visited,
  CASE WHEN children = 0 THEN NULL
       ELSE CAST(home_visited AS DOUBLE) / CAST(children AS DOUBLE) END AS home_visit_coverage,
  talks,
  parent_calls,
  family_calls,
  letters,
  warmth_visits,
  counseling_sessions,
  CAST(aid_fen AS DOUBLE) / 100.0D AS aid_yuan,
  dropped_out,
  CASE WHEN children = 0 THEN NULL
       ELSE 1.0D - CAST(dropped_out AS DOUBLE) / CAST(children AS DOUBLE) END AS retention_rate,
  incidents,
  escalated_on_time
FROM sums
ORDER BY county ASC NULLS LAST, school ASC NULLS LAST, gid, grade, class
