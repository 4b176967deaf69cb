-- diffsvc: ship each exchange (request + primary's actual response) to the collector.
-- body_filter collects the response into ngx.ctx as it passes; log_by_lua hands the
-- document to a timer (sockets are not allowed in the log phase), which speaks HTTP/1.1
-- to the collector over a keep-alive cosocket. Nothing here delays the client.
diffsvc = {}
local HOST, PORT = "{{COLLECTOR_HOST}}", {{COLLECTOR_PORT}}
local AUTHORITY = "{{AUTHORITY}}"
local PATH = "{{PATH}}"
local TOKEN = "{{TOKEN}}"
local SAMPLE_RATE = {{SAMPLE_RATE}}
local MAX_REQUEST_BODY = {{MAX_REQUEST_BODY}}
local MAX_RESPONSE_BODY = {{MAX_RESPONSE_BODY}}
local TIMEOUT_MS = {{TIMEOUT_MS}}
local head = "POST " .. PATH .. " HTTP/1.1\r\nHost: " .. AUTHORITY
  .. "\r\nContent-Type: application/json\r\n"
  .. (TOKEN ~= "" and ("Authorization: Bearer " .. TOKEN .. "\r\n") or "")

-- no JSON library in Debian's nginx lua: escape control characters, quotes, backslashes and
-- bytes >= 0x80 (read back as the bytes they are)
local function esc(s)
  return (tostring(s):gsub('[%c"\\\128-\255]',
                           function(c) return string.format("\\u%04x", c:byte()) end))
end

local function header_list(headers)
  local out = {}
  for name, value in pairs(headers) do
    if type(value) ~= "table" then value = {value} end
    for _, v in ipairs(value) do
      out[#out + 1] = '["' .. esc(name) .. '","' .. esc(v) .. '"]'
    end
  end
  return "[" .. table.concat(out, ",") .. "]"
end

local function last(list)  -- "-, 0.004" (a retry) -> "0.004"
  return list and list:match("([^,%s]+)%s*$")
end

function diffsvc.body_filter()
  local ctx = ngx.ctx
  if ctx.diffsvc_ship == nil then
    ctx.diffsvc_ship = SAMPLE_RATE >= 1 or math.random() < SAMPLE_RATE
    ctx.diffsvc_parts, ctx.diffsvc_size = {}, 0
  end
  local chunk = ngx.arg[1]
  if ngx.arg[2] then
    ctx.diffsvc_complete = true  -- the whole response went out
  end
  if not ctx.diffsvc_ship or ctx.diffsvc_truncated or chunk == "" then
    return
  end
  ctx.diffsvc_size = ctx.diffsvc_size + #chunk
  if ctx.diffsvc_size > MAX_RESPONSE_BODY then
    ctx.diffsvc_truncated, ctx.diffsvc_parts = true, nil
  else
    ctx.diffsvc_parts[#ctx.diffsvc_parts + 1] = chunk
  end
end

local function send(premature, doc)
  if premature then
    return
  end
  local sock = ngx.socket.tcp()
  sock:settimeout(TIMEOUT_MS)
  if not sock:connect(HOST, PORT) then
    return
  end
  if not sock:send({head, "Content-Length: ", #doc, "\r\n\r\n", doc}) then
    return sock:close()
  end
  local status = sock:receive("*l")
  local length = 0
  while status do  -- the response's headers, up to the empty line
    local line = sock:receive("*l")
    if not line then status = nil break end
    if line == "" then break end
    local n = line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  if status and (length == 0 or sock:receive(length)) then
    sock:setkeepalive(60000, 64)
  else
    sock:close()
  end
end

function diffsvc.log()
  local ctx = ngx.ctx
  -- only primary's own answers (nginx's 502/504 when primary is down have no header time),
  -- and only whole ones (not when the client went away mid-response)
  if not ctx.diffsvc_ship or not ctx.diffsvc_complete
      or not tonumber(last(ngx.var.upstream_header_time)) then
    return
  end
  local body = ngx.req.get_body_data()
  local request_truncated = body == nil and ngx.req.get_body_file() ~= nil
  if body and #body > MAX_REQUEST_BODY then
    body, request_truncated = nil, true
  end
  local client = ngx.var.remote_addr or ""
  local doc = '{"method":"' .. esc(ngx.req.get_method()) .. '","target":"'
    .. esc(ngx.var.request_uri) .. '","headers":' .. header_list(ngx.req.get_headers(0, true))
    .. ',"body":"' .. ngx.encode_base64(body or "") .. '"'
    .. (request_truncated and ',"body_truncated":true' or "")
    .. ',"client":"' .. esc(client) .. '","status":' .. ngx.status
    .. ',"response_headers":' .. header_list(ngx.resp.get_headers(0, true))
    .. ',"elapsed_ms":' .. (tonumber(last(ngx.var.upstream_response_time)) or 0) * 1000
    .. ',"response_body":"'
    .. ngx.encode_base64(ctx.diffsvc_truncated and "" or table.concat(ctx.diffsvc_parts or {}))
    .. '"' .. (ctx.diffsvc_truncated and ',"response_truncated":true' or "") .. "}"
  ngx.timer.at(0, send, doc)  -- beyond lua_max_pending_timers: not shipped
end
