-- Rollout, phase and device states exactly as server/src/rollouts/states.cpp names them.
-- An aborted rollout has a state of its own while its devices return to their previous
-- model ('aborting', then 'aborted'), instead of 'rolling_back' with the reason text
-- deciding the end. 'created' (never written by fleetd) and the device state 'admitted'
-- (written only by the removed storage::rollouts) go, and so do the per-phase counters
-- only it kept: fleetd counts rollout_devices.
UPDATE rollouts SET state = 'aborting' WHERE state = 'rolling_back' AND reason LIKE 'aborted%';
UPDATE rollouts SET state = 'paused', reason = 'created before migration 0005; resume to start'
  WHERE state = 'created';
ALTER TABLE rollouts DROP CONSTRAINT rollouts_state_check;
ALTER TABLE rollouts ALTER COLUMN state SET DEFAULT 'running';
ALTER TABLE rollouts ADD CONSTRAINT rollouts_state_check
  CHECK (state IN ('running', 'paused', 'completed', 'rolling_back', 'rolled_back', 'aborting',
                   'aborted'));

UPDATE rollout_devices SET state = 'pending' WHERE state = 'admitted';
ALTER TABLE rollout_devices DROP CONSTRAINT rollout_devices_state_check;
ALTER TABLE rollout_devices ADD CONSTRAINT rollout_devices_state_check
  CHECK (state IN ('pending', 'offered', 'updated', 'failed', 'reverting', 'rolled_back'));

ALTER TABLE rollout_phases ADD CONSTRAINT rollout_phases_state_check
  CHECK (state IN ('pending', 'active', 'baking', 'passed', 'failed'));
ALTER TABLE rollout_phases DROP COLUMN admitted, DROP COLUMN updated, DROP COLUMN failed;
