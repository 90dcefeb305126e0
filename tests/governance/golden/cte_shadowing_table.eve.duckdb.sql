WITH "cdr" AS (
  SELECT
    "cdr"."msisdn" AS "msisdn",
    "cdr"."region" AS "region"
  FROM (
    SELECT
      __lp_0.call_id AS "call_id",
      __lp_0.msisdn AS "msisdn",
      __lp_0.imsi AS "imsi",
      __lp_0.region AS "region",
      __lp_0.cell_id AS "cell_id",
      __lp_0.started_at AS "started_at",
      __lp_0.duration_s AS "duration_s",
      __lp_0.call_type AS "call_type",
      __lp_0.ds AS "ds"
    FROM __lp_0 AS __lp_0
    WHERE
      __lp_0.region = 'EU'
  ) AS cdr
)
SELECT
  "cdr"."region" AS "region",
  COUNT(DISTINCT "cdr"."msisdn") AS "callers"
FROM "cdr" AS "cdr"
GROUP BY
  "cdr"."region"
