#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer; start them where installed and stopped.
set -u
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "PostgreSQL is not answering; starting it."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! pg_up; then
  echo "PostgreSQL does not answer on $PGHOST:$PGPORT and is not installed here." >&2
  echo "Install it (apt-get install postgresql) or point DATABASE_URL at a server." >&2
  exit 1
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering; starting it."
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/labelapp.log
    for _ in $(seq 1 30); do redis_up && break; sleep 1; done
  fi
fi
if ! redis_up; then
  echo "Redis does not answer on $REDIS_HOST:$REDIS_PORT and is not installed here." >&2
  echo "Install it (apt-get install redis-server) or point CELERY_BROKER_URL at a server." >&2
  exit 1
fi
echo "PostgreSQL and Redis answer."
