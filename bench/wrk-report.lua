-- wrk "done" hook for bench/proxy-bench.sh: prints exactly one machine-readable line.
--   WRK requests=N duration_us=N rps=F p50_us=N p99_us=N socket_errors=N non2xx3xx=N
-- socket_errors = connect + read + write + timeout errors;
-- non2xx3xx     = responses with a status >= 400 (wrk's errors.status counter).
done = function(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local rps = 0
  if secs > 0 then rps = summary.requests / secs end
  io.write(string.format(
    "WRK requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d socket_errors=%d non2xx3xx=%d\n",
    summary.requests, summary.duration, rps,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
