#!/bin/bash
# One coordinator and N workers on this machine, over TCP on loopback, signed with a fresh token.
set -euo pipefail

usage() {
    cat <<EOF
Usage: $(basename "$0") [OPTIONS] [SWEEP.yaml | SWEEP OPTIONS...]

Runs 'lopper coordinator' and N 'lopper worker' processes on this machine over
tcp://127.0.0.1:PORT. A bare *.yaml argument is taken as --config; everything
else this script does not know is passed to the coordinator (model, --calib,
--levels, --lease-seconds, …). Restarting on the same --db resumes the sweep.

Options:
  --workers N      worker processes (default 2)
  --jobs N         jobs each worker runs at once (default: cores / workers)
  --db FILE        the results store (default sweep.db)
  --port P         TCP port on 127.0.0.1 (default 7450)
  --lopper PATH    the lopper binary (default: \$LOPPER, lopper on PATH, or
                   .build/release/lopper of this repository)
  --logs DIR       where logs go (default: a new /tmp/lopper-local.XXXXXX)
  --tls            also use TLS: a self-signed certificate and tls+tcp://
  --wait S         seconds to wait for the coordinator to listen (default 300)
  -h, --help       this message

Example:
  $0 Config/sweeps/chain24.yaml --workers 2 --db chain24.db
EOF
}

die() { echo "local.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

workers=2
slots=""
db=sweep.db
port=7450
lopper=${LOPPER:-}
logs=""
tls=0
wait_seconds=300
sweep=()

need_value() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --workers) need_value "$@"; workers=$2; shift 2 ;;
        --jobs) need_value "$@"; slots=$2; shift 2 ;;
        --db) need_value "$@"; db=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --lopper) need_value "$@"; lopper=$2; shift 2 ;;
        --logs) need_value "$@"; logs=$2; shift 2 ;;
        --wait) need_value "$@"; wait_seconds=$2; shift 2 ;;
        --tls) tls=1; shift ;;
        --quiet|--*=*) sweep+=("$1"); shift ;;
        --*) need_value "$@"; sweep+=("$1" "$2"); shift 2 ;;
        *.yaml|*.yml) sweep+=(--config "$1"); shift ;;
        *) sweep+=("$1"); shift ;;
    esac
done

[[ "$workers" =~ ^[0-9]+$ ]] && [ "$workers" -ge 1 ] || die "--workers must be a positive number"
[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ "$wait_seconds" =~ ^[0-9]+$ ]] || die "--wait must be a whole number of seconds"
if [ -z "$slots" ]; then
    slots=$(( $(nproc 2>/dev/null || echo 1) / workers ))
    [ "$slots" -ge 1 ] || slots=1
fi
[ ${#sweep[@]} -gt 0 ] || die "no sweep given: pass a SWEEP.yaml or sweep options (see -h)"

if [ -z "$lopper" ]; then
    if command -v lopper >/dev/null; then lopper=$(command -v lopper)
    elif [ -x "$repo/.build/release/lopper" ]; then lopper=$repo/.build/release/lopper
    else die "no lopper binary: build it (swift build -c release) or pass --lopper PATH"
    fi
fi
[ -x "$lopper" ] || die "$lopper is not an executable"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port; pick another --port"
fi

if [ -z "$logs" ]; then logs=$(mktemp -d /tmp/lopper-local.XXXXXX); fi
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)

# The shared secret: readable by this user only, removed on exit.
token=$logs/token
( umask 077
  if command -v openssl >/dev/null; then openssl rand -hex 32
  else od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo
  fi ) > "$token"
chmod 600 "$token"
auth=(--token-file "$token")

address=tcp://127.0.0.1:$port
if [ "$tls" = 1 ]; then
    command -v openssl >/dev/null || die "--tls needs openssl"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$logs/tls.key" -out "$logs/tls.crt" 2>/dev/null
    chmod 600 "$logs/tls.key"
    address=tls+tcp://127.0.0.1:$port
fi
server_tls=()
client_tls=()
if [ "$tls" = 1 ]; then
    server_tls=(--tls-cert "$logs/tls.crt" --tls-key "$logs/tls.key")
    client_tls=(--tls-ca "$logs/tls.crt" --tls-server-name localhost)
fi

coordinator=""
worker_pids=()
cleanup() {
    local pid
    for pid in "${worker_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$coordinator" ]; then kill "$coordinator" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -f "$token"
}
trap cleanup EXIT
trap 'echo "local.sh: interrupted; stopping" >&2; exit 130' INT TERM

echo "logs: $logs (coordinator.log, worker-1.log …)"
echo "coordinator: $address, store $db, $workers workers × $slots jobs"

"$lopper" coordinator "${sweep[@]}" --db "$db" --listen "$address" "${auth[@]}" "${server_tls[@]}" \
    > "$logs/coordinator.log" 2>&1 &
coordinator=$!

status() { "$lopper" status --connect "$address" "${auth[@]}" "${client_tls[@]}" --timeout 2 "$@"; }

# Ready once it answers a status request; a coordinator that exits first either found the
# sweep already complete (0) or failed.
deadline=$((SECONDS + wait_seconds))
until status >/dev/null 2>&1; do
    if ! kill -0 "$coordinator" 2>/dev/null; then
        rc=0
        wait "$coordinator" || rc=$?
        coordinator=""
        if [ "$rc" -eq 0 ]; then
            tail -n 3 "$logs/coordinator.log"
            echo "the coordinator finished before any worker started: the sweep in $db is complete"
            echo "results: $lopper results --db $db"
            exit 0
        fi
        tail -n 20 "$logs/coordinator.log" >&2
        die "the coordinator exited with status $rc (log: $logs/coordinator.log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "the coordinator did not answer within $wait_seconds s (log: $logs/coordinator.log)"
    sleep 0.5
done
echo "coordinator is up (pid $coordinator); starting workers"

for ((i = 1; i <= workers; i++)); do
    "$lopper" worker --connect "$address" "${auth[@]}" "${client_tls[@]}" --jobs "$slots" \
        --cache-dir "$logs/cache" --id "local-$i" > "$logs/worker-$i.log" 2>&1 &
    worker_pids+=($!)
done

# Wait for the coordinator; give up if every worker died before the sweep ended.
last_report=$SECONDS
while kill -0 "$coordinator" 2>/dev/null; do
    alive=0
    for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    if [ "$alive" -eq 0 ] && kill -0 "$coordinator" 2>/dev/null; then
        sleep 2  # the coordinator may be finishing right now
        if kill -0 "$coordinator" 2>/dev/null; then
            for ((i = 1; i <= workers; i++)); do echo "--- worker-$i.log"; tail -n 5 "$logs/worker-$i.log"; done >&2
            die "every worker exited but the sweep is not complete"
        fi
    fi
    if [ $((SECONDS - last_report)) -ge 30 ]; then
        status 2>/dev/null | grep -E '^jobs' || true
        last_report=$SECONDS
    fi
    sleep 1
done
rc=0
wait "$coordinator" || rc=$?
coordinator=""
tail -n 1 "$logs/coordinator.log"
[ "$rc" -eq 0 ] || die "the coordinator exited with status $rc (log: $logs/coordinator.log)"

# Workers leave once told the sweep is complete; stragglers are stopped by the trap.
for ((t = 0; t < 30; t++)); do
    alive=0
    for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" -eq 0 ] && break
    sleep 1
done
echo "sweep complete; logs in $logs"
echo "results: $lopper results --db $db"
