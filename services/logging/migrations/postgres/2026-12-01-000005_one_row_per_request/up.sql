-- One request-log row per client request: it records how many upstream attempts the request
-- took (the key, status, tokens and latency are its last attempt's); failed attempts are error
-- logs, which now keep their latency. Rows written before hold 0.
ALTER TABLE request_logs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE error_logs ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;
