-- Counters of upstream attempts per time bucket (minute, hour, day) x key x model x client x
-- status x outcome, kept up to date with each batch of records (upserts, in the batch's
-- transaction): every statistic is an aggregate over these, its cost set by the number of
-- buckets, not of requests. Filled from the attempts already logged.
CREATE TABLE call_rollups (
    -- The bucket: its width in seconds (60, 3600 or 86400) and its start, unix ms (UTC).
    width_s INTEGER NOT NULL,
    bucket_ms BIGINT NOT NULL,
    key_id BIGINT NOT NULL,
    key_masked TEXT NOT NULL,
    model_name TEXT NOT NULL,
    client TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    calls BIGINT NOT NULL,
    successes BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms_sum BIGINT NOT NULL,
    -- Latency histogram: calls with latency in (previous bound, bound] ms.
    latency_le_100 BIGINT NOT NULL,
    latency_le_300 BIGINT NOT NULL,
    latency_le_1000 BIGINT NOT NULL,
    latency_le_3000 BIGINT NOT NULL,
    latency_le_10000 BIGINT NOT NULL,
    latency_le_30000 BIGINT NOT NULL,
    latency_le_100000 BIGINT NOT NULL,
    latency_over BIGINT NOT NULL,
    PRIMARY KEY (width_s, bucket_ms, key_id, key_masked, model_name, client, status_code, outcome)
-- Stored in key order: a window's buckets are one range of the table, read in sequence.
) WITHOUT ROWID;

INSERT INTO call_rollups (width_s, bucket_ms, key_id, key_masked, model_name, client, status_code, outcome, calls, successes, prompt_tokens, completion_tokens, latency_ms_sum, latency_le_100, latency_le_300, latency_le_1000, latency_le_3000, latency_le_10000, latency_le_30000, latency_le_100000, latency_over)
WITH w(width_s) AS (VALUES (60), (3600), (86400))
SELECT w.width_s,
    CAST(strftime('%s', r.request_time) AS INTEGER) / w.width_s * w.width_s * 1000,
    r.key_id, r.key_masked, r.model_name, r.client, r.status_code, r.outcome,
    COUNT(*),
    SUM(CASE WHEN r.is_success THEN 1 ELSE 0 END),
    SUM(r.prompt_tokens),
    SUM(r.completion_tokens),
    SUM(r.latency_ms),
    SUM(CASE WHEN r.latency_ms <= 100 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 100 AND r.latency_ms <= 300 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 300 AND r.latency_ms <= 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 1000 AND r.latency_ms <= 3000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 3000 AND r.latency_ms <= 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 10000 AND r.latency_ms <= 30000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 30000 AND r.latency_ms <= 100000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN r.latency_ms > 100000 THEN 1 ELSE 0 END)
FROM request_logs r CROSS JOIN w
WHERE r.kind = 'attempt'
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
