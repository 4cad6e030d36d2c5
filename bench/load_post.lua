-- wrk script for bench/load.py: POST the JSON body stored in the file $BENCH_BODY_FILE.
-- No request()/response() callbacks, so wrk sends a static request at full speed.
local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
