#!/usr/bin/env bash
# Runs a real single-node Slurm cluster on this machine, for the tests of
# ablations/slurm and for trying the slurm executor without a site cluster.
#
# Usage: scripts/slurm-local.sh start|stop|status [STATE_DIR]
#
#   start   installs slurmctld, slurmd, slurm-client and munge with apt if they
#           are missing (Debian bookworm, Slurm 22.05), writes STATE_DIR/slurm.conf,
#           starts munged, slurmctld and "slurmd -N localhost" as root with PID
#           files, and waits until the node is idle. Already running: ok.
#   stop    cancels every job of this cluster, stops the daemons it started (by
#           PID) and waits until they are gone.
#   status  prints each daemon's PID and the node state; exit 0 when all run,
#           3 when not.
#
# STATE_DIR (default /tmp/mmablate-slurm) holds the config, the controller's
# state, spool, logs, PID files and jobcomp.txt (one line per finished job with
# its exit code: accounting without a database).
#
# The config is not written to /etc/slurm: the client tools find it through
# SLURM_CONF, which "start" prints as an export line, e.g.
#
#   eval "$(scripts/slurm-local.sh start)"      # sets SLURM_CONF
#   sbatch --wrap 'hostname'; squeue
#   scripts/slurm-local.sh stop
#
# Needs root, and no systemd: the daemons are started directly, not as units.
# The settings follow docs/slurm-notes.md (measured on this machine kind):
# RequeueExit=75 lets a task ask to be rerun; AuthInfo=cred_expire=15 makes a
# requeued task start again after ~15 s instead of ~2 min; MinJobAge=3600
# keeps finished jobs visible to scontrol for an hour.
#
# slurmctld and slurmd run in the foreground (-D) under setsid, so the PID the
# script records is the daemon's from the first instant: a daemonising start
# writes its PID file some time after the parent returns, and a check in that
# window took a starting daemon for a dead one.
set -euo pipefail

cmd="${1:-}"
state_dir="${2:-/tmp/mmablate-slurm}"
conf="$state_dir/slurm.conf"
run_dir="$state_dir/run"
log_dir="$state_dir/log"
export SLURM_CONF="$conf"

log() { echo "slurm-local: $*" >&2; }
die() { log "$*"; exit 1; }

# alive PIDFILE [NAME]: the PID in PIDFILE names a running process, whose
# command is NAME when given (a PID file left from another boot may name an
# unrelated process that reuses the number).
alive() {
  local pid comm
  [ -s "$1" ] || return 1
  pid=$(<"$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [ -z "${2:-}" ] && return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  [ "$comm" = "$2" ]
}

# show_logs: the end of each daemon's log, for a failed start.
show_logs() {
  local f
  for f in "$log_dir"/slurmctld.log "$log_dir"/slurmd.log "$log_dir"/*.out; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}

# launch NAME ARGS...: starts daemon NAME in the foreground mode in its own
# session, detached from this script's output, and records its PID.
launch() {
  local name=$1
  shift
  setsid "$name" -D "$@" >>"$log_dir/$name.out" 2>&1 </dev/null &
  echo $! >"$run_dir/$name.pid"
}

install_packages() {
  local want=(slurmctld slurmd slurm-client munge) missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing with apt: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The packages try to start their services; without systemd that prints
  # harmless "policy-rc.d denied execution" lines.
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0600 /etc/munge/munge.key
  # A munged already serving the socket (ours from an earlier start, or the
  # machine's own) is used as it is.
  if alive /run/munge/munged.pid munged; then return 0; fi
  runuser -u munge -- munged --force
  local i
  for i in $(seq 1 50); do
    [ -S /run/munge/munge.socket.2 ] && alive /run/munge/munged.pid munged && break
    sleep 0.1
  done
  alive /run/munge/munged.pid munged || die "munged did not start; see /var/log/munge/munged.log"
  cp /run/munge/munged.pid "$run_dir/munged.pid"
}

write_conf() {
  local hw cpus sockets cores threads mem
  hw=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  [ -n "$cpus" ] && [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ] && [ -n "$mem" ] ||
    die "cannot read the hardware from 'slurmd -C': $hw"
  # slurmd refuses a node whose RealMemory exceeds what it measures; keep a margin.
  mem=$((mem * 95 / 100))
  cat >"$conf.tmp" <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster.
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=15
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default every job would claim the whole node's memory and run alone.
DefMemPerCPU=1024
MinJobAge=3600
# A requeued task becomes eligible cred_expire after it ended, but no event
# wakes a scheduler then: the main loop runs every 60 s by default (and
# backfill skips cycles when nothing changed). Look every second instead.
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
RequeueExit=75
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$log_dir/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
StateSaveLocation=$state_dir/state
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$run_dir/slurmctld.pid
SlurmdPidFile=$run_dir/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

wait_idle() {
  local i st
  for i in $(seq 1 150); do
    st=$(sinfo -h -o %t 2>/dev/null | head -n 1 || true)
    case "$st" in
      idle | mix | alloc | comp) return 0 ;;
    esac
    if ! alive "$run_dir/slurmctld.pid" slurmctld || ! alive "$run_dir/slurmd.pid" slurmd; then
      show_logs
      die "a daemon exited during start; see $log_dir/slurmctld.log and $log_dir/slurmd.log"
    fi
    sleep 0.2
  done
  show_logs
  die "the node did not become idle within 30 s (sinfo says '${st:-nothing}'); see $log_dir/"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "start needs root (it installs packages and runs the daemons as root)"
  install_packages
  mkdir -p "$state_dir/state" "$state_dir/spool" "$run_dir" "$log_dir"
  start_munge
  if ! alive "$run_dir/slurmctld.pid" slurmctld || ! alive "$run_dir/slurmd.pid" slurmd; then
    write_conf
    alive "$run_dir/slurmctld.pid" slurmctld || launch slurmctld -f "$conf"
    alive "$run_dir/slurmd.pid" slurmd || launch slurmd -f "$conf" -N localhost
  fi
  wait_idle
  log "cluster up ($state_dir)"
  printf 'export SLURM_CONF=%q\n' "$conf"
}

# stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local pid i
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  pid=$(<"$1")
  kill "$pid"
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
    sleep 0.2
  done
  log "$2 ($pid) ignored SIGTERM for 10 s; killing it"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  if alive "$run_dir/slurmctld.pid" slurmctld; then
    # Jobs left running would keep their slurmstepd processes after slurmd goes.
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u || true)
    # shellcheck disable=SC2086 # one word per job id
    [ -z "$jobs" ] || scancel $jobs 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
      [ -z "$(squeue -h -t running,completing -o %A 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop_pid "$run_dir/slurmd.pid" slurmd
  stop_pid "$run_dir/slurmctld.pid" slurmctld
  # Only a munged this script started; the machine's own is left alone.
  if [ -s "$run_dir/munged.pid" ]; then
    stop_pid "$run_dir/munged.pid" munged
  fi
  log "stopped ($state_dir)"
}

status() {
  local ok=0 name pidfile
  for name in munged slurmctld slurmd; do
    pidfile="$run_dir/$name.pid"
    [ "$name" = munged ] && [ ! -s "$pidfile" ] && pidfile=/run/munge/munged.pid
    if alive "$pidfile" "$name"; then
      echo "$name: running (pid $(<"$pidfile"))"
    else
      echo "$name: stopped"
      ok=3
    fi
  done
  if [ "$ok" -eq 0 ]; then
    echo "node: $(sinfo -h -o %t 2>/dev/null | head -n 1 || echo unreachable)"
  fi
  echo "SLURM_CONF=$conf"
  return "$ok"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
