-- The 20 repositories with the most deliveries in the range.
SELECT
    repository,
    count(*) AS deliveries,
    count(DISTINCT event) AS event_types,
    count(DISTINCT sender) AS senders,
    max(received_at) AS last_at
FROM in_range
WHERE repository IS NOT NULL
GROUP BY repository
ORDER BY deliveries DESC, repository
LIMIT 20;
