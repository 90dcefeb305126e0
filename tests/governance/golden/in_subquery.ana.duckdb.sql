SELECT
  "subscribers"."name" AS "name",
  "subscribers"."card_pan" AS "card_pan"
FROM (
  SELECT
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
    __lp_0.name AS "name",
    __lp_0.plan AS "plan",
    REPEAT('*', GREATEST(LENGTH(__lp_0.card_pan) - 4, 0)) || RIGHT(__lp_0.card_pan, 4) AS "card_pan",
    __lp_0.signup_date AS "signup_date",
    __lp_0.ds AS "ds"
  FROM __lp_0 AS __lp_0
) AS subscribers
WHERE
  "subscribers"."msisdn" IN (
    SELECT
      "cdr"."msisdn" AS "msisdn"
    FROM (
      SELECT
        __lp_1.call_id AS "call_id",
        SHA256(
          UNHEX(
            '<mask key>'
          ) || UNHEX(
            SHA256(
              UNHEX(
                '<mask key>'
              ) || ENCODE(__lp_1.msisdn)
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
              ) || ENCODE(__lp_1.imsi)
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
    ) AS cdr
    WHERE
      "cdr"."duration_s" > 3500
  )
