-- How many times a device of a rollout refused its offer because the offer's base was
-- not what it runs (fleetd offers again from what the device reported). After
-- rollouts::repo::kMaxBaseRefusals such refusals the device fails, so one device cannot
-- keep a phase waiting (issue 19, point 7).
ALTER TABLE rollout_devices ADD COLUMN base_refusals integer NOT NULL DEFAULT 0;
