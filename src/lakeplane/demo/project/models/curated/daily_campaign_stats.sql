-- materialized: overwrite_partitions
-- partition_by: [ds]
-- quality: quality/daily_campaign_stats.dqdl
-- description: Impressions, clicks, click-through rate and spend per campaign, country and device.
WITH imps AS (
    SELECT * FROM processed.impressions WHERE ds = :ds
), clicks_per_impression AS (
    SELECT impression_id, count(*) AS clicks
    FROM processed.clicks
    WHERE ds = :ds
    GROUP BY impression_id
), campaigns AS (
    -- the newest CRM extract on or before the day (an unchanged extract is landed only once)
    SELECT * FROM processed.campaigns
    WHERE ds <= :ds
    QUALIFY ds = max(ds) OVER ()
)
SELECT
    i.ds,
    i.campaign_id,
    c.name AS campaign_name,
    c.advertiser,
    i.country,
    i.device,
    count(*) AS impressions,
    CAST(coalesce(sum(k.clicks), 0) AS BIGINT) AS clicks,
    round(coalesce(sum(k.clicks), 0) / count(*), 6) AS ctr,
    -- `* 0.001`, not `/ 1000`: DuckDB divides decimals in double precision, Spark exactly
    CAST(round(sum(CAST(i.win_price AS DECIMAL(18, 4))) * 0.001, 4) AS DECIMAL(18, 4)) AS spend
FROM imps AS i
LEFT JOIN clicks_per_impression AS k ON k.impression_id = i.event_id
LEFT JOIN campaigns AS c ON c.campaign_id = i.campaign_id
GROUP BY ALL
