-- Releases published per repository in the range, with their tags: the
-- question the first webhook receivers answered for an internal dashboard.
SELECT
    repository,
    count(*) AS releases,
    array_to_string(list_sort(list(DISTINCT payload ->> '$.release.tag_name')), ' ') AS tags,
    min(received_at) AS first_at,
    max(received_at) AS last_at
FROM in_range
WHERE event = 'release' AND action = 'published'
GROUP BY repository
ORDER BY releases DESC, repository;
