-- wrk script of scripts/load_testing: cycles through the requests listed in the file LOAD_REQUESTS
-- (one per line: METHOD<TAB>PATH<TAB>BODY), sends the headers in LOAD_HEADERS (one "Name: value"
-- per line), gives every POST its own Idempotency-Key when LOAD_IDEMPOTENCY_PREFIX is set, counts
-- the answers by status and prints one JSON line at the end for run.py.

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

local function split(text, sep)
  local parts, start = {}, 1
  while true do
    local i = string.find(text, sep, start, true)
    if not i then
      table.insert(parts, string.sub(text, start))
      return parts
    end
    table.insert(parts, string.sub(text, start, i - 1))
    start = i + #sep
  end
end

function init(args)
  statuses = {}
  sent = 0
  plan = {}
  for line in io.lines(os.getenv("LOAD_REQUESTS")) do
    if line ~= "" then
      local f = split(line, "\t")
      table.insert(plan, {method = f[1], path = f[2], body = f[3] or ""})
    end
  end
  base_headers = {}
  for line in string.gmatch(os.getenv("LOAD_HEADERS") or "", "[^\n]+") do
    local name, value = string.match(line, "^([^:]+):%s*(.*)$")
    if name then base_headers[name] = value end
  end
  prefix = os.getenv("LOAD_IDEMPOTENCY_PREFIX")
end

function request()
  sent = sent + 1
  -- each thread starts at its own place in the plan, so threads do not move in lockstep
  local r = plan[((sent + thread_id * 7) % #plan) + 1]
  local headers = {}
  for k, v in pairs(base_headers) do headers[k] = v end
  local body = nil
  if r.body ~= "" then
    headers["Content-Type"] = "application/json"
    body = r.body
  end
  if prefix and r.method == "POST" then
    headers["Idempotency-Key"] = prefix .. "-" .. thread_id .. "-" .. sent
  end
  return wrk.format(r.method, r.path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'LOAD_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
    .. '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
