-- wrk script: each request takes a random line of $BENCH_PATHS ("METHOD path" or "path"), sends
-- $BENCH_HEADER (e.g. "X-API-Key: mm_…" or "Cookie: mm_sesion=…"), and for a POST the body
-- $BENCH_BODY with a fresh Idempotency-Key. done() prints one "BENCH …" line that bench/run.py reads:
-- requests, 2xx, other, P50/P95/P99 in ms, seconds, socket errors and timeouts (no answer in wrk's --timeout).
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  ok, other, sent = 0, 0, 0
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    local method, path = line:match("^(%u+) (.+)$")
    table.insert(paths, {method or "GET", path or line})
  end
  headers = {}
  local name, value = (os.getenv("BENCH_HEADER") or ""):match("^([^:]+):%s*(.+)$")
  if name then headers[name] = value end
  body = os.getenv("BENCH_BODY")
  math.randomseed(os.time() * 1000 + id)
  stamp = tostring(os.time())
end

function request()
  local pick = paths[math.random(#paths)]
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  if pick[1] == "POST" then
    sent = sent + 1
    h["Content-Type"] = "application/json"
    h["Idempotency-Key"] = string.format("bench-%s-%d-%d", stamp, id, sent)
    return wrk.format("POST", pick[2], h, body)
  end
  return wrk.format("GET", pick[2], h)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    bad = bad + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("BENCH %d %d %d %.3f %.3f %.3f %.6f %d\n", summary.requests, good, bad,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.duration / 1e6, e.connect + e.read + e.write + e.timeout))
end
