-- The key pool. key_value holds the AES-256-GCM ciphertext (base64), never the key itself;
-- key_hash is its keyed HMAC-SHA-256 fingerprint, which makes a value unique and findable.
CREATE TABLE keys (
    id BIGSERIAL PRIMARY KEY,
    key_value TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_type TEXT NOT NULL DEFAULT 'gemini',
    create_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    status TEXT NOT NULL DEFAULT 'active',
    failure_count INTEGER NOT NULL DEFAULT 0,
    cooldown_until TIMESTAMP NULL,
    last_error TEXT NULL,
    last_used TIMESTAMP NULL,
    success_count BIGINT NOT NULL DEFAULT 0,
    failure_total BIGINT NOT NULL DEFAULT 0
);
