#!/usr/bin/env bash
# A one-node SLURM cluster from Debian's packages, for the tests, CI and anyone who wants to try
# `dynloss train --executor slurm` on one machine:
#
#   scripts/slurm_cluster.sh start  [DIR]   bring it up (a no-op that says OK when it runs already)
#   scripts/slurm_cluster.sh status [DIR]   exit 0 only when the node is up and a job completes
#   scripts/slurm_cluster.sh stop   [DIR]   stop the daemons this script started (pid files in DIR/run)
#
# Needs root and the Debian 12 packages slurmctld slurmd slurm-client munge, plus slurmdbd and
# mariadb-server for accounting (sacct, which submitit reads job states from). No systemd, no
# cgroups: munged runs as the `munge` user (socket under /run/munge), MariaDB under setsid as
# `mysql` with its socket at /run/mysqld/mysqld.sock and its data under DIR, slurmdbd, then
# slurmctld (only once slurmdbd answers `sacctmgr list cluster`, else it stops for lack of TRES),
# then slurmd. Configuration, state, spool, logs and pid files live under DIR (default
# $DYNLOSS_SLURM_DIR or /tmp/dynloss-slurm). Clients find the cluster through SLURM_CONF: `start`
# and `status` print `export SLURM_CONF=DIR/slurm.conf` as their last line.
#
# Environment: DYNLOSS_SLURM_ACCOUNTING=0 leaves out MariaDB and slurmdbd (no sacct);
# DYNLOSS_SLURM_KILLWAIT (seconds between SIGTERM and SIGKILL of a cancelled task, default 5);
# DYNLOSS_SLURM_TIMEOUT (seconds to wait for each daemon and for the probe job, default 60).
set -euo pipefail

cmd="${1:-}"
dir="${2:-${DYNLOSS_SLURM_DIR:-/tmp/dynloss-slurm}}"
accounting="${DYNLOSS_SLURM_ACCOUNTING:-1}"
killwait="${DYNLOSS_SLURM_KILLWAIT:-5}"
timeout_s="${DYNLOSS_SLURM_TIMEOUT:-60}"
me="slurm_cluster.sh"
mysql_sock=/run/mysqld/mysqld.sock
munge_sock=/run/munge/munge.socket.2

die() { echo "$me: $*" >&2; exit "${2:-1}"; }
say() { echo "$me: $*" >&2; }

case "$cmd" in
  start|stop|status) ;;
  *) die "usage: $me start|stop|status [DIR] (got '${cmd}')" 2 ;;
esac
case "$dir" in
  /*) ;;
  "") die "DIR is empty; give an absolute folder such as /tmp/dynloss-slurm" 2 ;;
  *) dir="$(pwd)/$dir" ;;
esac
for v in killwait timeout_s; do
  case "${!v}" in ''|*[!0-9]*) die "$v must be a whole number of seconds, got '${!v}'" 2 ;; esac
done
case "$accounting" in 0|1) ;; *) die "DYNLOSS_SLURM_ACCOUNTING must be 0 or 1, got '$accounting'" 2 ;; esac

conf="$dir/slurm.conf"
run="$dir/run"
log="$dir/log"
maria="$dir/mariadb"
export SLURM_CONF="$conf"
host="$(hostname -s)"

# alive PIDFILE [COMM]: the process named in PIDFILE runs (and is COMM, not a reused pid)
alive() {
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null || return 1
  [ -z "${2:-}" ] || [ "$(cat "/proc/$(cat "$1")/comm" 2>/dev/null)" = "$2" ]
}

# wait_for SECONDS WHAT CMD...: retry CMD every 0.2 s until it succeeds or SECONDS pass
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then
      say "$what did not come up within ${limit}s"
      return 1
    fi
    sleep 0.2
  done
}

node_state() { sinfo -h -N -n "$host" -o %T 2>/dev/null | head -1; }
node_ready() { case "$(node_state)" in idle*|mixed*|alloc*|completing*) return 0 ;; *) return 1 ;; esac; }
munge_ok() { munge -n -S "$munge_sock" 2>/dev/null | unmunge -S "$munge_sock" >/dev/null 2>&1; }
mysql_ok() { mariadb-admin --no-defaults --socket="$mysql_sock" -u root ping >/dev/null 2>&1; }
dbd_ok() { sacctmgr -n -P list cluster >/dev/null 2>&1; }

# the trivial job: one CPU, a little memory, one minute at most
probe() {
  timeout "$timeout_s" srun -Q -N1 -n1 -c1 --mem=16M -t 1 -J dynloss-probe -o /dev/null true
}

status() {
  local ok=0 st
  [ -f "$conf" ] || { say "no cluster configured under $dir (run: $me start $dir)"; return 1; }
  # a cluster this script stopped is known at once (sinfo would retry for ~20 s)
  [ ! -f "$run/stopped" ] || { say "stopped (run: $me start $dir)"; return 1; }
  st="$(node_state)"
  if node_ready; then say "node $host: $st"; else say "node $host: ${st:-no answer from slurmctld}"; ok=1; fi
  if [ "$accounting" = 1 ]; then
    if dbd_ok; then say "accounting: slurmdbd answers"; else say "accounting: slurmdbd does not answer"; ok=1; fi
  fi
  if [ $ok -eq 0 ]; then
    if probe; then say "a trivial job (srun true) completed"; else say "a trivial job (srun true) did not complete within ${timeout_s}s"; ok=1; fi
  fi
  return $ok
}

write_conf() {
  local cpus mem nodeline
  # what slurmd measures here, so the node is not drained for "Low RealMemory" or CPUs
  nodeline="$(slurmd -C | head -1)"
  case "$nodeline" in NodeName=*) ;; *) die "slurmd -C printed no node line: $nodeline" ;; esac
  nodeline="${nodeline#NodeName=* }"
  cat >"$conf.tmp" <<EOF
# one-node cluster written by scripts/slurm_cluster.sh; state, spool and logs under $dir
ClusterName=dynloss
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$run/slurmctld.pid
SlurmdPidFile=$run/slurmd.pid
SlurmctldLogFile=$log/slurmctld.log
SlurmdLogFile=$log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=$killwait
MailProg=/bin/true
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
EOF
  if [ "$accounting" = 1 ]; then
    cat >>"$conf.tmp" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
EOF
  else
    echo "AccountingStorageType=accounting_storage/none" >>"$conf.tmp"
  fi
  cat >>"$conf.tmp" <<EOF
NodeName=$host NodeAddr=127.0.0.1 $nodeline State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
  if [ "$accounting" = 1 ]; then
    # slurmdbd refuses a configuration others can read (it may hold a password)
    (umask 077; cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$run/slurmdbd.pid
LogFile=$log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=dynloss_slurm_acct
EOF
    )
  fi
}

start_munge() {
  if munge_ok; then
    return 0  # a munged runs already (ours or the machine's): use it
  fi
  [ -f /etc/munge/munge.key ] || { say "creating /etc/munge/munge.key"; mungekey --create --keyfile=/etc/munge/munge.key; \
                                   chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  rm -f "$run/munged.pid"
  runuser -u munge -- munged 2>>"$log/start.log" || die "munged did not start (see $log/start.log, /var/log/munge/munged.log)"
  wait_for "$timeout_s" munged munge_ok || die "munged does not answer (see $log/start.log)"
  cp /run/munge/munged.pid "$run/munged.pid"
}

start_mariadb() {
  if mysql_ok; then
    return 0  # a MariaDB answers at the socket already (ours or the machine's): use it
  fi
  # MariaDB runs as `mysql`: its data, pid file and log in a folder of its own
  install -d -o mysql -g mysql -m 0750 "$maria"
  if [ ! -d "$maria/data/mysql" ]; then
    install -d -o mysql -g mysql -m 0750 "$maria/data"
    mariadb-install-db --no-defaults --datadir="$maria/data" --user=mysql --skip-test-db \
      --auth-root-authentication-method=socket >>"$log/start.log" 2>&1 \
      || die "mariadb-install-db failed (see $log/start.log)"
  fi
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  rm -f "$maria/mariadb.pid"
  setsid mariadbd --no-defaults --user=mysql --datadir="$maria/data" --socket="$mysql_sock" \
    --pid-file="$maria/mariadb.pid" --skip-networking --log-error="$maria/mariadb.log" \
    --innodb-buffer-pool-size=64M </dev/null >>"$log/start.log" 2>&1 &
  wait_for "$timeout_s" MariaDB mysql_ok || die "MariaDB does not answer at $mysql_sock (see $maria/mariadb.log)"
}

start_slurmdbd() {
  if ! alive "$run/slurmdbd.pid" slurmdbd; then
    slurmdbd >>"$log/start.log" 2>&1 || die "slurmdbd did not start (see $log/slurmdbd.log)"
  fi
  wait_for "$timeout_s" slurmdbd dbd_ok || die "slurmdbd does not answer sacctmgr (see $log/slurmdbd.log)"
  if ! sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx dynloss; then
    sacctmgr -i add cluster dynloss >>"$log/start.log" 2>&1 || die "sacctmgr add cluster dynloss failed (see $log/start.log)"
  fi
}

start() {
  [ "$(id -u)" -eq 0 ] || die "start needs root (the daemons run as root, munge and mysql), got uid $(id -u)" 3
  for exe in slurmctld slurmd sinfo srun munged; do
    command -v "$exe" >/dev/null 2>&1 || die "$exe not found: apt-get install slurmctld slurmd slurm-client munge" 3
  done
  if [ "$accounting" = 1 ]; then
    for exe in slurmdbd mariadbd mariadb-install-db; do
      command -v "$exe" >/dev/null 2>&1 || die "$exe not found: apt-get install slurmdbd mariadb-server (or DYNLOSS_SLURM_ACCOUNTING=0)" 3
    done
  fi
  if [ -f "$conf" ] && alive "$run/slurmctld.pid" slurmctld && alive "$run/slurmd.pid" slurmd && status; then
    say "OK: already running"
    echo "export SLURM_CONF=$conf"
    return 0
  fi
  local t0=$SECONDS
  install -d -m 0755 "$dir" "$run" "$log" "$dir/state" "$dir/spool"
  rm -f "$run/stopped"
  write_conf
  start_munge
  if [ "$accounting" = 1 ]; then
    start_mariadb
    start_slurmdbd
  fi
  if ! alive "$run/slurmctld.pid" slurmctld; then
    slurmctld -f "$conf" >>"$log/start.log" 2>&1 || die "slurmctld did not start (see $log/slurmctld.log)"
  fi
  wait_for "$timeout_s" slurmctld scontrol ping || die "slurmctld does not answer (see $log/slurmctld.log)"
  if ! alive "$run/slurmd.pid" slurmd; then
    slurmd -f "$conf" >>"$log/start.log" 2>&1 || die "slurmd did not start (see $log/slurmd.log)"
  fi
  if ! wait_for "$timeout_s" "node $host" node_ready; then
    die "node $host is '$(node_state)' (see $log/slurmd.log and $log/slurmctld.log)"
  fi
  status || die "the cluster is up but not usable (see the lines above and $log/)"
  say "OK: one-node cluster up in $((SECONDS - t0)) s (logs in $log)"
  echo "export SLURM_CONF=$conf"
}

# stop_pid NAME PIDFILE: SIGTERM, then SIGKILL after the timeout
stop_pid() {
  local name=$1 pidfile=$2 pid end
  alive "$pidfile" "$name" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  end=$((SECONDS + timeout_s))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$end" ]; then say "$name ($pid) ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.2
  done
  rm -f "$pidfile"
  say "stopped $name ($pid)"
}

stop() {
  [ -d "$run" ] || { say "nothing started under $dir"; return 0; }
  stop_pid slurmd "$run/slurmd.pid"
  stop_pid slurmctld "$run/slurmctld.pid"
  stop_pid slurmdbd "$run/slurmdbd.pid"
  stop_pid mariadbd "$maria/mariadb.pid"
  stop_pid munged "$run/munged.pid"
  touch "$run/stopped"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status && echo "export SLURM_CONF=$conf" ;;
esac
