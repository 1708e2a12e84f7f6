-- device_offers is the outbox of offers: a row is stored (with its rollout_devices state)
-- before anything is sent, and `published_at` is set only once the broker acknowledged
-- the retained publish (MQTT QoS 1 PUBACK). A row with published_at NULL is published
-- again by the rollout engine's leader (at start, after every reconnect, and every few
-- seconds) until the broker takes it; the same release and bytes each time, so a
-- re-publish is harmless.
ALTER TABLE device_offers ADD COLUMN published_at timestamptz;
-- Offers stored before this migration were published as they were stored.
UPDATE device_offers SET published_at = created_at;
CREATE INDEX device_offers_unpublished ON device_offers (device_id) WHERE published_at IS NULL;
