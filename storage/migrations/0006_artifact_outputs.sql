-- The compiler's typed outputs, stored with each compiled artifact (docs/storage.md):
-- modelled cycles, the drift baseline and the arena size as columns, the self-test
-- vectors and the memory plan's buffers as rows of their own. NULL on refused rows and
-- on artifacts compiled before this migration (recompile the version to fill them).
ALTER TABLE artifacts
  ADD COLUMN modelled_cycles bigint CHECK (modelled_cycles >= 0),
  ADD COLUMN drift_class_histogram real[],
  ADD COLUMN drift_mean_top1_confidence real,
  ADD COLUMN drift_channel_mean real[],
  ADD COLUMN drift_channel_std real[],
  ADD COLUMN arena_bytes bigint CHECK (arena_bytes >= 0),
  ADD CHECK (status = 'compiled' OR modelled_cycles IS NULL);

-- Each an int8 input and the exact int8 output of the artifact on the kernels' runtime.
CREATE TABLE artifact_self_tests (
  artifact_id bigint NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  idx         int NOT NULL CHECK (idx >= 0),
  input       bytea NOT NULL CHECK (length(input) > 0),
  output      bytea NOT NULL CHECK (length(output) > 0),
  PRIMARY KEY (artifact_id, idx)
);

-- The memory plan: bytes [offset_bytes, offset_bytes + size_bytes) of the arena hold
-- `tensor` from step first_step to last_step (-1: the graph input before the first operator).
CREATE TABLE artifact_buffers (
  artifact_id  bigint NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
  idx          int NOT NULL CHECK (idx >= 0),
  tensor       text NOT NULL,
  offset_bytes bigint NOT NULL CHECK (offset_bytes >= 0),
  size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
  first_step   int NOT NULL,
  last_step    int NOT NULL CHECK (first_step <= last_step),
  PRIMARY KEY (artifact_id, idx)
);

-- Offers look the outputs up by the artifact's sha256.
CREATE INDEX artifacts_sha256_idx ON artifacts (artifact_sha256);
