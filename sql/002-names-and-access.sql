-- Names that belong to a key, and what a tunnel lets through.

-- A name held by a key: claimed by its first user, reserved by an operator,
-- or given at random (held until it expires, so that a client coming back
-- gets it again and nobody else can take it meanwhile).
CREATE TABLE names (
	name    TEXT PRIMARY KEY,
	key     TEXT NOT NULL,        -- the owner's public key, base64
	kind    TEXT NOT NULL CHECK (kind IN ('claimed', 'reserved', 'random')),
	since   INTEGER NOT NULL,     -- unix seconds
	expires INTEGER               -- unix seconds; NULL: never
) WITHOUT ROWID;

CREATE INDEX names_key ON names (key);

-- Per tunnel: basic auth (a keyed hash, never the password) and the
-- source addresses allowed; empty means none asked for.
ALTER TABLE tunnels ADD COLUMN auth TEXT NOT NULL DEFAULT '';
ALTER TABLE tunnels ADD COLUMN allow TEXT NOT NULL DEFAULT '';
