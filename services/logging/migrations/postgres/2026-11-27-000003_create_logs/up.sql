-- One row per failed upstream attempt. Keys appear only masked (and by id); the request body
-- only with ERROR_LOG_RECORD_REQUEST_BODY.
CREATE TABLE error_logs (
    id BIGSERIAL PRIMARY KEY,
    error_message TEXT NOT NULL,
    error_time TIMESTAMP NOT NULL,
    request_context TEXT NULL,
    key_id BIGINT NOT NULL DEFAULT 0,
    key_masked TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL DEFAULT '',
    error_type TEXT NOT NULL DEFAULT '',
    error_class TEXT NOT NULL DEFAULT '',
    error_code INTEGER NOT NULL DEFAULT 0,
    client TEXT NOT NULL DEFAULT ''
);
CREATE INDEX error_logs_time ON error_logs (error_time);
CREATE INDEX error_logs_key ON error_logs (key_id, error_time);

-- One row per client request (kind 'client') and per upstream attempt (kind 'attempt').
CREATE TABLE request_logs (
    id BIGSERIAL PRIMARY KEY,
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
    outcome TEXT NOT NULL DEFAULT ''
);
-- One index: every row is written once and most are never read, so each index costs more
-- than it saves. Statistics read a time window (a key's rows are filtered within it);
-- retention deletes by time.
CREATE INDEX request_logs_time ON request_logs (request_time);
