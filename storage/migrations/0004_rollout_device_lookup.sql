-- Device status reports look a device up in rollout_devices by its id alone (which
-- rollout it is in is what the lookup finds out); without this index every report
-- scanned the active rollouts' rows (about 1 ms per report at 5,000 devices).
CREATE INDEX rollout_devices_device_idx ON rollout_devices (device_id, state);
