-- wrk script for bench/load.py: POST the JSON body in $BENCH_BODY_FILE with its "__N__"
-- replaced by a counter, so every request body is different (one counter per wrk thread).
local path = os.getenv("BENCH_BODY_FILE")
if path == nil or path == "" then
  error("BENCH_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
local body = file:read("*a")
file:close()
local first, last = body:find("__N__", 1, true)
if first == nil then
  error("the body has no __N__ to replace")
end
local prefix, suffix = body:sub(1, first - 1), body:sub(last + 1)
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. suffix)
end
