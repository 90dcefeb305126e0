SELECT
  `cdr`.`msisdn` AS `msisdn`
FROM (
  SELECT
    __lp_0.call_id AS `call_id`,
    SHA2(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA2(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_0.msisdn, 'utf-8'),
          256
        )
      ),
      256
    ) AS `msisdn`,
    SHA2(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA2(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_0.imsi, 'utf-8'),
          256
        )
      ),
      256
    ) AS `imsi`,
    __lp_0.region AS `region`,
    __lp_0.cell_id AS `cell_id`,
    __lp_0.started_at AS `started_at`,
    __lp_0.duration_s AS `duration_s`,
    __lp_0.call_type AS `call_type`,
    __lp_0.ds AS `ds`
  FROM __lp_0 AS __lp_0
) AS cdr
UNION
SELECT
  `subscribers`.`msisdn` AS `msisdn`
FROM (
  SELECT
    SHA2(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA2(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_1.msisdn, 'utf-8'),
          256
        )
      ),
      256
    ) AS `msisdn`,
    SHA2(
      UNHEX(
        '<mask key>'
      ) || UNHEX(
        SHA2(
          UNHEX(
            '<mask key>'
          ) || ENCODE(__lp_1.imsi, 'utf-8'),
          256
        )
      ),
      256
    ) AS `imsi`,
    __lp_1.region AS `region`,
    __lp_1.name AS `name`,
    __lp_1.plan AS `plan`,
    REPEAT('*', GREATEST(LENGTH(__lp_1.card_pan) - 4, 0)) || RIGHT(__lp_1.card_pan, 4) AS `card_pan`,
    __lp_1.signup_date AS `signup_date`,
    __lp_1.ds AS `ds`
  FROM __lp_1 AS __lp_1
) AS subscribers
