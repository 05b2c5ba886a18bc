#!/bin/bash
# softether.sh — a private, loopback-only SoftEther VPN Server for tests.
#
#   softether.sh check             exit 0 when vpnserver and vpncmd are installed, 77 if not
#   softether.sh start DIR PORT    start a fresh server on 127.0.0.1:PORT, state under DIR;
#                                  the admin password is taken from SOFTETHER_ADMIN_PASSWORD
#   softether.sh stop DIR          SIGTERM (then SIGKILL) the server started in DIR
#
# Why it looks like this (see ../../../shared/devices/softether.md):
#  - vpnserver calls out to the Internet at once with its default settings, so it only
#    ever starts from the seeded config in tests/data/softether/vpn_server.config (one
#    listener on 127.0.0.1, DDNS/NAT traversal/Azure/keep-alive/UDP/IPv6 all off);
#  - its directories are compiled in (/var/lib/softether, /var/log/softether,
#    /run/softether) and it exits 0 when they are missing: it runs in a private mount
#    namespace (unshare --mount, needs root) where private folders under DIR are
#    mounted over them, so every run has a fresh server and the host is not touched;
#  - it is stopped by signalling its own PID, never with `vpnserver stop` (which kills
#    every vpnserver on the machine after 90 s).
# Layout of DIR: var-lib/softether (config, chain_certs), var-log/softether,
# run/softether, pid, server.log.
# Environment: VPNCMD (default vpncmd), CW_SOFTETHER_SEED (another seed; it must still
# listen on 127.0.0.1 only), CW_SOFTETHER_READY_TIMEOUT (seconds, default 20).
set -euo pipefail

SERVER_BIN=/usr/libexec/softether/vpnserver/vpnserver
VPNCMD=${VPNCMD:-vpncmd}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SEED=${CW_SOFTETHER_SEED:-$HERE/../data/softether/vpn_server.config}
READY_TIMEOUT_S=${CW_SOFTETHER_READY_TIMEOUT:-20}

die() { echo "softether.sh: $*" >&2; exit 1; }

installed() {
	[ -x "$SERVER_BIN" ] && command -v "$VPNCMD" >/dev/null 2>&1
}

# 0 when PID exists and is not a zombie (nobody may reap the server once we are gone).
pid_running() {
	local pid=$1 state
	state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# 0 when PID is running and is our server: vpnserver itself, or unshare/bash a moment
# before they exec it (their argv carries the "softether-lab" marker). Checking argv
# keeps a recycled PID from being signalled.
server_alive() {
	local pid=$1 cmdline
	pid_running "$pid" || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
	case "$cmdline" in "$SERVER_BIN "*|*softether-lab*) return 0 ;; *) return 1 ;; esac
}

# One admin call with a hard timeout; never prompts (/PROGRAMMING, stdin /dev/null).
admin() {
	local port=$1 password=$2
	shift 2
	timeout 5 "$VPNCMD" "127.0.0.1:$port" /SERVER "/PASSWORD:$password" /PROGRAMMING /CMD "$@" \
		</dev/null
}

seed_config() {
	local dir=$1 port=$2 config=$1/var-lib/softether/vpn_server.config
	[ -f "$SEED" ] || die "seed config $SEED is missing: refusing to start vpnserver without it"
	grep -q '^[[:space:]]*uint Port 15555$' "$SEED" || die "seed config $SEED has no 'uint Port 15555' line"
	grep -q '^[[:space:]]*string ListenIP 127.0.0.1$' "$SEED" || die "seed config $SEED is not loopback-only"
	sed -e "s/^\([[:space:]]*uint Port\) 15555\$/\1 $port/" "$SEED" >"$config"
	grep -q "uint Port $port\$" "$config" || die "$config: could not set port $port"
}

# The private namespace: our folders over the compiled-in paths. When a path does not
# exist on the host (the package leaves that to systemd) its parent is covered instead,
# inside this namespace only, by a folder holding just the softether entry.
namespace_script() {
	cat <<'EOF'
set -e
dir=$1 server=$2
cover() {
	local private=$1 path=$2
	if [ -d "$path/softether" ]; then
		mount --bind "$private/softether" "$path/softether"
	else
		mount --bind "$private" "$path"
	fi
}
cover "$dir/var-lib" /var/lib
cover "$dir/var-log" /var/log
cover "$dir/run" /run
[ -f /var/lib/softether/vpn_server.config ] || { echo "seeded config not visible" >&2; exit 1; }
exec "$server" start --foreground
EOF
}

close_inherited_fds() {
	local fd
	for fd in $(ls /proc/$BASHPID/fd); do
		[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
	done
	return 0
}

wait_ready() {
	local dir=$1 port=$2 pid=$3 i
	for ((i = 0; i < READY_TIMEOUT_S * 5; i++)); do
		# the PID is our child that moment: still the lab script's fork, or unshare, bash
		# or vpnserver after the execs, so only "still running" is asked here
		if ! pid_running "$pid"; then
			echo "softether.sh: vpnserver (pid $pid) exited during start-up; see $dir/server.log" >&2
			return 1
		fi
		# A fresh server has no admin password: an empty one is accepted.
		if admin "$port" "" ServerInfoGet >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	echo "softether.sh: vpnserver on 127.0.0.1:$port not ready after ${READY_TIMEOUT_S}s; see $dir/server.log" >&2
	return 1
}

# SIGTERM, then SIGKILL, to a process that runs (not a zombie) until it is gone.
terminate() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_running "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		pid_running "$pid" || return 0
		sleep 0.1
	done
	return 1
}

# A failed start: PID is still our own child (not reaped, so not recycled) in any of its
# stages (fork, unshare, bash, vpnserver): stop it without asking what it runs.
kill_child() {
	local pid=$1 dir=$2
	terminate "$pid" || echo "softether.sh: pid $pid did not stop" >&2
	rm -f "$dir/pid"
}

cmd_start() {
	local dir=${1:-} port=${2:-}
	[ -n "$dir" ] && [ -n "$port" ] || die "usage: softether.sh start DIR PORT"
	[[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] ||
		die "port $port: must be a number from 1024 to 65535"
	[ -n "${SOFTETHER_ADMIN_PASSWORD:-}" ] || die "SOFTETHER_ADMIN_PASSWORD is not set"
	installed || die "vpnserver/vpncmd are not installed (apt-get install softether-vpnserver softether-vpncmd)"
	[ "$(id -u)" = 0 ] || die "needs root for a private mount namespace (unshare --mount)"
	command -v unshare >/dev/null || die "unshare is not installed"
	if [ -f "$dir/pid" ] && server_alive "$(cat "$dir/pid")"; then
		die "$dir: a server is already running (pid $(cat "$dir/pid"))"
	fi
	# another listener there would answer the readiness probe in our server's place
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "127.0.0.1:$port is already in use"
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	mkdir -p "$dir/var-lib/softether" "$dir/var-log/softether" "$dir/run/softether"
	chmod 0700 "$dir/var-lib/softether"
	seed_config "$dir" "$port"

	# unshare and bash exec in place: $! is the vpnserver's own PID. The server gets no
	# descriptor of ours but its log: an inherited pipe would keep whoever reads our
	# output waiting until the server exits.
	(
		close_inherited_fds
		exec unshare --mount --propagation private bash -c "$(namespace_script)" softether-lab \
			"$dir" "$SERVER_BIN"
	) </dev/null >"$dir/server.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/pid"
	if ! wait_ready "$dir" "$port" "$pid"; then
		kill_child "$pid" "$dir"
		exit 1
	fi
	if ! admin "$port" "" ServerPasswordSet "$SOFTETHER_ADMIN_PASSWORD" >/dev/null 2>&1; then
		kill_child "$pid" "$dir"
		die "vpnserver on 127.0.0.1:$port: could not set the admin password"
	fi
	echo "vpnserver pid $pid on 127.0.0.1:$port, state in $dir"
}

cmd_stop() {
	local dir=${1:-} pid
	[ -n "$dir" ] || die "usage: softether.sh stop DIR"
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	if server_alive "$pid"; then
		terminate "$pid" || true
	fi
	server_alive "$pid" && die "vpnserver pid $pid did not stop"
	rm -f "$dir/pid"
}

case "${1:-}" in
check) installed || exit 77 ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
*) die "usage: softether.sh check | start DIR PORT | stop DIR" ;;
esac
