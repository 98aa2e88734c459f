-- The registry: which tunnels are live and which broker holds each.
-- The broker writes it; edges and exposectl read it.  Rows in tunnels
-- exist exactly while their client's websocket does.

-- One row per running broker.  A broker that starts sweeps the rows of
-- brokers that are gone (a dead pid on this boot, or another boot).
CREATE TABLE brokers (
	socket  TEXT PRIMARY KEY,     -- path of the broker's edge socket
	pid     INTEGER NOT NULL,
	boot_id TEXT NOT NULL,        -- /proc/sys/kernel/random/boot_id
	started INTEGER NOT NULL      -- unix seconds
) WITHOUT ROWID;

-- One row per live tunnel.
CREATE TABLE tunnels (
	name    TEXT PRIMARY KEY,     -- the first DNS label of the URL
	broker  TEXT NOT NULL,        -- brokers.socket of the broker holding it
	session INTEGER NOT NULL,     -- the websocket session; deletes match it
	key     TEXT NOT NULL,        -- the client's public key, base64
	addr    TEXT NOT NULL,        -- the client's address
	url     TEXT NOT NULL,        -- the public URL
	target  TEXT NOT NULL,        -- what the client forwards to, as it said
	since   INTEGER NOT NULL      -- unix seconds
) WITHOUT ROWID;

CREATE INDEX tunnels_broker ON tunnels (broker);
