-- Two fleetd replicas making the same day's telemetry partition at once: the second
-- waited on the advisory lock while the first created the table, then did not see the
-- table (its catalog lookup was older than the first's commit) and failed with
-- "relation ... already exists", and its batch of rows was lost (seen in
-- bench_rollout_scale with three replicas). The creation now treats "already exists"
-- as done.
CREATE OR REPLACE FUNCTION tinyfleet_ensure_telemetry_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  part text := 'telemetry_' || to_char(day, 'YYYYMMDD');
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN;
  END IF;
  -- Serialize concurrent creators of the same day's partition.
  -- Days are UTC days whatever the session's time zone.
  PERFORM pg_advisory_xact_lock(hashtext(part));
  IF to_regclass(part) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                     part, day::timestamp AT TIME ZONE 'UTC',
                     (day + 1)::timestamp AT TIME ZONE 'UTC');
    EXCEPTION WHEN duplicate_table THEN
      NULL;  -- another session made it and committed while this one waited
    END;
  END IF;
END $$;
