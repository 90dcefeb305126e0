WITH `cdr` AS (
  SELECT
    `cdr`.`msisdn` AS `msisdn`,
    `cdr`.`region` AS `region`
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
)
SELECT
  `cdr`.`region` AS `region`,
  COUNT(DISTINCT `cdr`.`msisdn`) AS `callers`
FROM `cdr` AS `cdr`
GROUP BY
  `cdr`.`region`
