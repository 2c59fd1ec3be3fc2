-- A group's seats: `members` joined, `reserved` held by join tokens not redeemed yet, and
-- never more of both than `max_members` (or a live code's `switch_at`). Every change of them
-- is one of these functions; the only conditional ones, reserving and finding a free seat,
-- are single statements, so the cap holds exactly however many replicas race.

-- The counters, moved as a decision says (a join, a departure, tokens expired, a replay).
CREATE OR REPLACE FUNCTION qunma_seats_adjust(
    p_group uuid, p_members integer, p_reserved integer, p_verified integer
) RETURNS void LANGUAGE sql AS $$
    UPDATE groups SET members = members + p_members, reserved = reserved + p_reserved,
                      verified_joins = verified_joins + p_verified
    WHERE group_id = p_group
$$;

-- Tokens expired: their seats back, several groups at once, in one lock order.
CREATE OR REPLACE FUNCTION qunma_seats_release(p_groups uuid[], p_counts integer[])
RETURNS void LANGUAGE sql AS $$
    UPDATE groups SET reserved = reserved - u.n
    FROM unnest(p_groups, p_counts) AS u(group_id, n) WHERE groups.group_id = u.group_id
$$;

-- A seat for a join token, or QM003 (group_full). `p_cap` is a live code's switch_at.
CREATE OR REPLACE FUNCTION qunma_seat_reserve(
    p_group uuid, p_cap integer,
    OUT group_id uuid, OUT name text, OUT members integer, OUT max_members integer
) LANGUAGE plpgsql AS $$
BEGIN
    UPDATE groups g SET reserved = g.reserved + 1
    WHERE g.group_id = p_group
      AND g.members + g.reserved < least(g.max_members, coalesce(p_cap, g.max_members))
    RETURNING g.group_id, g.name, g.members, g.max_members
    INTO group_id, name, members, max_members;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'group full' USING ERRCODE = 'QM003';
    END IF;
END $$;

-- Whether a seat is free for an approved request; the group's row stays locked until the
-- caller's transaction ends, so the seat is still free when the member joins in it.
CREATE OR REPLACE FUNCTION qunma_seat_free(p_group uuid) RETURNS boolean
LANGUAGE sql AS $$
    UPDATE groups SET members = members
    WHERE group_id = p_group AND members + reserved < max_members
    RETURNING true
$$;
