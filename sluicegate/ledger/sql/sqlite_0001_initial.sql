-- The budget ledger on SQLite: the same tables as on PostgreSQL. Timestamps are integer
-- microseconds since 1970-01-01 UTC and a reservation's window ids are a JSON array.
-- Every write runs in a BEGIN IMMEDIATE transaction, which holds the database's single
-- write lock from its first statement, so a check and the update that follows it cannot
-- interleave with another process's.

-- Spend per namespace and window. Budgets only choose which windows a call is charged to,
-- so deleting and re-creating a budget finds its namespace's counters unchanged.
CREATE TABLE sluicegate_windows (
    id            INTEGER PRIMARY KEY,
    namespace     TEXT    NOT NULL,
    period        TEXT    NOT NULL,
    time_zone     TEXT    NOT NULL,
    window_start  INTEGER NOT NULL,
    window_end    INTEGER,
    spent_nano    INTEGER NOT NULL DEFAULT 0 CHECK (spent_nano >= 0),
    reserved_nano INTEGER NOT NULL DEFAULT 0 CHECK (reserved_nano >= 0),
    created_at    INTEGER NOT NULL,
    UNIQUE (namespace, period, time_zone, window_start)
) STRICT;

CREATE TABLE sluicegate_reservations (
    id          TEXT    PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    amount_nano INTEGER NOT NULL CHECK (amount_nano >= 0),
    window_ids  TEXT    NOT NULL,
    reserved_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- held -> settled | released: finished in time;
    -- held -> expired: its TTL passed and someone gave the hold back;
    -- held | expired -> expired_finished: a settle or release came after the TTL.
    state       TEXT    NOT NULL DEFAULT 'held'
                CHECK (state IN ('held', 'settled', 'released', 'expired', 'expired_finished')),
    finished_at INTEGER
) STRICT;

CREATE INDEX sluicegate_reservations_held ON sluicegate_reservations (namespace, expires_at)
    WHERE state = 'held';

-- One row per attempt. window_at is the ledger time that chose the attempt's windows:
-- its reservation's reserved_at, or created_at for a row recorded without one.
CREATE TABLE sluicegate_attempts (
    id                INTEGER PRIMARY KEY,
    created_at        INTEGER NOT NULL,
    window_at         INTEGER NOT NULL,
    reservation_id    TEXT,
    request_id        TEXT    NOT NULL,
    attempt_id        TEXT    NOT NULL,
    namespace         TEXT    NOT NULL,
    route             TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    decision          TEXT    NOT NULL,
    outcome           TEXT    NOT NULL,
    usage_source      TEXT    NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    estimated_nano    INTEGER NOT NULL,
    charged_nano      INTEGER NOT NULL,
    escalated_from    TEXT,
    latency_ms        REAL    NOT NULL,
    signals           TEXT    NOT NULL,
    error             TEXT    NOT NULL
) STRICT;

CREATE INDEX sluicegate_attempts_namespace ON sluicegate_attempts (namespace, created_at);
CREATE INDEX sluicegate_attempts_created ON sluicegate_attempts (created_at);
CREATE INDEX sluicegate_attempts_request ON sluicegate_attempts (request_id);

CREATE TABLE sluicegate_budgets (
    namespace    TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    ceiling_nano INTEGER NOT NULL CHECK (ceiling_nano >= 0),
    period       TEXT    NOT NULL,
    time_zone    TEXT    NOT NULL,
    on_exceeded  TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;

CREATE TABLE sluicegate_api_keys (
    key_id     TEXT    PRIMARY KEY,
    namespace  TEXT    NOT NULL,
    key_sha256 TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

CREATE INDEX sluicegate_api_keys_namespace ON sluicegate_api_keys (namespace);

-- Spend is history: window rows are never deleted and attempt rows never change.
CREATE TRIGGER sluicegate_windows_keep BEFORE DELETE ON sluicegate_windows
BEGIN
    SELECT RAISE(ABORT, 'sluicegate ledger: DELETE on sluicegate_windows is not allowed; ledger rows are kept as history');
END;

CREATE TRIGGER sluicegate_attempts_keep_update BEFORE UPDATE ON sluicegate_attempts
BEGIN
    SELECT RAISE(ABORT, 'sluicegate ledger: UPDATE on sluicegate_attempts is not allowed; ledger rows are kept as history');
END;

CREATE TRIGGER sluicegate_attempts_keep_delete BEFORE DELETE ON sluicegate_attempts
BEGIN
    SELECT RAISE(ABORT, 'sluicegate ledger: DELETE on sluicegate_attempts is not allowed; ledger rows are kept as history');
END;
