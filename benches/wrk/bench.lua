-- wrk script of the flowsnap benchmark (issue 6). One script for every scenario, chosen by
-- BENCH_MODE, so every scenario pays the same client-side cost as the /healthz baseline.
--
-- wrk is run with as many threads as connections (-t N -c N): wrk's Lua has no notion of a
-- connection, but a thread with one connection is one, so the per-thread counters read in done()
-- are per-connection counters, and per-connection targets are per-thread targets.
--
-- Environment:
--   BENCH_MODE     healthz | get_one | get_list | get_flow | patch | postdelete
--   BENCH_AUTH     value of the Authorization header ("Basic ...")
--   BENCH_TARGETS  prefix of the target files: connection i reads BENCH_TARGETS.i, the flow ids
--                  (one a line) that it alone uses; bench.py deals lines i, i+N, i+2N, ... of the
--                  whole list into it. (Each thread reading the whole list would delay the start
--                  of the last threads: wrk starts its clock only after creating every thread, so
--                  the first threads' early requests would inflate the rate.)
--   BENCH_BODIES   file of compact snapshot values, one a line (patch, postdelete)
--   BENCH_RESULT   where done() writes its JSON result

local mode = os.getenv("BENCH_MODE") or "healthz"
local auth = os.getenv("BENCH_AUTH")

if mode ~= "healthz" then
   wrk.headers["Authorization"] = auth
end
if mode == "patch" or mode == "postdelete" then
   wrk.headers["Content-Type"] = "application/json"
end

---------------------------------------------------------------------------------------------
-- main state: one entry per thread (= connection)

local threads = {}
local counter = 0

function setup(thread)
   thread:set("idx", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

---------------------------------------------------------------------------------------------
-- thread states

n_ok = 0        -- 2xx responses
n_fail = 0      -- any other status
first_fail = "" -- status and start of the body of the first failure
statuses = ""   -- "status:count,..." of the failures

local fail_by_status = {}
local flows = {}
local bodies = {}
local step = 0
local healthz_req
local want_delete = false -- postdelete: next request is the DELETE

local function lines(path)
   local out = {}
   if not path then return out end
   for line in io.lines(path) do
      if line ~= "" then table.insert(out, line) end
   end
   return out
end

function init(args)
   math.randomseed(idx * 7919 + os.time())
   healthz_req = wrk.format("GET", "/healthz")
   if mode ~= "healthz" then
      flows = lines(os.getenv("BENCH_TARGETS") .. "." .. idx)
      if #flows == 0 then
         error("connection " .. idx .. ": no target flow (fewer flow ids than connections?)")
      end
   end
   if mode == "patch" or mode == "postdelete" then
      bodies = lines(os.getenv("BENCH_BODIES"))
   end
   step = idx % 10
end

local function snapshot_doc(step_id)
   local v = bodies[math.random(#bodies)]
   return '{"data":{"type":"snapshot","id":"' .. step_id .. '","attributes":{"snapshot":' .. v .. '}}}'
end

function request()
   if mode == "healthz" then
      return healthz_req
   elseif mode == "get_one" then
      local f = flows[math.random(#flows)]
      return wrk.format("GET", "/v2/flows/" .. f .. "/snapshots/step_" .. math.random(10))
   elseif mode == "get_list" then
      return wrk.format("GET", "/v2/flows/" .. flows[math.random(#flows)] .. "/snapshots")
   elseif mode == "get_flow" then
      return wrk.format("GET", "/v2/flows/" .. flows[math.random(#flows)])
   elseif mode == "patch" then
      -- This connection's own flows only (disjoint from every other connection's), every step.
      step = step + 1
      local f = flows[(math.floor(step / 10) % #flows) + 1]
      local s = "step_" .. (step % 10 + 1)
      return wrk.format("PATCH", "/v2/flows/" .. f .. "/snapshots/" .. s, nil, snapshot_doc(s))
   elseif mode == "postdelete" then
      -- This connection's own scratch flow, step_10, which no other connection touches.
      local f = flows[1]
      if want_delete then
         return wrk.format("DELETE", "/v2/flows/" .. f .. "/snapshots/step_10")
      end
      return wrk.format("POST", "/v2/flows/" .. f .. "/snapshots", nil, snapshot_doc("step_10"))
   end
   error("unknown BENCH_MODE " .. mode)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      n_ok = n_ok + 1
   else
      n_fail = n_fail + 1
      fail_by_status[status] = (fail_by_status[status] or 0) + 1
      local parts = {}
      for s, c in pairs(fail_by_status) do table.insert(parts, s .. ":" .. c) end
      statuses = table.concat(parts, ",")
      if first_fail == "" then
         first_fail = status .. " " .. string.sub(body or "", 1, 300)
      end
   end
   if mode == "postdelete" then
      -- Decided by the answer, not by counting, so that one refusal does not derail the rest:
      -- after a POST comes the DELETE unless the POST surely created nothing; and vice versa.
      if want_delete then
         want_delete = not (status == 204 or status == 404)
      else
         want_delete = (status == 201 or status == 409)
      end
   end
end

---------------------------------------------------------------------------------------------
-- main state: the result, as JSON

local function jstr(s)
   s = tostring(s or "")
   s = s:gsub('[%c"\\]', function(c)
      if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
      return string.format("\\u%04x", string.byte(c))
   end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local ok, fail, firsts, stats = {}, {}, {}, {}
   for i, t in ipairs(threads) do
      ok[i] = tostring(t:get("n_ok") or 0)
      fail[i] = tostring(t:get("n_fail") or 0)
      local ff = t:get("first_fail") or ""
      if ff ~= "" then table.insert(firsts, jstr("conn " .. (i - 1) .. ": " .. ff)) end
      local st = t:get("statuses") or ""
      if st ~= "" then table.insert(stats, jstr(st)) end
   end
   local e = summary.errors
   local out = string.format(
      '{"mode":%s,"connections":%d,"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
      '"per_conn_ok":[%s],"per_conn_fail":[%s],"first_failures":[%s],"fail_statuses":[%s]}\n',
      jstr(mode), #threads, summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max,
      table.concat(ok, ","), table.concat(fail, ","), table.concat(firsts, ","), table.concat(stats, ","))
   local path = os.getenv("BENCH_RESULT")
   if path then
      local f = assert(io.open(path, "w"))
      f:write(out)
      f:close()
   else
      io.write(out)
   end
end
