SELECT
  "cdr"."call_id" AS "call_id",
  "cdr"."msisdn" AS "msisdn",
  "cdr"."imsi" AS "imsi",
  "cdr"."region" AS "region",
  "cdr"."cell_id" AS "cell_id",
  "cdr"."started_at" AS "started_at",
  "cdr"."duration_s" AS "duration_s",
  "cdr"."call_type" AS "call_type",
  "cdr"."ds" AS "ds"
FROM (
  SELECT
    __lp_0.call_id AS "call_id",
    SHA256(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA256(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_0.msisdn)
        )
      )
    ) AS "msisdn",
    SHA256(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA256(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_0.imsi)
        )
      )
    ) AS "imsi",
    __lp_0.region AS "region",
    __lp_0.cell_id AS "cell_id",
    __lp_0.started_at AS "started_at",
    __lp_0.duration_s AS "duration_s",
    __lp_0.call_type AS "call_type",
    __lp_0.ds AS "ds"
  FROM __lp_0 AS __lp_0
) AS cdr
