#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on localhost, for tests/test_slurm.py.
#
#   cluster.sh install        apt-get install slurmctld slurmd slurm-client munge (if sbatch is missing)
#   cluster.sh start STATEDIR write slurm.conf under STATEDIR, start munged, slurmctld, slurmd;
#                             wait until the node is idle
#   cluster.sh stop STATEDIR  stop the daemons started by `start` (by their pid files)
#   cluster.sh logs STATEDIR  print the daemons' logs
#
# Needs root. Every daemon (munged included) runs as root with its key, config, state, spool,
# logs, sockets and pid files under STATEDIR; nothing outside it is touched apart from the
# Debian packages and a symlink /etc/slurm/slurm.conf -> STATEDIR/slurm.conf, made only where
# there is no such file and removed by `stop` (see start_cluster). Clients find the cluster
# through SLURM_CONF=STATEDIR/slurm.conf or that link.
# Ports: 6817/6818, or SLURM_TEST_CTLD_PORT / SLURM_TEST_SLURMD_PORT.
set -euo pipefail

SYSTEM_CONF=/etc/slurm/slurm.conf
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:-}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

install_packages() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null \
        && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        echo "slurm and munge already installed"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "not root: cannot apt-get install slurm-wlm/munge"
    command -v apt-get >/dev/null || die "no apt-get on this machine"
    export DEBIAN_FRONTEND=noninteractive
    # Debian's postinst scripts try to start the services; a policy-rc.d returning 101
    # keeps them from doing so (we start our own daemons with our own config).
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1
    fi
    local rc=0
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge \
        || { apt-get update -q && apt-get install -y -q --no-install-recommends \
                 slurmctld slurmd slurm-client munge; } || rc=$?
    [ "$created_policy" = 1 ] && rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install slurmctld slurmd slurm-client munge failed (exit $rc)"
}

# The daemons run in the foreground (-D, --foreground) in their own sessions, so the pids
# recorded under $PIDS are theirs; output goes to log files, never to our caller's pipes.
spawn() {
    local name="$1"; shift
    setsid "$@" >"$STATE/log/$name.out" 2>&1 </dev/null &
    echo $! > "$PIDS/$name"
}

alive() {
    local f="$PIDS/$1"
    [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$(cat "$f")/status" 2>/dev/null
}

start_cluster() {
    local state="$1"
    [ "$(id -u)" = 0 ] || die "not root: cannot run slurmd"
    STATE="$state" PIDS="$state/pids"
    mkdir -p "$state"/{ctld,spool,log,munge,munge-key,pids}
    chmod 755 "$state"
    local host cpus mem_free mem
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem_free="$(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo)"
    mem=$(( mem_free * 8 / 10 ))
    [ "$mem" -gt 512 ] || die "too little free memory (${mem_free} MB)"

    # munge: a private daemon with its own key and socket under $state (the system's
    # /etc/munge and any running munged are left alone).
    local key="$state/munge-key/munge.key" sock="$state/munge/munge.socket"
    if [ -r /etc/munge/munge.key ]; then cp /etc/munge/munge.key "$key"
    else dd if=/dev/urandom bs=1 count=1024 of="$key" 2>/dev/null; fi
    chown root:root "$key"; chmod 400 "$key"
    # munged wants its key private, and its socket directory searchable by all but writable
    # by root only.
    chmod 700 "$state/munge-key"; chmod 755 "$state/munge" "$state/log"
    spawn munged munged --foreground --force --key-file "$key" --socket "$sock" \
        --pid-file "$state/munge/munged.pid" --log-file "$state/log/munged.log" \
        --seed-file "$state/munge-key/munged.seed"
    local i
    for i in $(seq 1 50); do [ -S "$sock" ] && break; alive munged || die "munged exited"; sleep 0.1; done
    [ -S "$sock" ] || die "munged did not create its socket $sock"

    sed -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem|g" \
        -e "s|@STATE@|$state|g" -e "s|@MUNGE_SOCKET@|$sock|g" \
        -e "s|@CTLD_PORT@|${SLURM_TEST_CTLD_PORT:-6817}|g" -e "s|@SLURMD_PORT@|${SLURM_TEST_SLURMD_PORT:-6818}|g" \
        "$HERE/slurm.conf.in" > "$state/slurm.conf"
    export SLURM_CONF="$state/slurm.conf"

    # Snakemake's job step (snakemake-executor-plugin-slurm-jobstep) strips every SLURM_*
    # variable, SLURM_CONF included, before its nested `srun`, so srun only finds the cluster
    # through the default /etc/slurm/slurm.conf. Link ours there if there is none (a dangling
    # link left by an earlier, killed run is replaced); `stop` removes the link again.
    if [ -L "$SYSTEM_CONF" ] && [ ! -e "$SYSTEM_CONF" ]; then rm -f "$SYSTEM_CONF"; fi
    if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
        die "$SYSTEM_CONF already exists (a real SLURM installation?); not touching it"
    fi
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -s "$SLURM_CONF" "$SYSTEM_CONF"

    spawn slurmctld slurmctld -D -i -f "$SLURM_CONF" -L "$state/log/slurmctld.log"
    spawn slurmd slurmd -D -f "$SLURM_CONF" -L "$state/log/slurmd.log" -N "$host"

    # Wait (60 s at most) until the node has registered and is idle.
    local deadline=$(( SECONDS + 60 )) d
    while [ "$SECONDS" -lt "$deadline" ]; do
        for d in munged slurmctld slurmd; do alive "$d" || die "$d exited during start-up (see its log)"; done
        if timeout 5 scontrol show node "$host" 2>/dev/null | grep -q 'State=IDLE'; then
            echo "cluster up: node $host idle, SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 1
    done
    timeout 5 sinfo -N -l || true
    die "node $host did not become idle within 60 s"
}

stop_cluster() {
    local state="$1" d
    PIDS="$state/pids"
    export SLURM_CONF="$state/slurm.conf"
    if alive slurmctld; then
        timeout 10 squeue -h -o %i 2>/dev/null | xargs -r timeout 10 scancel 2>/dev/null || true
    fi
    for d in slurmd slurmctld munged; do alive "$d" && kill "$(cat "$PIDS/$d")" 2>/dev/null || true; done
    if [ -L "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" = "$SLURM_CONF" ]; then
        rm -f "$SYSTEM_CONF"
    fi
    for d in slurmd slurmctld munged; do
        for _ in $(seq 1 20); do alive "$d" || break; sleep 0.5; done
        if alive "$d"; then kill -9 "$(cat "$PIDS/$d")" 2>/dev/null || true; fi
        rm -f "$PIDS/$d"
    done
}

show_logs() {
    local state="$1" f n
    for f in "$state"/log/*; do
        [ -f "$f" ] || continue
        # *.out is the daemons' stdout/stderr, mostly a copy of their *.log: keep it short.
        case "$f" in *.out) n=10 ;; *) n=40 ;; esac
        echo "===== $f (last $n lines) ====="
        tail -n "$n" "$f"
    done
}

case "$cmd" in
    install) install_packages ;;
    start) start_cluster "${2:?STATEDIR}" ;;
    stop) stop_cluster "${2:?STATEDIR}" ;;
    logs) show_logs "${2:?STATEDIR}" ;;
    *) die "usage: cluster.sh install | start STATEDIR | stop STATEDIR | logs STATEDIR" ;;
esac
