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

const char rq_lua_finish[] =
    LUA_NOW_MS
    "local group, consumer = ARGV[1], ARGV[2]\n"
    "local out = {}\n"
    "for i = 3, #ARGV, 10 do\n"
    "  local s, id, action, delay = ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3])\n"
    "  local body, n, mx, err = ARGV[i+4], ARGV[i+5], ARGV[i+6], ARGV[i+7]\n"
    "  local lkey, ltok = ARGV[i+8], ARGV[i+9]\n"
    "  if lkey ~= '' and redis.call('GET', lkey) == ltok then redis.call('DEL', lkey) end\n"
    "  local p = redis.call('XPENDING', s, group, id, id, 1, consumer)\n"
    "  if #p == 1 then\n"
    "    redis.call('XACK', s, group, id)\n"
    "    redis.call('XDEL', s, id)\n"
    "    if action == 'retry' or action == 'delay' then\n"
    "      redis.call('ZADD', KEYS[1], now + delay, body)\n"
    "    elseif action == 'dead' then\n"
    "      local q = string.match(s, ':q:(.*)$') or ''\n"
    "      redis.call('XADD', KEYS[2], '*', 'queue', q, 'd', body, 'n', n, 'm', mx,\n"
    "                 'error', err, 'at', now)\n"
    "    end\n"
    "    out[#out + 1] = 1\n"
    "  else\n"
    "    out[#out + 1] = 0\n"
    "  end\n"
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
