SELECT
  "cdr"."msisdn" AS "msisdn",
  LOWER("cdr"."imsi") AS "imsi_lower",
  "cdr"."duration_s" AS "duration_s"
FROM (
  SELECT
    __lp_0.call_id AS "call_id",
    LOWER(
      TO_HEX(
        SHA256(
          FROM_HEX(
            '<mask key>'
          ) || FROM_HEX(
            LOWER(
              TO_HEX(
                SHA256(
                  FROM_HEX(
                    '<mask key>'
                  ) || TO_UTF8(__lp_0.msisdn)
                )
              )
            )
          )
        )
      )
    ) AS "msisdn",
    LOWER(
      TO_HEX(
        SHA256(
          FROM_HEX(
            '<mask key>'
          ) || FROM_HEX(
            LOWER(
              TO_HEX(
                SHA256(
                  FROM_HEX(
                    '<mask key>'
                  ) || TO_UTF8(__lp_0.imsi)
                )
              )
            )
          )
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
WHERE
  "cdr"."duration_s" > 3000
