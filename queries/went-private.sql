-- Deliveries of repositories that went private: made private (a
-- `repository` `privatized` event, or `private` turning true after a public
-- delivery) at some point in the range. Every delivery of such a
-- repository is listed, with whether it came before that moment, so that
-- copies shared while it was public can be found.
WITH flips AS (
    SELECT repository, received_at
    FROM in_range
    WHERE event = 'repository' AND action = 'privatized'
    UNION ALL
    SELECT later.repository, later.received_at
    FROM in_range AS later
    WHERE later.private
      AND EXISTS (
          SELECT 1 FROM in_range AS earlier
          WHERE earlier.repository = later.repository
            AND earlier.private = false
            AND earlier.received_at < later.received_at
      )
),
went AS (
    SELECT repository, min(received_at) AS went_private_at
    FROM flips
    GROUP BY repository
)
SELECT
    d.repository,
    went.went_private_at,
    d.received_at,
    d.received_at < went.went_private_at AS before_private,
    d.event,
    d.action,
    d.delivery_id,
    d.object_key
FROM in_range AS d
JOIN went USING (repository)
ORDER BY d.repository, d.received_at, d.object_key, d.record_index;
