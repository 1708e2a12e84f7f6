-- Telemetry version 2 (issue 19, points 3 and 5): each window's sufficient statistics, so
-- fleetd sums them per device (server/src/rollouts/telemetry_stats.cpp) instead of
-- averaging the devices' own ratios and PSI. Version-1 rows keep the defaults (their
-- probe and shadow counts are filled from the version-1 fields).
ALTER TABLE telemetry
  ADD COLUMN version            smallint NOT NULL DEFAULT 1,
  ADD COLUMN seq                bigint NOT NULL DEFAULT 0,
  ADD COLUMN failures           bigint NOT NULL DEFAULT 0,
  ADD COLUMN probe_total        bigint NOT NULL DEFAULT 0,
  ADD COLUMN probe_correct      bigint NOT NULL DEFAULT 0,
  ADD COLUMN shadow_total       bigint NOT NULL DEFAULT 0,
  ADD COLUMN shadow_agree       bigint NOT NULL DEFAULT 0,
  ADD COLUMN class_counts       bigint[] NOT NULL DEFAULT '{}',
  ADD COLUMN input_count        bigint NOT NULL DEFAULT 0,
  ADD COLUMN input_sum          double precision[] NOT NULL DEFAULT '{}',
  ADD COLUMN input_sumsq        double precision[] NOT NULL DEFAULT '{}',
  ADD COLUMN latency_hist       bigint[] NOT NULL DEFAULT '{}',
  ADD COLUMN active_us          bigint NOT NULL DEFAULT 0,
  ADD COLUMN energy_measured_uj double precision,
  ADD COLUMN energy_modelled_uj double precision NOT NULL DEFAULT 0;

-- Retention: drops the day partitions that end on or before `before` (a UTC day), i.e.
-- every partition of a day before it. Returns how many it dropped. fleetd calls it
-- periodically with today minus telemetry.retention_days.
CREATE FUNCTION tinyfleet_drop_telemetry_partitions(before date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  part record;
  dropped integer := 0;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'telemetry'::regclass AND c.relname ~ '^telemetry_[0-9]{8}$'
  LOOP
    IF to_date(substr(part.relname, 11), 'YYYYMMDD') < before THEN
      EXECUTE format('DROP TABLE IF EXISTS %I', part.relname);
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END $$;
