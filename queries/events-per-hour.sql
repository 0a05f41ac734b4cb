-- Deliveries per hour by event type: the archive's traffic, and its gaps.
SELECT
    date_trunc('hour', received_at) AS hour,
    event,
    count(*) AS deliveries
FROM in_range
GROUP BY ALL
ORDER BY hour, deliveries DESC, event;
