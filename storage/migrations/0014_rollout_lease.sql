-- The rollout engine's leader lease (issue 21): one row, the epoch of the current leader.
-- A replica that takes leadership (pg_try_advisory_lock) increments it in a transaction
-- of its own and keeps the value; every write the leader makes afterwards (admissions,
-- offers, rollout and phase state changes, outbox publish marks) first takes this row
-- FOR SHARE and compares the epoch with its own, in the same transaction. A deposed
-- leader (one whose lock session died while it still believed it led) therefore finds a
-- newer epoch and its write is refused, and a write in flight when the new leader takes
-- over commits before the increment (the share lock holds the UPDATE back) or not at all.
CREATE TABLE rollout_lease (
  id integer PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollout_lease (id, epoch) VALUES (1, 0);
