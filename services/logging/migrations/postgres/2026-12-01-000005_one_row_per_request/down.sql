ALTER TABLE error_logs DROP COLUMN latency_ms;
ALTER TABLE request_logs DROP COLUMN attempts;
