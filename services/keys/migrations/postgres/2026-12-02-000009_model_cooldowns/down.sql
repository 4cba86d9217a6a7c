ALTER TABLE keys DROP COLUMN model_cooldowns;
