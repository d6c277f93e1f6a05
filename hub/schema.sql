-- The hub's tables. Every write is an idempotent upsert, so a redelivered message (QoS 1 is at-least-once, and a
-- shared subscription may hand a site's messages to several workers in any order) changes nothing twice.
CREATE TABLE IF NOT EXISTS centers (
    site          text PRIMARY KEY,
    name          text,
    timezone      text,
    lat           double precision,
    lon           double precision,
    site_ts       bigint,            -- ts of the `site` message kept (a newer one replaces it, an older one is ignored)
    state         text,              -- online / offline from `status` (offline is the box's Last Will)
    state_ts      bigint,
    last_ts       bigint,            -- newest payload time seen from the box (ms)
    last_received timestamptz,       -- when the hub received that newest payload
    lag_ms        bigint             -- last_received - last_ts: how far behind the uplink is
);
-- center or vehicle (a reefer truck or insulated box running the daemon), from the `site` message; a hub from
-- before it gets the column here, its sites centers until their next site message
ALTER TABLE centers ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'center';
CREATE TABLE IF NOT EXISTS rooms (
    site      text NOT NULL,
    zone      text NOT NULL,
    name      text,
    capacity  double precision,
    unit      text,
    commodity text,
    PRIMARY KEY (site, zone)
);
CREATE TABLE IF NOT EXISTS events (
    event_id    text PRIMARY KEY,
    site        text NOT NULL,
    type        text NOT NULL,
    biz_step    text,
    event_time  timestamptz NOT NULL,
    zone        text,
    lot         text,
    destination text,
    source      text,
    body        jsonb NOT NULL,
    received    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_time ON events (event_time);
CREATE INDEX IF NOT EXISTS events_step_time ON events (biz_step, event_time);
CREATE TABLE IF NOT EXISTS event_lots (
    event_id text NOT NULL REFERENCES events (event_id),
    lot      text NOT NULL,
    role     text NOT NULL,          -- lot, input, output, epc
    PRIMARY KEY (event_id, lot, role)
);
CREATE INDEX IF NOT EXISTS event_lots_lot ON event_lots (lot, role);
CREATE TABLE IF NOT EXISTS lot_places (  -- each code's newest event (hub/places.py): capacity without the history
    lot      text PRIMARY KEY,
    event_id text NOT NULL,
    event_ms bigint NOT NULL,
    consumed boolean NOT NULL,       -- the newest event names it as an input (split, merged, processed)
    site     text NOT NULL,
    zone     text,
    biz_step text,
    in_store boolean NOT NULL,       -- not consumed, commissioned / stored / received in a room
    unit     text,                   -- its quantity in a room capacity unit (t, pallets, m3), if it has one
    quantity double precision
);
CREATE INDEX IF NOT EXISTS lot_places_in_store ON lot_places (site, zone) WHERE in_store;
CREATE TABLE IF NOT EXISTS alarm_changes (
    site   text NOT NULL,
    id     text NOT NULL,
    state  text NOT NULL,
    ts     bigint NOT NULL,
    zone   text,
    sensor text,
    kind   text NOT NULL,
    value  double precision,
    by_user text,
    text   text,
    PRIMARY KEY (site, id, state)
);
CREATE TABLE IF NOT EXISTS alarms (  -- each alert's latest state, derived from alarm_changes in the same transaction
    site    text NOT NULL,
    id      text NOT NULL,
    state   text NOT NULL,
    rank    smallint NOT NULL,       -- open 0 < acknowledged 1 < resolved 2 < closed 3: a tie in ts goes forward
    ts      bigint NOT NULL,
    opened  bigint,
    zone    text,
    sensor  text,
    kind    text NOT NULL,
    value   double precision,
    acked_by text,
    acked_ts bigint,
    PRIMARY KEY (site, id)
);
CREATE INDEX IF NOT EXISTS alarms_live ON alarms (state) WHERE state IN ('open', 'acknowledged');
CREATE TABLE IF NOT EXISTS rejected (  -- bad input, counted and named, never stored as data
    id       bigserial PRIMARY KEY,
    topic    text NOT NULL,
    reason   text NOT NULL,
    received timestamptz NOT NULL DEFAULT now()
);
