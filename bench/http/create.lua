-- wrk script: each request creates a new product (a SKU and an idempotency key
-- no other request uses). TOKEN in the environment adds a bearer token.
dofile("bench/http/common.lua")
local counter = 0

function init(args)
  run = args[1] or "run"
  headers = json_headers()
end

function request()
  counter = counter + 1
  local sku = string.format("B%s-%d-%d", string.upper(run), thread_id, counter)
  headers["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, thread_id, counter)
  local body = string.format(
    '{"name":"Bench product %d","sku":"%s","price":{"amount_minor":%d,"currency":"EUR"},"stock":100}',
    counter, sku, 1000 + counter % 500)
  return wrk.format("POST", "/api/products", headers, body)
end
