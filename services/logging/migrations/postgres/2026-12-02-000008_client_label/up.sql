-- The label a client gives itself in its request (Anthropic's metadata.user_id, OpenAI's
-- user), beside the token's name; rows written before hold ''.
ALTER TABLE request_logs ADD COLUMN client_label TEXT NOT NULL DEFAULT '';
