-- wrk script of the CNR benchmark (bench/cnr.mjs). GET loads: no per-response hook (wrk stays
-- as fast as it can be); the summary is printed as one JSON line for the bench to read.
-- Push load (CNR_BENCH_BLOBS set): every request POSTs a distinct release (1.0.N) of this
-- connection's package (CNR_BENCH_PUSH_PATH .. "-c" .. thread id, one connection per thread),
-- its blob taken from the file of base64 blobs (one a line), and answers are counted by status.
local blobs_file = os.getenv("CNR_BENCH_BLOBS")
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

if blobs_file then
  function init(args)
    blobs = {}
    for line in io.lines(blobs_file) do blobs[#blobs + 1] = line end
    path = os.getenv("CNR_BENCH_PUSH_PATH") .. "-c" .. id
    n = 0
    ok = 0
    others = {}
    headers = { ["Content-Type"] = "application/json" }
  end

  function request()
    n = n + 1
    local blob = blobs[((id - 1) * 128 + n) % #blobs + 1]
    local body = '{"release":"1.0.' .. n .. '","media_type":"kpm","blob":"' .. blob .. '"}'
    return wrk.format("POST", path, headers, body)
  end

  function response(status, headers, body)
    if status == 200 then ok = ok + 1 else others[status] = (others[status] or 0) + 1 end
  end
end

function done(summary, latency, requests)
  local ok_total, other_text = 0, {}
  if blobs_file then
    local merged = {}
    for _, t in ipairs(threads) do
      ok_total = ok_total + t:get("ok")
      for status, count in pairs(t:get("others")) do merged[status] = (merged[status] or 0) + count end
    end
    for status, count in pairs(merged) do other_text[#other_text + 1] = count .. " x HTTP " .. status end
  end
  local e = summary.errors
  io.write(string.format(
    'CNRBENCH {"push":%s,"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"ok":%d,"other":"%s"}\n',
    blobs_file and "true" or "false", summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), ok_total, table.concat(other_text, ", ")))
end
