-- wrk script for bench/gift_bench.py: POST one 1-coin gift per request, each with a fresh
-- Idempotency-Key, the senders' access tokens taken in turn.
-- Arguments (after --): path, body, key prefix, token…
-- done() prints one JSON line: {"statuses": {code: count}, "p50_us", "p99_us", "requests"}.

local path, body, prefix
local tokens = {}
local n = 0
statuses = {}

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  path, body, prefix = args[1], args[2], args[3]
  for i = 4, #args do
    tokens[#tokens + 1] = args[i]
  end
end

function request()
  n = n + 1
  local token = tokens[(n % #tokens) + 1]
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = prefix .. "-" .. n,
  }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for code, count in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local parts = {}
  for code, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%d": %d', code, count)
  end
  io.write(string.format('GIFTLOAD {"statuses": {%s}, "p50_us": %d, "p99_us": %d, "requests": %d}\n',
    table.concat(parts, ", "), latency:percentile(50), latency:percentile(99), summary.requests))
end
