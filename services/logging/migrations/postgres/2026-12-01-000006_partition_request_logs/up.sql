-- request_logs partitioned by day (native range partitioning on request_time), so that
-- retention drops a day's partition instead of deleting its rows one by one. The rows already
-- logged stay where they are: the old table becomes the partition of everything before
-- tomorrow (`request_logs_before`), emptied by retention's deletes like before. Day partitions
-- (`request_logs_pYYYYMMDD`) are created ahead by the logging service (today and the next two
-- days, every hour); `request_logs_default` takes a row no day partition covers (a clock far
-- off), so that no batch fails for it.
ALTER TABLE request_logs RENAME TO request_logs_before;
ALTER INDEX request_logs_time RENAME TO request_logs_before_time;
-- Its key becomes (id, request_time), the partitioned table's, built when it is attached.
ALTER TABLE request_logs_before DROP CONSTRAINT request_logs_pkey;

CREATE TABLE request_logs (
    id BIGINT NOT NULL DEFAULT nextval('request_logs_id_seq'),
    request_time TIMESTAMP NOT NULL,
    request_method TEXT NOT NULL DEFAULT '',
    request_path TEXT NOT NULL DEFAULT '',
    request_params TEXT NULL,
    kind TEXT NOT NULL,
    model_name TEXT NOT NULL DEFAULT '',
    key_id BIGINT NOT NULL DEFAULT 0,
    key_masked TEXT NOT NULL DEFAULT '',
    status_code INTEGER NOT NULL DEFAULT 0,
    is_success BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms INTEGER NOT NULL DEFAULT 0,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    client TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    -- A partitioned table's unique keys include the partition key.
    PRIMARY KEY (id, request_time)
) PARTITION BY RANGE (request_time);
ALTER SEQUENCE request_logs_id_seq OWNED BY request_logs.id;
CREATE INDEX request_logs_time ON request_logs (request_time);

DO $$
DECLARE
    today DATE := (now() AT TIME ZONE 'UTC')::date;
    tomorrow DATE := (SELECT GREATEST(today, COALESCE(MAX(request_time)::date, today))
                      FROM request_logs_before) + 1;
    day DATE;
BEGIN
    EXECUTE format(
        'ALTER TABLE request_logs ATTACH PARTITION request_logs_before FOR VALUES FROM (MINVALUE) TO (%L)',
        tomorrow);
    FOR offset_days IN 0..1 LOOP
        day := tomorrow + offset_days;
        EXECUTE format(
            'CREATE TABLE request_logs_p%s PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
            to_char(day, 'YYYYMMDD'), day, day + 1);
    END LOOP;
END
$$;
CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT;
