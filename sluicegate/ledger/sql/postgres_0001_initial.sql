-- The budget ledger on PostgreSQL: window counters, reservations, attempt rows, budget
-- definitions and API keys, plus one server-side function per hot operation so that
-- reserve, settle, release and record each take a single round trip.
--
-- Locking rules that keep concurrent transactions free of deadlocks:
--   * a batch handles its items in namespace order, and a single operation touches one
--     namespace, so transactions take the locks of different namespaces in one order;
--   * within a namespace, settle and release lock the reservation row before the window
--     rows; reserve takes expired reservations with SKIP LOCKED and never waits for them;
--   * new window rows are inserted in (period, time_zone, window_start) order;
--   * existing window rows are locked with SELECT ... ORDER BY id FOR UPDATE before any
--     of them is changed.
-- Two transactions finishing the same reservation (a settle retried after its reply was
-- lost) can still deadlock; PostgreSQL aborts one, and the ledger runs that batch again.

-- Spend per namespace and window. Budgets only choose which windows a call is charged to,
-- so deleting and re-creating a budget finds its namespace's counters unchanged.
CREATE TABLE sluicegate_windows (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace     text        NOT NULL,
    period        text        NOT NULL,
    time_zone     text        NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz,
    spent_nano    bigint      NOT NULL DEFAULT 0 CHECK (spent_nano >= 0),
    reserved_nano bigint      NOT NULL DEFAULT 0 CHECK (reserved_nano >= 0),
    created_at    timestamptz NOT NULL,
    UNIQUE (namespace, period, time_zone, window_start)
) WITH (fillfactor = 50);  -- room on each page for HOT updates of the two counters

CREATE TABLE sluicegate_reservations (
    id           text        PRIMARY KEY,
    namespace    text        NOT NULL,
    amount_nano  bigint      NOT NULL CHECK (amount_nano >= 0),
    window_ids   bigint[]    NOT NULL,
    reserved_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    -- held -> settled | released: finished in time;
    -- held -> expired: its TTL passed and someone gave the hold back;
    -- held | expired -> expired_finished: a settle or release came after the TTL.
    state        text        NOT NULL DEFAULT 'held'
                 CHECK (state IN ('held', 'settled', 'released', 'expired', 'expired_finished')),
    finished_at  timestamptz
);

CREATE INDEX sluicegate_reservations_held ON sluicegate_reservations (namespace, expires_at)
    WHERE state = 'held';

-- One row per attempt. window_at is the ledger time that chose the attempt's windows:
-- its reservation's reserved_at, or created_at for a row recorded without one.
CREATE TABLE sluicegate_attempts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at        timestamptz      NOT NULL,
    window_at         timestamptz      NOT NULL,
    reservation_id    text,
    request_id        text             NOT NULL,
    attempt_id        text             NOT NULL,
    namespace         text             NOT NULL,
    route             text             NOT NULL,
    provider          text             NOT NULL,
    model             text             NOT NULL,
    decision          text             NOT NULL,
    outcome           text             NOT NULL,
    usage_source      text             NOT NULL,
    prompt_tokens     bigint           NOT NULL,
    cached_tokens     bigint           NOT NULL,
    completion_tokens bigint           NOT NULL,
    estimated_nano    bigint           NOT NULL,
    charged_nano      bigint           NOT NULL,
    escalated_from    text,
    latency_ms        double precision NOT NULL,
    signals           text[]           NOT NULL,
    error             text             NOT NULL
);

CREATE INDEX sluicegate_attempts_namespace ON sluicegate_attempts (namespace, created_at);
CREATE INDEX sluicegate_attempts_created ON sluicegate_attempts (created_at);
CREATE INDEX sluicegate_attempts_request ON sluicegate_attempts (request_id);

CREATE TABLE sluicegate_budgets (
    namespace    text        NOT NULL,
    name         text        NOT NULL,
    ceiling_nano bigint      NOT NULL CHECK (ceiling_nano >= 0),
    period       text        NOT NULL,
    time_zone    text        NOT NULL,
    on_exceeded  text        NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (namespace, name)
);

CREATE TABLE sluicegate_api_keys (
    key_id     text        PRIMARY KEY,
    namespace  text        NOT NULL,
    key_sha256 text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX sluicegate_api_keys_namespace ON sluicegate_api_keys (namespace);

-- Spend is history: window rows are never deleted and attempt rows never change.
CREATE FUNCTION sluicegate_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sluicegate ledger: % on % is not allowed; ledger rows are kept as history', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER sluicegate_windows_keep BEFORE DELETE ON sluicegate_windows
    FOR EACH ROW EXECUTE FUNCTION sluicegate_reject_change();
CREATE TRIGGER sluicegate_attempts_keep BEFORE UPDATE OR DELETE ON sluicegate_attempts
    FOR EACH ROW EXECUTE FUNCTION sluicegate_reject_change();

-- Return the ids of a namespace's window rows for the given keys, in the order given,
-- creating the rows that do not exist yet.
CREATE FUNCTION sluicegate_window_ids(
    p_namespace text,
    p_periods text[],
    p_time_zones text[],
    p_starts timestamptz[],
    p_ends timestamptz[],
    p_now timestamptz
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
BEGIN
    INSERT INTO sluicegate_windows AS w (namespace, period, time_zone, window_start, window_end, created_at)
    SELECT p_namespace, k.period, k.time_zone, k.window_start, k.window_end, p_now
    FROM unnest(p_periods, p_time_zones, p_starts, p_ends) AS k (period, time_zone, window_start, window_end)
    WHERE NOT EXISTS (
        SELECT 1 FROM sluicegate_windows e
        WHERE e.namespace = p_namespace AND e.period = k.period
          AND e.time_zone = k.time_zone AND e.window_start = k.window_start
    )
    ORDER BY k.period, k.time_zone, k.window_start
    ON CONFLICT DO NOTHING;

    SELECT array_agg(e.id ORDER BY k.ord) INTO v_ids
    FROM unnest(p_periods, p_time_zones, p_starts) WITH ORDINALITY AS k (period, time_zone, window_start, ord)
    JOIN sluicegate_windows e
      ON e.namespace = p_namespace AND e.period = k.period
     AND e.time_zone = k.time_zone AND e.window_start = k.window_start;
    RETURN coalesce(v_ids, '{}');
END
$$;

-- Write one attempt row from its JSON document (the fields of sluicegate.ledger.Attempt).
CREATE FUNCTION sluicegate_insert_attempt(
    p_attempt jsonb,
    p_reservation_id text,
    p_created_at timestamptz,
    p_window_at timestamptz
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO sluicegate_attempts (
        created_at, window_at, reservation_id, request_id, attempt_id, namespace, route,
        provider, model, decision, outcome, usage_source, prompt_tokens, cached_tokens,
        completion_tokens, estimated_nano, charged_nano, escalated_from, latency_ms, signals, error
    )
    SELECT p_created_at, p_window_at, p_reservation_id, a.request_id, a.attempt_id, a.namespace, a.route,
           a.provider, a.model, a.decision, a.outcome, a.usage_source, a.prompt_tokens, a.cached_tokens,
           a.completion_tokens, a.estimated_nano, a.charged_nano, a.escalated_from, a.latency_ms,
           coalesce(a.signals, '{}'), a.error
    FROM jsonb_populate_record(NULL::sluicegate_attempts, p_attempt) AS a;
$$;

-- Hold p_amount on every window in p_window_ids, each checked against its ceiling in
-- p_ceilings, or hold nothing. Expired holds of the namespace are given back first.
-- o_spent and o_reserved are the counters before this hold, in the order of the ids.
-- Window rows are never deleted, so a caller may remember the ids that
-- sluicegate_window_ids returned and skip that lookup on later calls.
CREATE FUNCTION sluicegate_reserve_known(
    p_reservation_id text,
    p_namespace text,
    p_window_ids bigint[],
    p_ceilings bigint[],
    p_amount bigint,
    p_now timestamptz,
    p_expires_at timestamptz,
    OUT o_fits boolean,
    OUT o_spent bigint[],
    OUT o_reserved bigint[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_expired_ids text[];
BEGIN
    -- A hold that another transaction is settling or giving back is that transaction's
    -- to finish, so SKIP LOCKED: reserve never waits on a reservation row.
    SELECT array_agg(r.id) INTO v_expired_ids FROM (
        SELECT id FROM sluicegate_reservations
        WHERE namespace = p_namespace AND state = 'held' AND expires_at <= p_now
        ORDER BY id
        FOR UPDATE SKIP LOCKED
    ) AS r;

    PERFORM 1 FROM sluicegate_windows
    WHERE id = ANY (p_window_ids)
       OR id IN (SELECT unnest(window_ids) FROM sluicegate_reservations WHERE id = ANY (v_expired_ids))
    ORDER BY id
    FOR UPDATE;

    IF v_expired_ids IS NOT NULL THEN
        UPDATE sluicegate_windows AS w SET reserved_nano = w.reserved_nano - x.amount
        FROM (
            SELECT held.window_id, sum(r.amount_nano) AS amount
            FROM sluicegate_reservations AS r, unnest(r.window_ids) AS held (window_id)
            WHERE r.id = ANY (v_expired_ids)
            GROUP BY held.window_id
        ) AS x
        WHERE w.id = x.window_id;
        UPDATE sluicegate_reservations SET state = 'expired', finished_at = p_now
        WHERE id = ANY (v_expired_ids);
    END IF;

    -- The rows are locked, so nothing can change between this check and the update.
    SELECT coalesce(bool_and(p_amount = 0 OR w.spent_nano + w.reserved_nano + p_amount <= c.ceiling), true),
           coalesce(array_agg(w.spent_nano ORDER BY c.ord), '{}'),
           coalesce(array_agg(w.reserved_nano ORDER BY c.ord), '{}')
    INTO o_fits, o_spent, o_reserved
    FROM unnest(p_window_ids, p_ceilings) WITH ORDINALITY AS c (window_id, ceiling, ord)
    JOIN sluicegate_windows AS w ON w.id = c.window_id;
    IF NOT o_fits THEN
        RETURN;
    END IF;

    IF p_amount > 0 THEN
        UPDATE sluicegate_windows SET reserved_nano = reserved_nano + p_amount WHERE id = ANY (p_window_ids);
    END IF;
    INSERT INTO sluicegate_reservations (id, namespace, amount_nano, window_ids, reserved_at, expires_at)
    VALUES (p_reservation_id, p_namespace, p_amount, p_window_ids, p_now, p_expires_at);
END
$$;

-- Finish a reservation: give its hold back, add p_charged to spent on the windows it
-- was taken from, and write the attempt row when p_attempt is not NULL. o_result is
-- 'ok', 'expired', 'missing' or 'finished' (already settled or released, so nothing is
-- written and a second settle cannot charge twice).
-- A settle after the TTL still adds the charge and writes the row, even when another
-- transaction has already given the hold back, because the provider billed the call all
-- the same. The caller then gets ReservationExpired, which says the charge was recorded.
CREATE FUNCTION sluicegate_finish(
    p_reservation_id text,
    p_state text,
    p_now timestamptz,
    p_charged bigint,
    p_attempt jsonb,
    OUT o_result text
) LANGUAGE plpgsql AS $$
DECLARE
    v_hold sluicegate_reservations%ROWTYPE;
    v_in_time boolean;
BEGIN
    SELECT * INTO v_hold FROM sluicegate_reservations WHERE id = p_reservation_id FOR UPDATE;
    IF NOT FOUND THEN
        o_result := 'missing';
        RETURN;
    END IF;
    IF v_hold.state NOT IN ('held', 'expired') THEN
        o_result := 'finished';
        RETURN;
    END IF;
    v_in_time := v_hold.state = 'held' AND v_hold.expires_at > p_now;

    PERFORM 1 FROM sluicegate_windows WHERE id = ANY (v_hold.window_ids) ORDER BY id FOR UPDATE;
    UPDATE sluicegate_windows
    SET reserved_nano = reserved_nano - CASE WHEN v_hold.state = 'held' THEN v_hold.amount_nano ELSE 0 END,
        spent_nano = spent_nano + p_charged
    WHERE id = ANY (v_hold.window_ids);

    UPDATE sluicegate_reservations
    SET state = CASE WHEN v_in_time THEN p_state ELSE 'expired_finished' END, finished_at = p_now
    WHERE id = p_reservation_id;

    IF p_attempt IS NOT NULL THEN
        PERFORM sluicegate_insert_attempt(p_attempt, p_reservation_id, p_now, v_hold.reserved_at);
    END IF;
    o_result := CASE WHEN v_in_time THEN 'ok' ELSE 'expired' END;
END
$$;

-- Write an attempt row that has no reservation, adding p_charged to spent on the given
-- windows of p_namespace when it is not 0.
CREATE FUNCTION sluicegate_record(
    p_namespace text,
    p_periods text[],
    p_time_zones text[],
    p_starts timestamptz[],
    p_ends timestamptz[],
    p_charged bigint,
    p_now timestamptz,
    p_attempt jsonb
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_window_ids bigint[];
BEGIN
    IF p_charged > 0 AND cardinality(p_periods) > 0 THEN
        v_window_ids := sluicegate_window_ids(p_namespace, p_periods, p_time_zones, p_starts, p_ends, p_now);
        PERFORM 1 FROM sluicegate_windows WHERE id = ANY (v_window_ids) ORDER BY id FOR UPDATE;
        UPDATE sluicegate_windows SET spent_nano = spent_nano + p_charged WHERE id = ANY (v_window_ids);
    END IF;
    PERFORM sluicegate_insert_attempt(p_attempt, NULL, p_now, p_now);
END
$$;

-- Run sluicegate_reserve_known for a batch of calls in one transaction. Item i uses the
-- windows p_window_ids[p_window_starts[i] : p_window_starts[i] + p_window_counts[i] - 1]
-- with the ceilings at the same positions of p_ceilings. Items go in namespace order, the
-- order every ledger operation locks in, so concurrent batches cannot deadlock.
CREATE FUNCTION sluicegate_reserve_batch(
    p_ids text[],
    p_namespaces text[],
    p_window_ids bigint[],
    p_ceilings bigint[],
    p_window_starts int[],
    p_window_counts int[],
    p_amounts bigint[],
    p_nows timestamptz[],
    p_expires_at timestamptz[]
) RETURNS TABLE (o_index int, o_fits boolean, o_spent bigint[], o_reserved bigint[]) LANGUAGE plpgsql AS $$
DECLARE
    v_index int;
    v_first int;
    v_last int;
BEGIN
    FOR v_index IN
        SELECT n.ord FROM unnest(p_namespaces) WITH ORDINALITY AS n (namespace, ord) ORDER BY n.namespace, n.ord
    LOOP
        v_first := p_window_starts[v_index];
        v_last := v_first + p_window_counts[v_index] - 1;
        SELECT v_index, k.o_fits, k.o_spent, k.o_reserved INTO o_index, o_fits, o_spent, o_reserved
        FROM sluicegate_reserve_known(
            p_ids[v_index], p_namespaces[v_index], coalesce(p_window_ids[v_first:v_last], '{}'),
            coalesce(p_ceilings[v_first:v_last], '{}'), p_amounts[v_index], p_nows[v_index], p_expires_at[v_index]
        ) AS k;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Run sluicegate_finish for a batch of reservations in one transaction, in namespace order.
CREATE FUNCTION sluicegate_finish_batch(
    p_ids text[],
    p_namespaces text[],
    p_states text[],
    p_nows timestamptz[],
    p_charged bigint[],
    p_attempts jsonb[]
) RETURNS TABLE (o_index int, o_result text) LANGUAGE plpgsql AS $$
DECLARE
    v_index int;
BEGIN
    FOR v_index IN
        SELECT n.ord FROM unnest(p_namespaces) WITH ORDINALITY AS n (namespace, ord) ORDER BY n.namespace, n.ord
    LOOP
        o_index := v_index;
        o_result := sluicegate_finish(p_ids[v_index], p_states[v_index], p_nows[v_index], p_charged[v_index],
                                      p_attempts[v_index]);
        RETURN NEXT;
    END LOOP;
END
$$;
