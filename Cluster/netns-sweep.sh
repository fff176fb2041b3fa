#!/bin/bash
# A real sweep across simulated hosts (Cluster/netns.sh): coordinator in h0, one worker in each
# of h1 … hN, all talking TCP over the namespaces' bridge with a shared token. Needs root.
set -euo pipefail

usage() {
    cat <<EOF
Usage: $(basename "$0") [OPTIONS] [SWEEP.yaml | SWEEP OPTIONS...]

Creates N+1 network namespaces with netns.sh, runs 'lopper coordinator' in h0
(tcp://10.77.0.10:PORT) and 'lopper worker' in h1 … hN, waits for the sweep to
finish and prints 'lopper results'. A bare *.yaml argument is taken as --config;
other unknown options go to the coordinator (e.g. --lease-seconds 10).

Options:
  --lopper PATH          the lopper binary (default: \$LOPPER, lopper on PATH, or
                         .build/release/lopper of this repository)
  --workers N            worker hosts (default 2, so 3 hosts in all)
  --jobs N               jobs each worker runs at once (default 1)
  --db FILE              the results store (default netns-sweep.db)
  --port P               coordinator port (default 7450)
  --netem DELAY,LOSS     on every worker host: DELAY ms and LOSS % on outgoing packets
  --partition H,AT,FOR   cut worker host H off AT s after the workers start, for FOR s
  --logs DIR             where logs go (default: a new /tmp/lopper-netns.XXXXXX)
  --keep                 leave the namespaces up afterwards (remove: netns.sh down)
  --wait S               seconds to wait for the coordinator to listen (default 300)
  -h, --help             this message

Example:
  sudo $0 --lopper .build/release/lopper --workers 2 --netem 20,1 Config/sweeps/chain24.yaml
EOF
}

die() { echo "netns-sweep.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
netns=$here/netns.sh

lopper=${LOPPER:-}
workers=2
slots=1
db=netns-sweep.db
port=7450
netem=""
partition=""
logs=""
keep=0
wait_seconds=300
sweep=()

need_value() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --lopper) need_value "$@"; lopper=$2; shift 2 ;;
        --workers) need_value "$@"; workers=$2; shift 2 ;;
        --jobs) need_value "$@"; slots=$2; shift 2 ;;
        --db) need_value "$@"; db=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --netem) need_value "$@"; netem=$2; shift 2 ;;
        --partition) need_value "$@"; partition=$2; shift 2 ;;
        --logs) need_value "$@"; logs=$2; shift 2 ;;
        --wait) need_value "$@"; wait_seconds=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --quiet|--*=*) sweep+=("$1"); shift ;;
        --*) need_value "$@"; sweep+=("$1" "$2"); shift 2 ;;
        *.yaml|*.yml) sweep+=(--config "$1"); shift ;;
        *) sweep+=("$1"); shift ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces); try sudo"
[[ "$workers" =~ ^[0-9]+$ ]] && [ "$workers" -ge 1 ] || die "--workers must be a positive number"
[[ "$slots" =~ ^[0-9]+$ ]] && [ "$slots" -ge 1 ] || die "--jobs must be a positive number"
[[ "$wait_seconds" =~ ^[0-9]+$ ]] || die "--wait must be a whole number of seconds"
[ ${#sweep[@]} -gt 0 ] || die "no sweep given: pass a SWEEP.yaml or sweep options (see -h)"
if [ -n "$netem" ]; then
    [[ "$netem" =~ ^[0-9.]+,[0-9.]+$ ]] || die "--netem wants DELAY_MS,LOSS_PCT, e.g. 20,1"
fi
if [ -n "$partition" ]; then
    [[ "$partition" =~ ^[0-9]+,[0-9]+,[0-9]+$ ]] || die "--partition wants HOST,AT,FOR, e.g. 1,10,40"
    IFS=, read -r cut_host cut_at cut_for <<< "$partition"
    [ "$cut_host" -ge 1 ] && [ "$cut_host" -le "$workers" ] || die "--partition: HOST must be a worker host, 1 … $workers"
fi

if [ -z "$lopper" ]; then
    if command -v lopper >/dev/null; then lopper=$(command -v lopper)
    elif [ -x "$repo/.build/release/lopper" ]; then lopper=$repo/.build/release/lopper
    else die "no lopper binary: build it (swift build -c release) or pass --lopper PATH"
    fi
fi
[ -x "$lopper" ] || die "$lopper is not an executable"
lopper=$(cd "$(dirname "$lopper")" && pwd)/$(basename "$lopper")

if [ -z "$logs" ]; then logs=$(mktemp -d /tmp/lopper-netns.XXXXXX); fi
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)

token=$logs/token
( umask 077
  if command -v openssl >/dev/null; then openssl rand -hex 32
  else od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; echo
  fi ) > "$token"
chmod 600 "$token"

coordinator=""
worker_pids=()
chaos=""
cleanup() {
    local pid
    if [ -n "$chaos" ]; then kill "$chaos" 2>/dev/null || true; fi
    for pid in "${worker_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$coordinator" ]; then kill "$coordinator" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -f "$token"
    if [ "$keep" = 1 ]; then
        echo "namespaces left up; remove them with: $netns down"
    else
        "$netns" down
    fi
}
trap cleanup EXIT
trap 'echo "netns-sweep.sh: interrupted; stopping" >&2; exit 130' INT TERM

"$netns" up $((workers + 1))
host0=$("$netns" addr 0)
address=tcp://$host0:$port
if [ -n "$netem" ]; then
    for ((i = 1; i <= workers; i++)); do "$netns" netem "$i" "${netem%,*}" "${netem#*,}"; done
fi

echo "logs: $logs (coordinator.log, worker-h1.log …)"
echo "coordinator in h0 at $address, store $db; workers in h1 … h$workers"

# netns.sh exec replaces itself with the command, so these pids are lopper's own.
"$netns" exec 0 "$lopper" coordinator "${sweep[@]}" --db "$db" --listen "$address" --token-file "$token" \
    > "$logs/coordinator.log" 2>&1 &
coordinator=$!

# Asked from h1, so the answer has crossed the bridge.
status_from() { "$netns" exec "$1" "$lopper" status --connect "$address" --token-file "$token" --timeout 2; }

deadline=$((SECONDS + wait_seconds))
until status_from 1 >/dev/null 2>&1; do
    if ! kill -0 "$coordinator" 2>/dev/null; then
        rc=0
        wait "$coordinator" || rc=$?
        coordinator=""
        tail -n 20 "$logs/coordinator.log" >&2
        [ "$rc" -ne 0 ] || { echo "the sweep in $db was already complete"; "$lopper" results --db "$db"; exit 0; }
        die "the coordinator exited with status $rc (log: $logs/coordinator.log)"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "the coordinator did not answer within $wait_seconds s (log: $logs/coordinator.log)"
    sleep 0.5
done
echo "coordinator is up; h1 reached it over the bridge"

for ((i = 1; i <= workers; i++)); do
    # A cache per host, as on separate machines: each fetches the model and data by hash.
    "$netns" exec "$i" "$lopper" worker --connect "$address" --token-file "$token" --jobs "$slots" \
        --cache-dir "$logs/cache-h$i" --id "h$i" > "$logs/worker-h$i.log" 2>&1 &
    worker_pids+=($!)
done

if [ -n "$partition" ]; then
    ( sleep "$cut_at"; "$netns" partition "$cut_host"; sleep "$cut_for"; "$netns" heal "$cut_host" ) &
    chaos=$!
fi

last_report=$SECONDS
while kill -0 "$coordinator" 2>/dev/null; do
    alive=0
    for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    if [ "$alive" -eq 0 ]; then
        sleep 2
        if kill -0 "$coordinator" 2>/dev/null; then
            for ((i = 1; i <= workers; i++)); do echo "--- worker-h$i.log"; tail -n 5 "$logs/worker-h$i.log"; done >&2
            die "every worker exited but the sweep is not complete"
        fi
    fi
    if [ $((SECONDS - last_report)) -ge 15 ]; then
        # From h0 itself, so a partitioned worker host does not hide the counters.
        status_from 0 2>/dev/null | grep -E '^(jobs|workers alive|leases expired|results ignored)' | sed 's/^/  /' || true
        last_report=$SECONDS
    fi
    sleep 1
done
rc=0
wait "$coordinator" || rc=$?
coordinator=""
grep -E 'coordinator done|jobs done' "$logs/coordinator.log" || tail -n 1 "$logs/coordinator.log"
[ "$rc" -eq 0 ] || die "the coordinator exited with status $rc (log: $logs/coordinator.log)"

# Workers leave once told the sweep is complete. One cut off at the end never hears it.
for ((t = 0; t < 20; t++)); do
    alive=0
    for pid in "${worker_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" -eq 0 ] && break
    sleep 1
done
for ((i = 1; i <= workers; i++)); do
    if kill -0 "${worker_pids[$((i - 1))]}" 2>/dev/null; then
        echo "h$i: still waiting for the coordinator (it missed the end of the sweep); stopping it"
    else
        echo "h$i: $(grep -E 'worker done' "$logs/worker-h$i.log" | tail -n 1 || echo 'no summary (see its log)')"
    fi
done
echo
"$lopper" results --db "$db"
