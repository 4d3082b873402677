-- Reserve on window rows whose ids the caller already knows. Window rows are never
-- deleted, so a process can keep the id of each window counter it has used and skip the
-- lookup that sluicegate_reserve does on every call. Otherwise it behaves exactly like
-- sluicegate_reserve: expired holds of the namespace are given back first, then p_amount
-- is held on every window, each checked against its ceiling in p_ceilings, or on none.
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
