SELECT
  `cdr`.`call_id` AS `call_id`,
  `cdr`.`msisdn` AS `msisdn`,
  LAG(`cdr`.`duration_s`) OVER (
    PARTITION BY `cdr`.`msisdn`
    ORDER BY `cdr`.`started_at` NULLS LAST, `cdr`.`call_id` NULLS LAST
  ) AS `previous`
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
) AS cdr
WHERE
  `cdr`.`call_type` = 'sms'
