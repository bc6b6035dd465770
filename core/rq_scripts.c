/* Lua sources of the queue's atomic transitions (see rq_scripts.h for each contract).
 * Time comes from the Redis server (TIME), so workers on hosts with skewed clocks agree on
 * when a delayed entry is due. Redis 7 replicates scripts by effects, so TIME is allowed. */
#include "rq_scripts.h"

#define LUA_NOW_MS                                                                             \
    "local t = redis.call('TIME')\n"                                                           \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

const char rq_lua_submit[] =
    LUA_NOW_MS
    "local prefix = ARGV[1]\n"
    "local out = {}\n"
    "for i = 2, #ARGV, 7 do\n"
    "  local q, id, d, mx = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]\n"
    "  local delay, uniq, ukey = tonumber(ARGV[i+4]), tonumber(ARGV[i+5]), ARGV[i+6]\n"
    "  local winner = id\n"
    "  if uniq > 0 then\n"
    "    local k = prefix .. ':unique:' .. ukey\n"
    "    local prev = redis.call('GET', k)\n"
    "    if prev then winner = prev else redis.call('SET', k, id, 'PX', uniq) end\n"
    "  end\n"
    "  if winner == id then\n"
    "    if delay > 0 then\n"
    "      redis.call('ZADD', prefix .. ':delayed', now + delay,\n"
    "                 q .. '\\n1\\n' .. mx .. '\\n' .. d)\n"
    "    else\n"
    "      redis.call('XADD', prefix .. ':q:' .. q, '*', 'd', d, 'n', '1', 'm', mx)\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = winner\n"
    "end\n"
    "return out\n";

const char rq_lua_promote[] =
    LUA_NOW_MS
    "local prefix = ARGV[1]\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])\n"
    "for _, m in ipairs(due) do\n"
    "  local q, n, mx, d = string.match(m, '^([^\\n]+)\\n([^\\n]+)\\n([^\\n]+)\\n(.*)$')\n"
    "  if q then\n"
    "    redis.call('XADD', prefix .. ':q:' .. q, '*', 'd', d, 'n', n, 'm', mx)\n"
    "  else\n"
    "    redis.call('XADD', KEYS[2], '*', 'queue', '', 'd', m, 'n', '0',\n"
    "               'error', 'malformed delayed entry', 'at', now)\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "end\n"
    "local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "local nd = -1\n"
    "if nxt[2] then nd = tonumber(nxt[2]) end\n"
    "return {#due, nd, now}\n";

/* Entries leave the stream in bulk: XDEL costs about 1-3 us per entry, while XTRIM MINID
 * drops every entry below an id for a fraction of that. Below the group's oldest pending
 * entry everything was delivered (XREADGROUP hands out entries in id order) and is no
 * longer pending, so it is done and can go; acknowledged entries above it are deleted one
 * by one. This assumes the stream has only our group, as every queue stream does. */
const char rq_lua_finish[] =
    LUA_NOW_MS
    "local group = ARGV[1]\n"
    /* A stream id as {ms, seq} numbers for ordering, then its ms text and the id. */
    "local function split(id)\n"
    "  local ms, seq = string.match(id, '^(%d+)-(%d+)$')\n"
    "  return {tonumber(ms), tonumber(seq), ms, id}\n"
    "end\n"
    "local function before(a, b)\n"
    "  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])\n"
    "end\n"
    "local out, acked = {}, {}\n"
    "local i = 2\n"
    "while i <= #ARGV do\n"
    "  local s, id, action, lkey, ltok = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4]\n"
    "  i = i + 5\n"
    "  if lkey ~= '' and redis.call('GET', lkey) == ltok then redis.call('DEL', lkey) end\n"
    "  local mine = redis.call('XACK', s, group, id) == 1\n"
    "  if mine then\n"
    "    local list = acked[s]\n"
    "    if not list then list = {}; acked[s] = list end\n"
    "    list[#list + 1] = id\n"
    "  end\n"
    "  if action == 'retry' or action == 'delay' then\n"
    "    if mine then redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i]), ARGV[i+1]) end\n"
    "    i = i + 2\n"
    "  elseif action == 'dead' then\n"
    "    if mine then\n"
    "      local q = string.match(s, ':q:(.*)$') or ''\n"
    "      redis.call('XADD', KEYS[2], '*', 'queue', q, 'd', ARGV[i], 'n', ARGV[i+1],\n"
    "                 'm', ARGV[i+2], 'error', ARGV[i+3], 'at', now)\n"
    "    end\n"
    "    i = i + 4\n"
    "  end\n"
    "  out[#out + 1] = mine and 1 or 0\n"
    "end\n"
    "for s, list in pairs(acked) do\n"
    "  local floor = redis.call('XPENDING', s, group)[2]\n"
    "  local fl = floor and split(floor)\n"
    "  local above, top = {}, split(list[1])\n"
    "  for _, id in ipairs(list) do\n"
    "    local v = split(id)\n"
    "    if fl and before(fl, v) then above[#above + 1] = id end\n"
    "    if before(top, v) then top = v end\n"
    "  end\n"
    "  if not floor then\n"
    /* Nothing pending: everything up to the newest entry acknowledged here is done. The
     * id just after it is the bound (a sequence too large for a Lua number keeps it). */
    "    if top[2] < 1e14 then floor = top[3] .. '-' .. string.format('%d', top[2] + 1)\n"
    "    else floor = top[4] end\n"
    "  end\n"
    "  redis.call('XTRIM', s, 'MINID', floor)\n"
    "  if #above > 0 then redis.call('XDEL', s, unpack(above)) end\n"
    "end\n"
    "return out\n";

const char rq_lua_reclaim[] =
    "local group, consumer = ARGV[1], ARGV[2]\n"
    "local r = redis.call('XAUTOCLAIM', KEYS[1], group, consumer, ARGV[3], ARGV[5],\n"
    "                     'COUNT', ARGV[4])\n"
    "local n = 0\n"
    "for _, e in ipairs(r[2]) do\n"
    "  if e[2] then\n"
    "    local f = {}\n"
    "    for j = 1, #e[2], 2 do f[e[2][j]] = e[2][j + 1] end\n"
    "    local att = (tonumber(f.n) or 1) + 1\n"
    "    redis.call('XADD', KEYS[1], '*', 'd', f.d or '', 'n', att, 'm', f.m or '1',\n"
    "               'r', 'worker lost during attempt ' .. (att - 1))\n"
    "    n = n + 1\n"
    "  end\n"
    "  redis.call('XACK', KEYS[1], group, e[1])\n"
    "  redis.call('XDEL', KEYS[1], e[1])\n"
    "end\n"
    "return {r[1], n}\n";

const char rq_lua_lock_acquire[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return redis.call('INCR', KEYS[2])\n"
    "end\n"
    "return 0\n";

const char rq_lua_lock_renew[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

const char rq_lua_lock_release[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

const char rq_lua_dlq_retry[] =
    "local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])\n"
    "if #e == 0 then return false end\n"
    "local f = {}\n"
    "for j = 1, #e[1][2], 2 do f[e[1][2][j]] = e[1][2][j + 1] end\n"
    "if not f.queue or f.queue == '' or not f.d then\n"
    "  return redis.error_reply('dead entry ' .. ARGV[2] .. ' has no queue or descriptor')\n"
    "end\n"
    /* Attempt numbers go on from the last one (rows are unique per job and attempt), with
     * a fresh budget of the descriptor's max_attempts. */
    "local n = tonumber(f.n) or 0\n"
    "local ok, desc = pcall(cjson.decode, f.d)\n"
    "local per = 1\n"
    "if ok and type(desc) == 'table' and tonumber(desc.max_attempts) then\n"
    "  per = tonumber(desc.max_attempts)\n"
    "end\n"
    "local id = redis.call('XADD', ARGV[1] .. ':q:' .. f.queue, '*', 'd', f.d, 'n', n + 1,\n"
    "                      'm', n + per, 'r', 'dlq retry of ' .. ARGV[2])\n"
    "redis.call('XDEL', KEYS[1], ARGV[2])\n"
    "return id\n";

const char rq_lua_fire[] =
    "local name, fire_ms = ARGV[1], tonumber(ARGV[2])\n"
    "local function raise(key)\n"
    "  local cur = tonumber(redis.call('HGET', key, name))\n"
    "  if not cur or cur < fire_ms then redis.call('HSET', key, name, ARGV[2]) end\n"
    "end\n"
    "local function mark()\n"
    "  if ARGV[11] == '1' then raise(KEYS[2]) end\n"
    "end\n"
    "if ARGV[3] == 'skip' then\n"
    "  mark()\n"
    "  return 3\n"
    "end\n"
    "if ARGV[4] ~= '' then\n"
    "  local p = redis.call('HGET', KEYS[3], name)\n"
    "  if not p then p = ARGV[4] end\n"
    "  if p == '1' then\n"
    "    mark()\n"
    "    return 2\n"
    "  end\n"
    "end\n"
    "if not redis.call('SET', KEYS[1], ARGV[5], 'NX', 'PX', ARGV[10]) then return 0 end\n"
    "local delay = tonumber(ARGV[9]) or 0\n"
    "if delay > 0 then\n"
    "  local t = redis.call('TIME')\n"
    "  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "  redis.call('ZADD', KEYS[5], now + delay,\n"
    "             ARGV[8] .. '\\n1\\n' .. ARGV[7] .. '\\n' .. ARGV[6])\n"
    "else\n"
    "  redis.call('XADD', KEYS[4], '*', 'd', ARGV[6], 'n', '1', 'm', ARGV[7])\n"
    "end\n"
    "raise(KEYS[6])\n"
    "mark()\n"
    "return 1\n";
