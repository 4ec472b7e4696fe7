-- What both wrk scripts share: a number per thread (thread_id, from 0) and the
-- request headers, with a bearer token when TOKEN is set. Loaded by path from
-- the repository's root, where bench/http.sh runs wrk.
local threads = 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

function json_headers()
  local headers = { ["Content-Type"] = "application/json" }
  local token = os.getenv("TOKEN")
  if token and token ~= "" then
    headers["Authorization"] = "Bearer " .. token
  end
  return headers
end
