-- Managed client tokens (LiteLLM's "virtual keys"): created and revoked by the operator, each
-- with its rules. token_hash is the token's keyed HMAC-SHA-256 fingerprint (the value itself is
-- shown once, at creation, and never stored); caller is the name logs give it. models is a JSON
-- list of globs ('[]': every model); times are Unix milliseconds.
CREATE TABLE client_tokens (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    masked TEXT NOT NULL,
    caller TEXT NOT NULL,
    models TEXT NOT NULL DEFAULT '[]',
    rpm BIGINT NULL,
    tpm BIGINT NULL,
    daily_token_budget BIGINT NULL,
    monthly_token_budget BIGINT NULL,
    expires_at BIGINT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);
