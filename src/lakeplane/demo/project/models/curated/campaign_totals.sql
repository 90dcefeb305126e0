-- materialized: merge
-- unique_key: [campaign_id]
-- description: Lifetime totals per campaign, refreshed for the campaigns seen on the day.
SELECT
    campaign_id,
    any_value(campaign_name) AS campaign_name,
    CAST(count(DISTINCT ds) AS BIGINT) AS active_days,
    CAST(sum(impressions) AS BIGINT) AS impressions,
    CAST(sum(clicks) AS BIGINT) AS clicks,
    round(sum(clicks) / sum(impressions), 6) AS ctr,
    CAST(sum(spend) AS DECIMAL(18, 4)) AS spend
FROM curated.daily_campaign_stats
WHERE campaign_id IN (SELECT campaign_id FROM curated.daily_campaign_stats WHERE ds = :ds)
GROUP BY campaign_id
