-- Long-running work (compiles) that clients watch and that survives a restart of fleetd:
-- an operation left pending or running is picked up again when fleetd starts.
CREATE TABLE operations (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL,
    object      text        NOT NULL,
    params      jsonb       NOT NULL DEFAULT '{}',
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'succeeded', 'failed')),
    done        integer     NOT NULL DEFAULT 0 CHECK (done >= 0),
    total       integer     NOT NULL DEFAULT 0 CHECK (total >= 0),
    message     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operations_unfinished_idx ON operations (id) WHERE state IN ('pending', 'running');
