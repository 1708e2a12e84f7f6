-- The initial schema: model registry, artifacts, devices, rollouts, telemetry,
-- audit log, API tokens and the content-addressed blob store.

CREATE TABLE blobs (
  sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  data       bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE device_classes (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  spec       jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE models (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_versions (
  id             bigserial PRIMARY KEY,
  model_id       bigint NOT NULL REFERENCES models(id),
  version        integer NOT NULL CHECK (version > 0),
  onnx_sha256    text NOT NULL REFERENCES blobs(sha256),
  calib_sha256   text REFERENCES blobs(sha256),
  val_sha256     text REFERENCES blobs(sha256),
  target_classes jsonb NOT NULL DEFAULT '[]',
  metadata       jsonb NOT NULL DEFAULT '{}',
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (model_id, version)
);

CREATE TABLE artifacts (
  id              bigserial PRIMARY KEY,
  version_id      bigint NOT NULL REFERENCES model_versions(id),
  device_class    text NOT NULL REFERENCES device_classes(name),
  status          text NOT NULL CHECK (status IN ('compiled', 'refused')),
  artifact_sha256 text REFERENCES blobs(sha256),
  report          jsonb NOT NULL DEFAULT '{}',
  refusal_reason  text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (version_id, device_class),
  CHECK ((status = 'compiled') = (artifact_sha256 IS NOT NULL))
);

CREATE TABLE devices (
  id                      text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  fleet                   text NOT NULL DEFAULT 'default',
  device_class            text NOT NULL REFERENCES device_classes(name),
  tags                    jsonb NOT NULL DEFAULT '[]',
  credential_hash         text NOT NULL,
  current_artifact_sha256 text,
  last_seen               timestamptz,
  status                  text NOT NULL DEFAULT 'provisioned',
  created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_class_idx ON devices (device_class, id);
CREATE INDEX devices_status_idx ON devices (status, id);
CREATE INDEX devices_tags_idx ON devices USING gin (tags);

CREATE TABLE rollouts (
  id              bigserial PRIMARY KEY,
  name            text NOT NULL UNIQUE,
  version_id      bigint NOT NULL REFERENCES model_versions(id),
  selector        jsonb NOT NULL DEFAULT '{}',
  gates           jsonb NOT NULL DEFAULT '{}',
  on_gate_failure text NOT NULL DEFAULT 'rollback' CHECK (on_gate_failure IN ('rollback', 'pause')),
  rate_per_minute integer NOT NULL DEFAULT 60 CHECK (rate_per_minute > 0),
  state           text NOT NULL DEFAULT 'created',
  current_phase   integer NOT NULL DEFAULT 0,
  reason          text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rollout_phases (
  rollout_id   bigint NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  idx          integer NOT NULL CHECK (idx >= 0),
  percent      integer NOT NULL CHECK (percent > 0 AND percent <= 100),
  bake_seconds integer NOT NULL DEFAULT 0 CHECK (bake_seconds >= 0),
  state        text NOT NULL DEFAULT 'pending',
  admitted     integer NOT NULL DEFAULT 0,
  updated      integer NOT NULL DEFAULT 0,
  failed       integer NOT NULL DEFAULT 0,
  started_at   timestamptz,
  PRIMARY KEY (rollout_id, idx)
);

CREATE TABLE rollout_devices (
  rollout_id bigint NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
  device_id  text NOT NULL REFERENCES devices(id),
  phase      integer NOT NULL,
  state      text NOT NULL DEFAULT 'admitted'
             CHECK (state IN ('admitted', 'offered', 'updated', 'failed', 'rolled_back')),
  error      text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_state_idx ON rollout_devices (rollout_id, phase, state);

-- Telemetry windows, one row per device per window, range-partitioned by day.
-- Partitions (UTC days) are made on demand by tinyfleet_ensure_telemetry_partition().
CREATE TABLE telemetry (
  device_id        text NOT NULL,
  ts               timestamptz NOT NULL,
  rollout_id       bigint,
  artifact_sha256  text NOT NULL,
  inferences       integer NOT NULL,
  latency_p50_us   double precision NOT NULL,
  latency_p95_us   double precision NOT NULL,
  energy_uj        double precision NOT NULL,
  output_psi       double precision NOT NULL,
  input_drift      double precision NOT NULL,
  probe_accuracy   double precision,
  shadow_agreement double precision
) PARTITION BY RANGE (ts);
CREATE INDEX telemetry_device_ts_idx ON telemetry (device_id, ts);
CREATE INDEX telemetry_rollout_idx ON telemetry (rollout_id, artifact_sha256);

CREATE FUNCTION tinyfleet_ensure_telemetry_partition(day date) RETURNS void
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
    EXECUTE format('CREATE TABLE %I PARTITION OF telemetry FOR VALUES FROM (%L) TO (%L)',
                   part, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
  END IF;
END $$;

CREATE TABLE audit_log (
  id      bigserial PRIMARY KEY,
  ts      timestamptz NOT NULL DEFAULT now(),
  actor   text NOT NULL,
  action  text NOT NULL,
  object  text NOT NULL,
  details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_object_idx ON audit_log (object, id);

CREATE TABLE api_tokens (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  token_hash text NOT NULL UNIQUE,
  role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
