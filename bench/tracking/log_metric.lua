-- wrk script: POST runs/log-metric with a distinct step per request (so every request really inserts a row).
-- RUN_ID comes from the environment.
local run_id = os.getenv("RUN_ID")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(tid) or 0
end

function request()
  counter = counter + 1
  local step = thread_id * 100000000 + counter
  local body = string.format(
    '{"run_id":"%s","key":"loss","value":%f,"timestamp":1764000000000,"step":%d}',
    run_id, 1.0 / counter, step)
  return wrk.format("POST", "/api/2.0/mlflow/runs/log-metric", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
