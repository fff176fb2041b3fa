#!/bin/bash
# Simulates several hosts on one Linux machine with network namespaces (needs root and iproute2).
# One hub namespace holds a bridge; each host namespace reaches it through a veth pair.
set -euo pipefail

# Another set can live beside this one under a different name and subnet (the Slurm test's).
PREFIX=${LOPPER_NETNS:-lopper}
SUBNET=${LOPPER_SUBNET:-10.77.0}
[[ "$PREFIX" =~ ^[a-z][a-z0-9-]{0,20}$ ]] || { echo "netns.sh: LOPPER_NETNS must be a short lowercase name" >&2; exit 1; }
[[ "$SUBNET" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "netns.sh: LOPPER_SUBNET must be three octets, e.g. 10.77.0" >&2; exit 1; }
HUB=$PREFIX-hub
HOST_PREFIX=$PREFIX-h
BRIDGE=br0
MAX_HOSTS=200

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [ARGS]

Simulated hosts ${HOST_PREFIX}0 … ${HOST_PREFIX}(N-1), all on one bridge in namespace $HUB,
host i at $SUBNET.(10+i)/24, the hub itself at $SUBNET.1. h0 is meant for the coordinator.
LOPPER_NETNS (default lopper) and LOPPER_SUBNET (default 10.77.0) name a separate set.

Commands:
  up N                        create N hosts (tears down an existing set first)
  down                        remove every namespace this script made (safe to repeat)
  exec HOST CMD [ARGS...]     run CMD inside host HOST (a number: 0, 1, …, or hub)
  partition HOST              cut HOST off the bridge (its hub-side link goes down)
  heal HOST                   reconnect HOST
  netem HOST DELAY_MS LOSS_PCT
                              delay and drop HOST's outgoing packets (0 0 clears);
                              warns and carries on when the kernel lacks sch_netem
  addr HOST                   print HOST's IP address (hub: the bridge's)
  list                        print the hosts that exist and their link state
  -h, --help                  this message

Example:
  sudo $0 up 3
  sudo $0 exec 2 ping -c1 \$($0 addr 0)
  sudo $0 partition 2; sudo $0 heal 2
  sudo $0 down
EOF
}

die() { echo "netns.sh: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "this command needs root (network namespaces)"
    command -v ip >/dev/null || die "'ip' not found; install iproute2"
}

host_ns() { echo "$HOST_PREFIX$1"; }
# Interface names stay well under the 15-character limit.
hub_if() { echo "hv$1"; }
HOST_IF=eth0

check_host_number() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] || die "HOST must be a number, got '${1:-}'"
    [ "$1" -lt "$MAX_HOSTS" ] || die "HOST must be below $MAX_HOSTS"
}

check_host() {
    check_host_number "$1"
    ns_exists "$(host_ns "$1")" || die "host $1 does not exist (run: $0 up N)"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# Our namespaces only: the hub and lopper-h<digits>.
our_namespaces() {
    ip netns list | awk '{print $1}' | grep -E "^($HUB|$HOST_PREFIX[0-9]+)\$" || true
}

addr_of() { echo "$SUBNET.$((10 + $1))"; }

cmd_down() {
    need_root
    local ns pids
    for ns in $(our_namespaces); do
        # Processes left inside would keep the namespace alive after its name is gone.
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill $pids 2>/dev/null || true
        fi
        ip netns delete "$ns" 2>/dev/null || true
    done
}

cmd_up() {
    need_root
    local n=${1:-}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] || die "up needs a host count from 1 to $MAX_HOSTS"
    if [ -n "$(our_namespaces)" ]; then
        echo "netns.sh: removing the existing simulated hosts first" >&2
        cmd_down
    fi
    # Any failure below leaves a partial set: remove it.
    trap 'echo "netns.sh: up failed, cleaning up" >&2; cmd_down' ERR

    ip netns add "$HUB"
    ip -n "$HUB" link set lo up
    ip -n "$HUB" link add "$BRIDGE" type bridge
    ip -n "$HUB" link set "$BRIDGE" up
    ip -n "$HUB" addr add "$SUBNET.1/24" dev "$BRIDGE"

    local i ns
    for ((i = 0; i < n; i++)); do
        ns=$(host_ns "$i")
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$HUB" link add "$(hub_if "$i")" type veth peer name "$HOST_IF" netns "$ns"
        ip -n "$HUB" link set "$(hub_if "$i")" master "$BRIDGE"
        ip -n "$HUB" link set "$(hub_if "$i")" up
        ip -n "$ns" addr add "$(addr_of "$i")/24" dev "$HOST_IF"
        ip -n "$ns" link set "$HOST_IF" up
    done
    trap - ERR
    echo "up: $n hosts, h0 at $(addr_of 0)$([ "$n" -gt 1 ] && echo " … h$((n - 1)) at $(addr_of $((n - 1)))")"
}

cmd_exec() {
    need_root
    [ $# -ge 2 ] || die "usage: exec HOST CMD [ARGS...]"
    local ns
    if [ "$1" = hub ]; then
        ns_exists "$HUB" || die "the hub does not exist (run: $0 up N)"
        ns=$HUB
    else
        check_host "$1"
        ns=$(host_ns "$1")
    fi
    shift
    exec ip netns exec "$ns" "$@"
}

set_link() {
    need_root
    check_host "$1"
    ip -n "$HUB" link set "$(hub_if "$1")" "$2"
}

cmd_netem() {
    need_root
    [ $# -eq 3 ] || die "usage: netem HOST DELAY_MS LOSS_PCT"
    check_host "$1"
    local ns delay=$2 loss=$3
    [[ "$delay" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DELAY_MS must be a number"
    [[ "$loss" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "LOSS_PCT must be a number"
    ns=$(host_ns "$1")
    command -v tc >/dev/null || { echo "netns.sh: WARNING: 'tc' not found; no delay or loss applied" >&2; return 0; }
    if [ "$delay" = 0 ] && [ "$loss" = 0 ]; then
        ip netns exec "$ns" tc qdisc del dev "$HOST_IF" root 2>/dev/null || true
        echo "netem: cleared on h$1"
        return 0
    fi
    local out
    if out=$(ip netns exec "$ns" tc qdisc replace dev "$HOST_IF" root netem delay "${delay}ms" loss "${loss}%" 2>&1); then
        echo "netem: h$1 sends with ${delay} ms delay and ${loss}% loss"
    else
        echo "netns.sh: WARNING: could not apply netem on h$1 ($out)." >&2
        echo "netns.sh: WARNING: the kernel probably lacks sch_netem (try: modprobe sch_netem); continuing without delay or loss." >&2
    fi
}

cmd_list() {
    need_root
    local ns i link
    for ns in $(our_namespaces | sort -V); do
        [ "$ns" = "$HUB" ] && continue
        i=${ns#"$HOST_PREFIX"}
        link=$(ip -n "$HUB" -o link show "$(hub_if "$i")" 2>/dev/null || true)
        if [[ "$link" == *"state UP"* ]]; then echo "h$i $(addr_of "$i") connected"; else echo "h$i $(addr_of "$i") partitioned"; fi
    done
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
command=$1
shift
case "$command" in
    -h|--help|help) usage ;;
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    exec) cmd_exec "$@" ;;
    partition) [ $# -eq 1 ] || die "usage: partition HOST"; set_link "$1" down; echo "partitioned h$1" ;;
    heal) [ $# -eq 1 ] || die "usage: heal HOST"; set_link "$1" up; echo "healed h$1" ;;
    netem) cmd_netem "$@" ;;
    addr) [ $# -eq 1 ] || die "usage: addr HOST"
          if [ "$1" = hub ]; then echo "$SUBNET.1"; else check_host_number "$1"; addr_of "$1"; fi ;;
    list) cmd_list ;;
    *) usage >&2; exit 2 ;;
esac
