-- When a substantial-equivalence comparison of a stored predicate was last made (the dashboard
-- counts selected predicates that have one).
ALTER TABLE predicate_devices ADD COLUMN compared_at TIMESTAMPTZ;
