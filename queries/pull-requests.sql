-- Pull requests opened vs merged (and closed unmerged) per repository in the range.
SELECT
    repository,
    count(*) FILTER (WHERE action = 'opened') AS opened,
    count(*) FILTER (WHERE action = 'closed' AND (payload ->> '$.pull_request.merged') = 'true') AS merged,
    count(*) FILTER (WHERE action = 'closed' AND (payload ->> '$.pull_request.merged') IS DISTINCT FROM 'true') AS closed_unmerged
FROM in_range
WHERE event = 'pull_request'
GROUP BY repository
ORDER BY opened + merged DESC, repository;
