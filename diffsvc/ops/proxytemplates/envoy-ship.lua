-- diffsvc: ship each exchange (request + primary's actual response) to the collector.
-- Bodies are streamed (bodyChunks), never buffered: the client gets every chunk at once.
-- Sent fire-and-forget (httpCall ..., true): the collector never delays the client.
local COLLECTOR = "{{CLUSTER}}"
local AUTHORITY = "{{AUTHORITY}}"
local PATH = "{{PATH}}"
local TOKEN = "{{TOKEN}}"
local SAMPLE_RATE = {{SAMPLE_RATE}}
local MAX_REQUEST_BODY = {{MAX_REQUEST_BODY}}
local MAX_RESPONSE_BODY = {{MAX_RESPONSE_BODY}}
local TIMEOUT_MS = {{TIMEOUT_MS}}
-- the router marks primary's answers (not its own 502/503/504) with this header
local UPSTREAM_MARK = "x-envoy-upstream-service-time"
local KEEP_MARK = {{KEEP_MARK}}
math.randomseed(os.time() + math.floor((os.clock() * 1e6) % 1e6))

-- no JSON library in Envoy's Lua: escape control characters, quotes, backslashes and
-- bytes >= 0x80 (read back as the bytes they are)
local function esc(s)
  return (s:gsub('[%c"\\\128-\255]', function(c) return string.format("\\u%04x", c:byte()) end))
end

local function header_list(headers)
  local out = {}
  for name, value in pairs(headers) do
    out[#out + 1] = '["' .. esc(name) .. '","' .. esc(value) .. '"]'
  end
  return "[" .. table.concat(out, ",") .. "]"
end

-- every chunk passes on as it arrives; up to `cap` bytes are kept
local function read_body(handle, cap)
  local parts, size, truncated = {}, 0, false
  for chunk in handle:bodyChunks() do
    local n = chunk:length()
    if not truncated then
      if size + n > cap then
        truncated, parts = true, {}
      elseif n > 0 then
        parts[#parts + 1] = chunk:getBytes(0, n)
        size = size + n
      end
    end
  end
  return table.concat(parts), truncated
end

function envoy_on_request(handle)
  if SAMPLE_RATE < 1 and math.random() >= SAMPLE_RATE then
    return
  end
  -- strings only: header objects cannot be used after a bodyChunks pause
  local headers = handle:headers()
  local head = '{"method":"' .. esc(headers:get(":method") or "") .. '","target":"'
    .. esc(headers:get(":path") or "") .. '","headers":' .. header_list(headers)
  local body, truncated = read_body(handle, MAX_REQUEST_BODY)
  local client = handle:streamInfo():downstreamRemoteAddress() or ""
  client = client:gsub(":%d+$", ""):gsub("^%[(.*)%]$", "%1")
  handle:streamInfo():dynamicMetadata():set("diffsvc", "request", head
    .. ',"body":"' .. handle:base64Escape(body) .. '"'
    .. (truncated and ',"body_truncated":true' or '')
    .. ',"client":"' .. esc(client) .. '","started":' .. handle:timestamp())
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local upstream = headers:get(UPSTREAM_MARK) ~= nil
  if upstream and not KEEP_MARK then
    headers:remove(UPSTREAM_MARK)
  end
  local shipped = handle:streamInfo():dynamicMetadata():get("diffsvc")
  -- Envoy's own replies (primary down, timeouts) are not primary's answers
  if shipped == nil or not upstream then
    return
  end
  local request = shipped["request"]
  local started = tonumber(request:match(',"started":(%d+)$'))
  request = request:gsub(',"started":%d+$', "")
  local head = ',"status":' .. (headers:get(":status") or "0") .. ',"response_headers":'
    .. header_list(headers) .. ',"elapsed_ms":' .. (handle:timestamp() - started)
  local body, truncated = read_body(handle, MAX_RESPONSE_BODY)
  local call_headers = {[":method"] = "POST", [":path"] = PATH, [":authority"] = AUTHORITY,
                        ["content-type"] = "application/json"}
  if TOKEN ~= "" then
    call_headers["authorization"] = "Bearer " .. TOKEN
  end
  handle:httpCall(COLLECTOR, call_headers, request .. head .. ',"response_body":"'
    .. handle:base64Escape(body) .. '"' .. (truncated and ',"response_truncated":true' or '')
    .. "}", TIMEOUT_MS, true)
end
