-- A device is in at most one active rollout, by a constraint rather than by a check that
-- two concurrent CreateRollouts can both pass (issue 20, point 6). rollout_devices.active
-- is true while the row's rollout is active (not completed, rolled_back or aborted);
-- the rollout repository clears it in the same transaction as the state change that
-- ends the rollout (server/src/rollouts/repository.cpp), and the partial unique index
-- refuses a second active row for a device. The rollouts service turns that refusal
-- into FAILED_PRECONDITION naming the device.
ALTER TABLE rollout_devices ADD COLUMN active boolean NOT NULL DEFAULT true;
UPDATE rollout_devices rd SET active = false FROM rollouts r
  WHERE r.id = rd.rollout_id AND r.state IN ('completed', 'rolled_back', 'aborted');
-- A device enrolled twice before this migration stays active in its oldest rollout only.
UPDATE rollout_devices rd SET active = false
  WHERE rd.active AND EXISTS (SELECT 1 FROM rollout_devices o WHERE o.device_id = rd.device_id
                              AND o.active AND o.rollout_id < rd.rollout_id);
CREATE UNIQUE INDEX rollout_devices_one_active ON rollout_devices (device_id) WHERE active;
