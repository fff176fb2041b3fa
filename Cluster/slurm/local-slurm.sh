#!/bin/bash
# A private Slurm on this machine, to try lopper-sweep.sbatch without a cluster: munged,
# slurmctld and slurmd with their configuration, keys, state, logs and pid files in one folder.
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge); installs nothing.
set -Eeuo pipefail   # -E: the ERR trap of `up` also sees failures inside functions

usage() {
    cat <<EOF
Usage: $(basename "$0") COMMAND [OPTIONS]

Commands:
  up [--hosts N]      start munged, slurmctld and slurmd. Without --hosts: one node,
                      $(hostname -s), on 127.0.0.1. With --hosts N: N nodes h0 … h(N-1), each
                      slurmd in a network namespace of its own (Cluster/netns.sh, set
                      '$NETNS_PREFIX' on $NETNS_SUBNET.0/24), slurmctld on the hub.
  down                cancel every job of this Slurm, stop its daemons (by the pids in their
                      pid files) and remove the namespaces; safe to repeat
  exec CMD [ARGS...]  run CMD (sbatch, squeue, scontrol …) against this Slurm: with SLURM_CONF
                      set, and in the hub's namespace when there are --hosts
  pid NODE            print the pid of NODE's slurmd

Options:
  --dir DIR           where everything lives (default /tmp/lopper-slurm)
  --cpus C            CPUs each node offers (default: this machine's, $(nproc))
  --memory MB         memory each node offers (default 2048)
  --port P            slurmctld's port; slurmd listens on P+1 (default 6817)
  --wait S            seconds to wait for the nodes to be idle (default 60)

Example:
  sudo $0 up
  sudo SWEEP_CONFIG=\$PWD/Config/sweeps/chain24.yaml LOPPER=\$PWD/.build/release/lopper \\
      $0 exec sbatch --wait --cpus-per-task=2 --mem=1G Cluster/slurm/lopper-sweep.sbatch
  sudo $0 down
EOF
}

die() { echo "local-slurm.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
netns_script=$(dirname "$here")/netns.sh
NETNS_PREFIX=lopper-slurm
NETNS_SUBNET=10.78.0
export LOPPER_NETNS=$NETNS_PREFIX LOPPER_SUBNET=$NETNS_SUBNET

dir=/tmp/lopper-slurm
hosts=0
cpus=$(nproc)
memory=2048
port=6817
wait_seconds=60

[ $# -ge 1 ] || { usage >&2; exit 2; }
command=$1
shift
case "$command" in -h|--help|help) usage; exit 0 ;; esac
need_value() { [ $# -ge 2 ] || die "$1 needs a value"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) need_value "$@"; dir=$2; shift 2 ;;
        --hosts) need_value "$@"; hosts=$2; shift 2 ;;
        --cpus) need_value "$@"; cpus=$2; shift 2 ;;
        --memory) need_value "$@"; memory=$2; shift 2 ;;
        --port) need_value "$@"; port=$2; shift 2 ;;
        --wait) need_value "$@"; wait_seconds=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) break ;;
    esac
done
for number in "$hosts" "$cpus" "$memory" "$port" "$wait_seconds"; do
    [[ "$number" =~ ^[0-9]+$ ]] || die "'$number' is not a whole number"
done
[ "$hosts" -le 50 ] || die "--hosts must be at most 50"

[ "$(id -u)" -eq 0 ] || die "needs root (slurmd runs jobs as any user; network namespaces)"
for tool in munged mungekey slurmctld slurmd scontrol sinfo scancel squeue nsenter; do
    command -v "$tool" >/dev/null || die "'$tool' not found; install Debian's slurm-wlm and munge"
done

conf=$dir/slurm.conf
export SLURM_CONF=$conf

# Runs a command in the network namespace of netns.sh host $1 (a number or hub). Only the
# network is switched: 'ip netns exec' would also mount a fresh /sys, hiding the cgroup file
# systems slurmd looks for at start.
in_netns() {
    local host=$1
    shift
    nsenter --net="/run/netns/$NETNS_PREFIX-$([ "$host" = hub ] && echo hub || echo "h$host")" "$@"
}

# The namespace slurmctld and the clients run in: the hub with --hosts, ours otherwise.
in_control() {
    if [ -f "$dir/hosts" ] && [ "$(cat "$dir/hosts")" -gt 0 ]; then in_netns hub "$@"; else "$@"; fi
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    # slurmctld insists on this machine's host name; the address is where it listens.
    local control_host control_addr
    control_host=$(hostname -s)
    if [ "$hosts" -gt 0 ]; then control_addr=$NETNS_SUBNET.1; else control_addr=127.0.0.1; fi
    cat > "$conf" <<EOF
# Written by Cluster/slurm/local-slurm.sh: a private Slurm for trying Lopper's template.
ClusterName=lopper-local
SlurmctldHost=$control_host($control_addr)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket.2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
# As at sites that do not requeue batch jobs by default: only jobs that ask (--requeue) are.
JobRequeue=0
# A node that stops answering is marked down after 10 s; jobs end 5 s after SIGTERM.
SlurmdTimeout=10
KillWait=5
MinJobAge=600
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
EOF
    local i
    if [ "$hosts" -gt 0 ]; then
        for ((i = 0; i < hosts; i++)); do
            echo "NodeName=h$i NodeAddr=$("$netns_script" addr "$i") CPUs=$cpus RealMemory=$memory State=UNKNOWN" >> "$conf"
        done
        echo "PartitionName=lopper Nodes=h[0-$((hosts - 1))] Default=YES MaxTime=INFINITE State=UP" >> "$conf"
    else
        echo "NodeName=$(hostname -s) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN" >> "$conf"
        echo "PartitionName=lopper Nodes=$(hostname -s) Default=YES MaxTime=INFINITE State=UP" >> "$conf"
    fi
}

node_names() {
    local i
    if [ "$hosts" -gt 0 ]; then for ((i = 0; i < hosts; i++)); do echo "h$i"; done; else hostname -s; fi
}

# Sends SIGTERM to the daemons of these pid files, SIGKILL to any still running after 10 s,
# and removes the files.
stop_daemons() {
    local file pid pids=() t alive
    for file in "$@"; do
        [ -f "$file" ] || continue
        pid=$(cat "$file")
        if kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
        rm -f "$file"
    done
    for ((t = 0; t < 50; t++)); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && return 0
        sleep 0.2
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

cmd_down() {
    [ -d "$dir" ] || return 0
    [ -f "$dir/hosts" ] && hosts=$(cat "$dir/hosts")
    if [ -f "$conf" ] && pid_alive "$dir/slurmctld.pid"; then
        in_control scancel --full --quiet --user=root 2>/dev/null || true
        local t
        for ((t = 0; t < 30; t++)); do
            [ -z "$(in_control squeue --noheader --states=all 2>/dev/null | grep -vE ' (CD|F|CA|TO|NF|OOM|PR|BF|DL) ' || true)" ] && break
            sleep 1
        done
    fi
    # The Slurm daemons together (each takes a second or two), then munged, which they use.
    stop_daemons "$dir"/slurmd-*.pid "$dir/slurmctld.pid"
    stop_daemons "$dir/munge/munged.pid"
    # Processes a job left in a namespace (slurmstepd, workers) go with it.
    if [ "$hosts" -gt 0 ]; then "$netns_script" down; fi
    rm -f "$dir/hosts"
}

# Starts a daemon (it forks away by itself) with its output in start.log and none of our file
# descriptors beyond 0-2: a daemon holding the caller's pipe or socket open would keep the
# caller waiting for it forever (Foundation's Process, for one, watches such a socket).
start_daemon() {
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        "$@" < /dev/null >> "$start_log" 2>&1
    )
}

cmd_up() {
    if pid_alive "$dir/slurmctld.pid" || pid_alive "$dir/munge/munged.pid" || compgen -G "$dir/slurmd-*.pid" >/dev/null; then
        die "a Slurm from $dir is still running; stop it first: $0 down --dir $dir"
    fi
    mkdir -p "$dir"/{state,spool,log,munge}
    dir=$(cd "$dir" && pwd)
    conf=$dir/slurm.conf
    export SLURM_CONF=$conf
    # munged wants its socket folder searchable by all and writable by its owner alone.
    chmod 755 "$dir/munge"
    # Anything that fails from here on leaves nothing running.
    local start_log=$dir/log/start.log
    : > "$start_log"
    trap 'echo "local-slurm.sh: up failed; stopping. $start_log:" >&2; cat "$start_log" >&2; echo "more in $dir/log and $dir/munge" >&2; cmd_down' ERR

    [ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key"
    chmod 600 "$dir/munge/munge.key"
    start_daemon munged --socket="$dir/munge/munge.socket.2" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"

    echo "$hosts" > "$dir/hosts"
    if [ "$hosts" -gt 0 ]; then "$netns_script" up "$hosts" >/dev/null; fi
    write_conf
    start_daemon in_control slurmctld -f "$conf"
    local i name
    if [ "$hosts" -gt 0 ]; then
        for ((i = 0; i < hosts; i++)); do
            mkdir -p "$dir/spool/h$i"
            start_daemon in_netns "$i" slurmd -f "$conf" -N "h$i"
        done
    else
        name=$(hostname -s)
        mkdir -p "$dir/spool/$name"
        start_daemon slurmd -f "$conf" -N "$name"
    fi

    local deadline=$((SECONDS + wait_seconds)) expected idle
    expected=$(node_names | wc -l)
    until idle=$(in_control sinfo --noheader --responding --states=idle --format=%n 2>/dev/null | wc -l) && [ "$idle" -eq "$expected" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { in_control sinfo >&2 || true; false; }
        sleep 0.5
    done
    trap - ERR
    echo "Slurm up in $dir: $expected node(s) $(node_names | paste -sd' '), $cpus CPUs and $memory MB each"
    echo "export SLURM_CONF=$conf"
}

case "$command" in
    up) [ $# -eq 0 ] || die "up takes no arguments after the options (got '$1')"; cmd_up ;;
    down) cmd_down; echo "Slurm in $dir stopped" ;;
    exec)
        [ $# -ge 1 ] || die "usage: exec CMD [ARGS...]"
        [ -f "$conf" ] || die "no Slurm in $dir (run: $0 up)"
        [ -f "$dir/hosts" ] || die "the Slurm in $dir is not running (run: $0 up)"
        in_control "$@" ;;
    pid) [ $# -eq 1 ] || die "usage: pid NODE"; [ -f "$dir/slurmd-$1.pid" ] || die "no slurmd pid file for $1"; cat "$dir/slurmd-$1.pid" ;;
    *) usage >&2; exit 2 ;;
esac
