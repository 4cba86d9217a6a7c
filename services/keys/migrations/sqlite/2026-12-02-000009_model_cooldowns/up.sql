-- The models a key rests for while it serves the others (Google counts quotas per key and
-- model): a JSON object of model name -> Unix milliseconds; keys stored before hold '{}'.
ALTER TABLE keys ADD COLUMN model_cooldowns TEXT NOT NULL DEFAULT '{}';
