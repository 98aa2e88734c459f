-- More than one host (exposed(8), expose-mirror(8)): which host's broker
-- holds each tunnel.  Empty on a single host.  A row that expose-mirror
-- copied from etcd for another host has host set and broker empty: no
-- broker on this host holds it.
ALTER TABLE tunnels ADD COLUMN host TEXT NOT NULL DEFAULT '';
