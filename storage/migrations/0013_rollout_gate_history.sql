-- Each gate's value over time: the engine records the phase's gate evaluation while it
-- bakes and while it decides (at most one row per rollout every
-- rollouts::repo::kGateHistorySeconds, and every decisive evaluation), for the console's
-- "gates over time" charts. `stage` is 'baking' (informative, before the bake ends) or
-- 'decision' (the evaluation the engine acted on or waited on).
CREATE TABLE rollout_gate_history (
  rollout_id bigint NOT NULL REFERENCES rollouts(id),
  phase      integer NOT NULL,
  stage      text NOT NULL CHECK (stage IN ('baking', 'decision')),
  at         timestamptz NOT NULL DEFAULT now(),
  report     jsonb NOT NULL
);
CREATE INDEX rollout_gate_history_idx ON rollout_gate_history (rollout_id, at);
