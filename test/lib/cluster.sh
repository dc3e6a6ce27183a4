# test/lib/cluster.sh - a throwaway PostgreSQL 15 cluster for din's tests and demo.
#
# Source it from bash (it only defines functions and variables):
#
#   . test/lib/cluster.sh
#   cluster_start 5520 /tmp/din-demo [name=value ...]
#   cluster_psql -c 'SELECT din_score(...)'      # any psql arguments
#   cluster_stop                                 # optional: the EXIT trap does it too
#
# cluster_start PORT DIR [SETTING=VALUE ...]
#     Starts a server whose data directory is DIR/data, creating it with initdb when DIR/data
#     does not exist yet (restarts it when it is already running). DIR is created if needed
#     and given to the cluster owner; its parent directories must let that user pass. The
#     server listens on the unix socket in DIR and on localhost:PORT, with
#     shared_preload_libraries = $CLUSTER_PRELOAD
#     (default 'din'), fsync off, and logs to DIR/log/postgresql.log. Extra arguments are
#     appended to postgresql.conf verbatim (quote values as postgresql.conf wants).
#     It exports PGHOST=DIR PGPORT=PORT PGUSER=<superuser> PGDATABASE=postgres so psql,
#     pg_dump, pg_regress and make installcheck reach this cluster, and installs an EXIT trap
#     (INT and TERM exit through it) that stops the server, so nothing is left running.
#     If the caller needs its own EXIT trap, set it after cluster_start and call cluster_stop
#     from it. On a start failure it prints the end of the server log and returns 1.
# cluster_psql ARGS...
#     psql -X -v ON_ERROR_STOP=1 against the cluster (database $PGDATABASE unless -d is given).
# cluster_as_owner CMD ARGS...
#     Runs CMD as the OS user that owns the cluster (postgres when we are root), e.g. to
#     place a file the server must read.
# cluster_stop
#     Stops the server (fast shutdown) if this shell started one; idempotent.
# cluster_destroy
#     cluster_stop, then removes DIR.
#
# Why the server runs as the postgres OS user: initdb and postgres refuse to run as root,
# and CI runs as root. Authentication is trust, which is safe because the socket lives in a
# directory only the owner (and root) can enter and TCP listens on localhost only.
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config when present),
# CLUSTER_PRELOAD (default din; set it empty to preload nothing).

CLUSTER_PORT=
CLUSTER_DIR=
CLUSTER_OWNER=
CLUSTER_RUNNING=0
CLUSTER_PID=

if [ -z "${PG_CONFIG:-}" ]; then
	if [ -x /usr/lib/postgresql/15/bin/pg_config ]; then
		PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
	else
		PG_CONFIG=pg_config
	fi
fi
# The server binaries (initdb, pg_ctl) are not on root's PATH on Debian.
PG_BINDIR=$("$PG_CONFIG" --bindir)

cluster_as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$CLUSTER_OWNER" -- "$@"
	else
		"$@"
	fi
}

_cluster_log() {
	echo "cluster: $*" >&2
}

cluster_start() {
	if [ $# -lt 2 ]; then
		_cluster_log "usage: cluster_start PORT DIR [SETTING=VALUE ...]"
		return 2
	fi
	local port=$1 dir=$2
	shift 2
	case $dir in
	/*) ;;
	*) dir=$(pwd)/$dir ;;
	esac
	if [ "$(id -u)" -eq 0 ]; then
		CLUSTER_OWNER=postgres
	else
		CLUSTER_OWNER=$(id -un)
	fi
	CLUSTER_PORT=$port
	CLUSTER_DIR=$dir

	mkdir -p "$dir"
	if [ "$(id -u)" -eq 0 ]; then
		chown "$CLUSTER_OWNER": "$dir"
	fi
	# Only the owner may enter: the socket there accepts anyone (trust).
	chmod 700 "$dir"
	if ! cluster_as_owner test -w "$dir"; then
		_cluster_log "$CLUSTER_OWNER cannot reach $dir: every parent directory must let it pass (chmod o+x)"
		return 1
	fi
	cluster_as_owner mkdir -p "$dir/log"

	if [ ! -f "$dir/data/PG_VERSION" ]; then
		if ! cluster_as_owner "$PG_BINDIR/initdb" -D "$dir/data" --auth=trust \
			--encoding=UTF8 --locale=C --no-sync >"$dir/log/initdb.log" 2>&1; then
			_cluster_log "initdb failed:"
			cat "$dir/log/initdb.log" >&2
			return 1
		fi
	fi

	# Rewritten on every start so a reused directory gets this port and these settings.
	{
		echo "port = $port"
		echo "listen_addresses = 'localhost'"
		echo "unix_socket_directories = '$dir'"
		echo "shared_preload_libraries = '${CLUSTER_PRELOAD-din}'"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_connections = 40"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] %q%a '"
		local setting
		for setting in "$@"; do
			echo "$setting"
		done
	} | cluster_as_owner tee "$dir/data/postgresql.auto.conf" >/dev/null

	# Trap before starting, so a failure half way still stops whatever came up.
	trap _cluster_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	local action=start
	if cluster_as_owner "$PG_BINDIR/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; then
		action=restart
	fi
	if ! cluster_as_owner "$PG_BINDIR/pg_ctl" "$action" -D "$dir/data" -w -t 60 \
		-l "$dir/log/postgresql.log" >/dev/null; then
		_cluster_log "server failed to start on port $port; end of $dir/log/postgresql.log:"
		tail -n 30 "$dir/log/postgresql.log" >&2
		return 1
	fi
	CLUSTER_RUNNING=1
	CLUSTER_PID=$(head -n 1 "$dir/data/postmaster.pid")

	export PGHOST=$dir PGPORT=$port PGUSER=$CLUSTER_OWNER PGDATABASE=postgres
	_cluster_log "started on port $port (socket and data in $dir)"
}

cluster_psql() {
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

cluster_stop() {
	if [ "$CLUSTER_RUNNING" = 1 ] && [ -n "$CLUSTER_DIR" ]; then
		CLUSTER_RUNNING=0
		if ! cluster_as_owner "$PG_BINDIR/pg_ctl" stop -D "$CLUSTER_DIR/data" -m fast -w -t 60 \
			>/dev/null 2>&1; then
			# pg_ctl needs postmaster.pid; if the directory is gone, signal the pid we saw.
			if [ "$(cat "/proc/$CLUSTER_PID/comm" 2>/dev/null)" = postgres ]; then
				kill -QUIT "$CLUSTER_PID" 2>/dev/null || true
			fi
		fi
		_cluster_log "stopped the server on port $CLUSTER_PORT"
	fi
	return 0
}

cluster_destroy() {
	cluster_stop
	if [ -n "$CLUSTER_DIR" ] && [ -d "$CLUSTER_DIR/data" ]; then
		rm -rf "$CLUSTER_DIR"
	fi
	return 0
}

_cluster_on_exit() {
	local status=$?
	cluster_stop
	exit "$status"
}
