-- wrk -s report.lua: after the run, one line "BENCH_JSON {...}" with the
-- exact counts and latency percentiles (microseconds), for bench.py to parse
-- instead of wrk's rounded human output.  No request/response hooks, so wrk
-- keeps its fast path.
--
-- BENCH_CONNECT_TO=ADDR (environment): connect to ADDR instead of resolving
-- the URL's host, which stays in the Host header and in the TLS SNI.  wrk
-- has no --resolve, and its SNI is always the URL's host, IP literals
-- included, which an https edge refuses: so https://NAME.tunnel.test:PORT/
-- with BENCH_CONNECT_TO=127.0.0.1 is a browser's visit without /etc/hosts.
local connect_to = os.getenv("BENCH_CONNECT_TO")
if connect_to and connect_to ~= "" then
   function wrk.resolve(host, service)
      local addrs = wrk.lookup(connect_to, service)
      for i = #addrs, 1, -1 do
         if not wrk.connect(addrs[i]) then
            table.remove(addrs, i)
         end
      end
      wrk.addrs = addrs
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
      '"status_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
