SELECT
  `c`.`msisdn` AS `msisdn`,
  `s`.`card_pan` AS `card_pan`,
  `c`.`region` AS `region`,
  COUNT(*) AS `calls`,
  SUM(`c`.`duration_s`) AS `seconds`
FROM (
  SELECT
    __lp_0.call_id AS `call_id`,
    __lp_0.msisdn AS `msisdn`,
    __lp_0.imsi AS `imsi`,
    __lp_0.region AS `region`,
    __lp_0.cell_id AS `cell_id`,
    __lp_0.started_at AS `started_at`,
    __lp_0.duration_s AS `duration_s`,
    __lp_0.call_type AS `call_type`,
    __lp_0.ds AS `ds`
  FROM __lp_0 AS __lp_0
  WHERE
    __lp_0.region = 'EU'
) AS c
JOIN (
  SELECT
    __lp_1.msisdn AS `msisdn`,
    __lp_1.imsi AS `imsi`,
    __lp_1.region AS `region`,
    __lp_1.name AS `name`,
    __lp_1.plan AS `plan`,
    CAST('****' AS STRING) AS `card_pan`,
    __lp_1.signup_date AS `signup_date`,
    __lp_1.ds AS `ds`
  FROM __lp_1 AS __lp_1
  WHERE
    __lp_1.region = 'EU'
) AS s
  ON `s`.`msisdn` = `c`.`msisdn`
GROUP BY ALL
ORDER BY
  `calls` DESC,
  `msisdn` NULLS LAST
LIMIT 5
