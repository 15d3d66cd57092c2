-- wrk script: POST one small JSON-RPC message (tools/call), optionally with a bearer token from
-- the file named by $BENCH_TOKENS (one token per line; each connection cycles through them when
-- $BENCH_UNIQUE=1, otherwise uses the first). Prints a JSON summary line at the end.
local body = os.getenv("BENCH_BODY") or '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
local tokens = {}
local path = os.getenv("BENCH_TOKENS")
if path and path ~= "" then
  for line in io.lines(path) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
end
local unique = os.getenv("BENCH_UNIQUE") == "1"
local counter = 0

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if #tokens > 0 then wrk.headers["Authorization"] = "Bearer " .. tokens[1] end

request = function()
  if unique and #tokens > 0 then
    counter = counter + 1
    wrk.headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
  end
  return wrk.format()
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,"p999_us":%d,"errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), errors, summary.errors.status))
end
