#!/usr/bin/env bash
# The seed walkthrough on a local stack, end to end:
#   installs what is missing, builds, starts PostgreSQL 15 + wal2json and a
#   nats-server with JetStream on loopback (scripts/stack.sh), starts
#   topicbridge with examples/topicbridge.yaml, writes a Patient the way
#   Aidbox does and prints the notification that arrived on NATS subject foo.
#
#   scripts/demo.sh          run it (again: it reuses what is running)
#   scripts/demo.sh stop     stop topicbridge and the stack
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
STATE=$ROOT/.stack
PIDFILE=$STATE/topicbridge.pid

log() { echo "demo: $*" >&2; }

stop_bridge() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null && grep -q topicbridge "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      log "topicbridge (pid $pid) stopped"
    fi
    rm -f "$PIDFILE"
  fi
}

if [ "${1:-}" = "stop" ]; then
  stop_bridge
  scripts/stack.sh stop
  exit 0
fi

scripts/install-deps.sh
[ -f "$BUILD_DIR/build.ninja" ] || meson setup "$BUILD_DIR" --buildtype=debugoptimized >/dev/null
log "building (meson compile -j2)"
meson compile -C "$BUILD_DIR" -j2 topicbridge >/dev/null
scripts/stack.sh start
eval "$(scripts/stack.sh env)"

stop_bridge
# The documented default port when it is free, else any free one.
HTTP_PORT=$(python3 -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as topicbridge binds: TIME_WAIT is fine
try:
    s.bind(("127.0.0.1", 8765))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
export TB_HTTP_LISTEN=127.0.0.1:$HTTP_PORT
mkdir -p "$STATE"
"$BUILD_DIR/src/app/topicbridge" check -c examples/topicbridge.yaml
nohup "$BUILD_DIR/src/app/topicbridge" run -c examples/topicbridge.yaml \
  >"$STATE/topicbridge.log" 2>&1 &
echo $! >"$PIDFILE"
log "topicbridge started (pid $!, log .stack/topicbridge.log, http $TB_HTTP_LISTEN)"

# Subscribe to foo, wait for readiness, write a Patient, print what arrives.
PYTHONDONTWRITEBYTECODE=1 python3 - "$TB_NATS_URL" "$HTTP_PORT" "$PIDFILE" <<'PY'
import json, os, subprocess, sys, time, urllib.request
sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from harness import NatsClient
nats_url, http_port, pidfile = sys.argv[1], sys.argv[2], sys.argv[3]
client = NatsClient(nats_url)
sid = client.subscribe("foo")
client.flush()
deadline = time.time() + 60
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("demo: topicbridge did not become ready in 60 s; see .stack/topicbridge.log")
    time.sleep(0.2)
patient = {"name": [{"family": "Smith", "given": ["Jane"]}], "gender": "female",
           "birthDate": "1990-04-12"}
rid = f"demo-{int(time.time())}"
subprocess.run(["scripts/stack.sh", "psql", "-qAt", "-c",
                f"SELECT aidbox_create('Patient', '{rid}', '{json.dumps(patient)}')"],
               check=True, stdout=subprocess.DEVNULL)
print(f"demo: wrote Patient/{rid}; waiting for the notification on subject foo", file=sys.stderr)
msg = client.next_message(timeout=30, sid=sid)
print(f"subject: {msg.subject}")
for k, v in msg.headers.items():
    print(f"header: {k}: {v}")
print(json.dumps(json.loads(msg.body), indent=2))
client.close()
PY
log "done. topicbridge keeps running. Its status:"
log "  TB_HTTP_LISTEN=$TB_HTTP_LISTEN $BUILD_DIR/src/app/topicbridge status -c examples/topicbridge.yaml"
log "  curl 'http://$TB_HTTP_LISTEN/fhir/AidboxTopicDestination/basic/\$status'   (and /metrics)"
log "stop everything with: scripts/demo.sh stop"
