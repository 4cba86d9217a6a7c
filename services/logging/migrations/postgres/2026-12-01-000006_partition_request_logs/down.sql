-- Back to one table: the rows of every partition copied into it.
CREATE TABLE request_logs_plain (LIKE request_logs INCLUDING DEFAULTS);
INSERT INTO request_logs_plain SELECT * FROM request_logs;
ALTER SEQUENCE request_logs_id_seq OWNED BY NONE;
DROP TABLE request_logs;
ALTER TABLE request_logs_plain RENAME TO request_logs;
ALTER TABLE request_logs ADD PRIMARY KEY (id);
ALTER SEQUENCE request_logs_id_seq OWNED BY request_logs.id;
CREATE INDEX request_logs_time ON request_logs (request_time);
