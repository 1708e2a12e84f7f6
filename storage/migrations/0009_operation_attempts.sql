-- How many times a worker has started an operation without finishing or pausing it. A
-- worker adds one when it picks the operation up; a clean shutdown resets it (the
-- operation goes back to pending). An operation found running at boot after N attempts
-- crashed fleetd N times: it is failed instead of resumed (docs/server.md, "Operations").
ALTER TABLE operations ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);
