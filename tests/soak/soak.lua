-- wrk script for the soak: one class of request per wrk process (SOAK_CLASS), so every answer is
-- judged against what that class may get. Prints one JSON line with counts by status and the
-- number of answers that show something the gateway must never let through.
local class = os.getenv("SOAK_CLASS")
local token = os.getenv("SOAK_TOKEN") or ""
local session = os.getenv("SOAK_SESSION") or ""
local bodies = {
  call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}',
  denied = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_everything","arguments":{}}}',
  list = '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{}}',
  forged = '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{}}}',
  opaque = '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}',
  hijack = '{"jsonrpc":"2.0","id":6,"method":"ping"}',
}
wrk.method = "POST"
wrk.body = bodies[class] or bodies.call
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if session ~= "" then wrk.headers["Mcp-Session-Id"] = session end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {}; leaks = 0 end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  -- Marker bodies come only from upstream locations no request of these classes may reach;
  -- the hidden tool appears only in lists the gateway failed to filter.
  if body and (body:find("REACHED", 1, true) or body:find("delete_everything\"", 1, true) and class == "list") then
    leaks = leaks + 1
  end
end
function done(summary, latency, requests)
  local all, leaked = {}, 0
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("statuses")) do all[tostring(s)] = (all[tostring(s)] or 0) + n end
    leaked = leaked + t:get("leaks")
  end
  local parts = {}
  for s, n in pairs(all) do table.insert(parts, string.format('"%s":%d', s, n)) end
  io.write(string.format('{"class":"%s","requests":%d,"errors":%d,"leaks":%d,"statuses":{%s}}\n', class,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    leaked, table.concat(parts, ",")))
end
