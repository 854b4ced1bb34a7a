-- wrk script of the serving benchmark (bench/serve_bench.py): every request is the same POST of
-- one V2 JSON body. Settings come from the environment, as the benchmark starts wrk:
--   FM_BENCH_BODY      file holding the request body (required)
--   FM_BENCH_TOKEN     when set and not empty: sent as "Authorization: Bearer <token>"
-- The request is built once per thread (wrk.format after init), so the load generator spends
-- no time per request in Lua. (The half-peak latency is measured with fm_loadgen, not wrk:
-- wrk 4.1 has no fixed-rate mode.)

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
