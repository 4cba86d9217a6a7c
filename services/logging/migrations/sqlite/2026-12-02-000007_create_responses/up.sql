-- Responses API objects kept for `previous_response_id` (OpenAI's `store`), each its caller's;
-- `contents` is the conversation so far as Gemini contents (JSON), the next response's context.
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    response TEXT NOT NULL,
    contents TEXT NOT NULL
);
CREATE INDEX responses_created_at ON responses (created_at);
