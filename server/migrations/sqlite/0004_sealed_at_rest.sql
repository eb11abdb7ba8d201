-- v4: records that arrived sealed rest sealed (`sealed` holds the
-- sealed record as JSON; `body` and `sig` are then empty).
ALTER TABLE records ADD COLUMN sealed TEXT;
ALTER TABLE conflicts ADD COLUMN sealed TEXT;
ALTER TABLE quarantine ADD COLUMN sealed TEXT;
