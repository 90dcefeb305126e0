SELECT
  "s"."plan" AS "plan",
  COUNT(*) AS "n"
FROM (
  SELECT
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
    __lp_0.name AS "name",
    __lp_0.plan AS "plan",
    REPEAT('*', GREATEST(LENGTH(__lp_0.card_pan) - 4, 0)) || SUBSTR(__lp_0.card_pan, LENGTH(__lp_0.card_pan) - (
      4 - 1
    )) AS "card_pan",
    __lp_0.signup_date AS "signup_date",
    __lp_0.ds AS "ds"
  FROM __lp_0 AS __lp_0
) AS s
WHERE
  "s"."ds" = CAST('2026-11-01' AS DATE)
  AND "s"."msisdn" <> '+491500000000'
  AND EXISTS(
    SELECT
      1 AS "1"
    FROM (
      SELECT
        __lp_1.call_id AS "call_id",
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
                      ) || TO_UTF8(__lp_1.msisdn)
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
                      ) || TO_UTF8(__lp_1.imsi)
                    )
                  )
                )
              )
            )
          )
        ) AS "imsi",
        __lp_1.region AS "region",
        __lp_1.cell_id AS "cell_id",
        __lp_1.started_at AS "started_at",
        __lp_1.duration_s AS "duration_s",
        __lp_1.call_type AS "call_type",
        __lp_1.ds AS "ds"
      FROM __lp_1 AS __lp_1
    ) AS c
    WHERE
      "c"."msisdn" = "s"."msisdn" AND "c"."region" = 'US'
  )
GROUP BY
  "s"."plan"
