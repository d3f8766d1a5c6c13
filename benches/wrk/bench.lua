-- wrk script of the flowsnap benchmark (issue 6). One script for every scenario, chosen by
-- BENCH_MODE, so every scenario pays the same client-side cost as the /healthz baseline.
--
-- wrk is run with as many threads as connections (-t N -c N): wrk's Lua has no notion of a
-- connection, but a thread with one connection is one, so the per-thread counters read in done()
-- are per-connection counters, and per-connection targets are per-thread targets.
--
-- Environment:
--   BENCH_MODE     healthz | get_one | get_list | get_flow | patch | versions | audit | postdelete
--   BENCH_AUTH     value of the Authorization header ("Basic ...")
--   BENCH_TARGETS  prefix of the target files: connection i reads BENCH_TARGETS.i, the flow ids
--                  (one a line; workspace ids in the audit mode) that it alone uses; bench.py deals lines i, i+N, i+2N, ... of the
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

-- Requests are assembled from parts built once in init(), not with wrk.format() per request:
-- wrk.format() walks the header table and formats every header on every call, a client-side cost
-- that grew with the scenario (a PATCH also built its document) and was charged to the server's
-- ratio, since wrk shares the machine's cores with it. /healthz was always one prebuilt string.
local head_tail     -- " HTTP/1.1\r\n" .. every header line (Host, Authorization, ...)
local get_one_tails = {} -- [k]: "/snapshots/step_k HTTP/1.1\r\n...\r\n"
local versions_tails = {} -- [k]: "/snapshots/step_k/versions?page[size]=10 HTTP/1.1\r\n...\r\n"
local audit_tail          -- "/audit?page[size]=50 HTTP/1.1\r\n...\r\n"
local write_tails = {}   -- [step][i]: step's path end, headers, Content-Length, blank line, body i
local delete_req         -- postdelete: the DELETE of this connection's scratch step
local step_ids = {}

local function header_block(body_len)
   local parts = {}
   local names = {}
   for name in pairs(wrk.headers) do table.insert(names, name) end
   table.sort(names)
   for _, name in ipairs(names) do
      table.insert(parts, name .. ": " .. wrk.headers[name] .. "\r\n")
   end
   if body_len then table.insert(parts, "Content-Length: " .. body_len .. "\r\n") end
   return table.concat(parts) .. "\r\n"
end

function init(args)
   math.randomseed(idx * 7919 + os.time())
   if not wrk.headers["Host"] then wrk.headers["Host"] = wrk.host .. ":" .. wrk.port end
   healthz_req = "GET /healthz HTTP/1.1\r\n" .. header_block(nil)
   head_tail = " HTTP/1.1\r\n" .. header_block(nil)
   for k = 1, 10 do
      step_ids[k] = "step_" .. k
      get_one_tails[k] = "/snapshots/step_" .. k .. head_tail
      versions_tails[k] = "/snapshots/step_" .. k .. "/versions?page[size]=10" .. head_tail
   end
   audit_tail = "/audit?page[size]=50" .. head_tail
   if mode ~= "healthz" then
      flows = lines(os.getenv("BENCH_TARGETS") .. "." .. idx)
      if #flows == 0 then
         error("connection " .. idx .. ": no target (fewer target ids than connections?)")
      end
   end
   if mode == "patch" or mode == "postdelete" then
      bodies = lines(os.getenv("BENCH_BODIES"))
      local steps = (mode == "patch") and {1, 2, 3, 4, 5, 6, 7, 8, 9, 10} or {10}
      for _, k in ipairs(steps) do
         local s = step_ids[k]
         local path_end = (mode == "patch") and ("/snapshots/" .. s) or "/snapshots"
         write_tails[k] = {}
         for i, v in ipairs(bodies) do
            local doc = '{"data":{"type":"snapshot","id":"' .. s .. '","attributes":{"snapshot":' .. v .. '}}}'
            write_tails[k][i] = path_end .. " HTTP/1.1\r\n" .. header_block(#doc) .. doc
         end
      end
      if mode == "postdelete" then
         delete_req = "DELETE /v2/flows/" .. flows[1] .. "/snapshots/step_10" .. head_tail
      end
   end
   step = idx % 10
end

function request()
   n_sent = n_sent + 1
   if mode == "healthz" then
      return healthz_req
   elseif mode == "get_one" then
      return "GET /v2/flows/" .. flows[math.random(#flows)] .. get_one_tails[math.random(10)]
   elseif mode == "get_list" then
      return "GET /v2/flows/" .. flows[math.random(#flows)] .. "/snapshots" .. head_tail
   elseif mode == "get_flow" then
      return "GET /v2/flows/" .. flows[math.random(#flows)] .. head_tail
   elseif mode == "versions" then
      -- A page of 10 versions of a random step (bench.py makes sure every step has 10).
      return "GET /v2/flows/" .. flows[math.random(#flows)] .. versions_tails[math.random(10)]
   elseif mode == "audit" then
      -- A page of 50 events of one of this connection's workspaces (here `flows` holds workspace ids).
      return "GET /v2/workspaces/" .. flows[math.random(#flows)] .. audit_tail
   elseif mode == "patch" then
      -- This connection's own flows only (disjoint from every other connection's), every step.
      step = step + 1
      local f = flows[(math.floor(step / 10) % #flows) + 1]
      local tails = write_tails[step % 10 + 1]
      return "PATCH /v2/flows/" .. f .. tails[math.random(#tails)]
   elseif mode == "postdelete" then
      -- This connection's own scratch flow, step_10, which no other connection touches.
      if want_delete then
         return delete_req
      end
      local tails = write_tails[10]
      return "POST /v2/flows/" .. flows[1] .. tails[math.random(#tails)]
   end
   error("unknown BENCH_MODE " .. mode)
end

-- Only postdelete needs each answer (to choose its next request), or BENCH_RESPONSES=1 (to see
-- the first failure's body). Otherwise the script defines no response(): wrk then hands no headers
-- table or body string to Lua, a per-answer client cost that grows with the body and would be
-- charged to the server. wrk still counts non-2xx/3xx answers (summary.errors.status), and each
-- connection's answers are its requests sent, less the one that may be in flight at the end.
local want_responses = mode == "postdelete" or os.getenv("BENCH_RESPONSES") == "1"
n_sent = 0

local function on_response(status, headers, body)
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
if want_responses then
   response = on_response
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
      if want_responses then
         ok[i] = tostring(t:get("n_ok") or 0)
         fail[i] = tostring(t:get("n_fail") or 0)
      else
         -- Answered: every request sent but the last, which may still be in flight. Failures
         -- are counted by wrk (errors.status) for the whole run.
         ok[i] = tostring(math.max((t:get("n_sent") or 0) - 1, 0))
         fail[i] = "0"
      end
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
