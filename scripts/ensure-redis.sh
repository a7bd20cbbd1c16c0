#!/usr/bin/env bash
# Makes REDIS_URL point at a Redis that answers. Uses REDIS_URL (default 127.0.0.1:6379)
# when it answers PING; otherwise starts a private redis-server (no persistence) on a free
# port and stops it when the calling shell exits. Source this file: it exports REDIS_URL.
: "${REDIS_URL:=redis://127.0.0.1:6379}"
if node scripts/redis-ping.ts "$REDIS_URL" 2>/dev/null; then
  export REDIS_URL
elif command -v redis-server >/dev/null; then
  _port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  _dir=$(mktemp -d)
  redis-server --port "$_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$_dir" --daemonize yes --pidfile "$_dir/redis.pid" >/dev/null
  for _ in $(seq 50); do node scripts/redis-ping.ts "redis://127.0.0.1:$_port" 2>/dev/null && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$_port"
  echo "ensure-redis: nothing answered at the default address; started a private redis-server at $REDIS_URL" >&2
  # Stopped when the calling shell exits, also on Ctrl-C or SIGTERM (which then exit through EXIT).
  # The shell must not `exec` away after sourcing this, or the trap never runs.
  _REDIS_DIR="$_dir"
  _stop_private_redis() {
    local pid
    pid=$(cat "$_REDIS_DIR/redis.pid" 2>/dev/null) && kill "$pid" 2>/dev/null &&
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$_REDIS_DIR"
  }
  trap _stop_private_redis EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
else
  cat >&2 <<MSG
ensure-redis: no Redis answers at $REDIS_URL and redis-server is not installed.
  Debian/Ubuntu:  sudo apt-get install redis-server   (then run this command again)
  or point REDIS_URL at a Redis >= 6.2 you have:  REDIS_URL=redis://host:6379 ./dev test
MSG
  return 1 2>/dev/null || exit 1
fi
