-- wrk script: each request changes the price of a product no other request in
-- flight is changing, sending the version the last answer gave for it, so no
-- request is refused as stale. The products and their versions come from the
-- file PRODUCTS names ("id version" per line); each thread takes its share.
-- TOKEN in the environment adds a bearer token.
dofile("bench/http/common.lua")

function init(args)
  headers = json_headers()
  local count = tonumber(os.getenv("THREADS") or "1")
  ready = {}
  versions = {}
  local line_number = 0
  for line in io.lines(os.getenv("PRODUCTS")) do
    local id, version = line:match("^(%S+)%s+(%d+)$")
    if id and line_number % count == thread_id then
      versions[id] = tonumber(version)
      table.insert(ready, id)
    end
    line_number = line_number + 1
  end
end

function request()
  -- More products than connections, so one is always ready unless answers
  -- other than 200 took them out of turn; then reuse any (and count a 409).
  local id = table.remove(ready, 1) or next(versions)
  local version = versions[id]
  local body = string.format(
    '{"price":{"amount_minor":%d,"currency":"EUR"},"version":%d}', 1000 + version % 500, version)
  return wrk.format("PUT", "/api/products/" .. id .. "/price", headers, body)
end

function response(status, headers, body)
  local id = body:match('"id":"([%x-]+)"')
  local version = body:match('"version":(%d+)')
  if status == 200 and id and version then
    versions[id] = tonumber(version)
    table.insert(ready, id)
  end
end
