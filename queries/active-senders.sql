-- The 20 senders (GitHub logins) behind the most deliveries in the range.
SELECT
    sender,
    count(*) AS deliveries,
    count(DISTINCT repository) AS repositories,
    count(DISTINCT event) AS event_types,
    max(received_at) AS last_at
FROM in_range
WHERE sender IS NOT NULL
GROUP BY sender
ORDER BY deliveries DESC, sender
LIMIT 20;
