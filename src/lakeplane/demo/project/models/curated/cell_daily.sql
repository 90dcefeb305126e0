-- materialized: overwrite_partitions
-- partition_by: [ds]
-- domain: telco
-- quality: quality/cell_daily.dqdl
-- description: Calls and minutes per cell, region and call type.
SELECT
    ds,
    cell_id,
    region,
    call_type,
    count(*) AS calls,
    CAST(sum(duration_s) AS BIGINT) AS seconds,
    count(DISTINCT msisdn) AS callers
FROM telco.processed.cdr
WHERE ds = :ds
GROUP BY ALL
