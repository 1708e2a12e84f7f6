-- What the rollout engine needs to be durable: every device of a rollout is listed from
-- the start (its phase fixed by a stable rank), each offer it got carries a release
-- number from one sequence (monotonic, so a rollback is a new, higher release), and the
-- offer bytes themselves are kept so a restarted fleetd re-serves what it promised.
CREATE SEQUENCE release_seq START 1;

ALTER TABLE rollout_devices DROP CONSTRAINT rollout_devices_state_check;
ALTER TABLE rollout_devices ADD CONSTRAINT rollout_devices_state_check
  CHECK (state IN ('pending', 'admitted', 'offered', 'updated', 'failed', 'reverting',
                   'rolled_back'));
ALTER TABLE rollout_devices ALTER COLUMN state SET DEFAULT 'pending';
ALTER TABLE rollout_devices
  ADD COLUMN rank            integer NOT NULL DEFAULT 0,
  ADD COLUMN device_class    text NOT NULL DEFAULT '',
  ADD COLUMN base_artifact   text,          -- what the device ran when admitted
  ADD COLUMN target_artifact text NOT NULL DEFAULT '',
  ADD COLUMN release_seq     bigint,        -- of the offer of the target
  ADD COLUMN revert_release  bigint,        -- of the offer back to the base
  ADD COLUMN offered_at      timestamptz,
  ADD COLUMN updated_at_device timestamptz;
CREATE INDEX rollout_devices_pending_idx ON rollout_devices (rollout_id, state, rank);

ALTER TABLE rollouts
  ADD COLUMN fleet            text NOT NULL DEFAULT 'default',
  ADD COLUMN phase_started_at timestamptz,
  ADD COLUMN gate_report      jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN previous_version_id bigint REFERENCES model_versions(id);
ALTER TABLE rollouts DROP CONSTRAINT IF EXISTS rollouts_state_check;
ALTER TABLE rollouts ADD CONSTRAINT rollouts_state_check
  CHECK (state IN ('created', 'running', 'paused', 'completed', 'rolling_back', 'rolled_back',
                   'aborted'));

-- The offer each device holds (what its retained offer topic carries).
CREATE TABLE device_offers (
  device_id       text PRIMARY KEY REFERENCES devices(id),
  release_seq     bigint NOT NULL,
  rollout_id      bigint REFERENCES rollouts(id),
  target_artifact text NOT NULL,
  payload_sha256  text NOT NULL REFERENCES blobs(sha256),
  offer           bytea NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now()
);
