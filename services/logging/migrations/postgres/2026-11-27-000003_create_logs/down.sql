DROP TABLE request_logs;
DROP TABLE error_logs;
