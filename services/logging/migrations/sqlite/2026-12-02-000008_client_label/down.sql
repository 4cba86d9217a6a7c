ALTER TABLE request_logs DROP COLUMN client_label;
