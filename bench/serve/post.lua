-- wrk script of the serving benchmark (bench/serve_bench.py): every request is the same POST of
-- one V2 JSON body. Settings come from the environment because wrk decides whether a script has a
-- delay() hook when it loads the file, before init() sees any arguments:
--   FM_BENCH_BODY      file holding the request body (required)
--   FM_BENCH_TOKEN     when set and not empty: sent as "Authorization: Bearer <token>"
--   FM_BENCH_DELAY_MS  when set and above 0: each connection waits this many milliseconds
--                      between a response and its next request, which caps the rate at about
--                      connections / (delay + latency); wrk 4.1 has no fixed-rate mode.
-- The request is built once per thread (wrk.format after init), so the load generator spends
-- no time per request in Lua unless the delay hook is on.

local body_path = os.getenv("FM_BENCH_BODY")
if not body_path or body_path == "" then
    error("post.lua: set FM_BENCH_BODY to the request body file")
end
local file = assert(io.open(body_path, "rb"))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("FM_BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

local delay_ms = tonumber(os.getenv("FM_BENCH_DELAY_MS") or "0") or 0
if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end
