-- The settings stored by the config service. value is the environment's text form;
-- env_value is the environment's value when the row was last reconciled, so that a changed
-- environment is noticed at start-up (and wins); source is 'environment' or 'api'.
CREATE TABLE configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL,
    env_value TEXT NULL,
    source TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
