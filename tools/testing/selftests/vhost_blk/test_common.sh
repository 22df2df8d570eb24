# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the vhost-blk shell selftests.  _public helpers are for the
# tests, __private ones for this file.  Exit 4 means skip (kselftest).

VB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VB_KSFT_SKIP=4
# The module under test: the runner exports VHOST_BLK_KO, else the tree's.
VB_KO=${VHOST_BLK_KO:-$VB_DIR/../../../../drivers/vhost/vhost_blk.ko}

_log()
{
	echo "# ${0##*/}: $*"
}

_skip()
{
	_log "SKIP: $*"
	exit "$VB_KSFT_SKIP"
}

_fail()
{
	_log "FAIL: $*"
	exit 1
}

_require_root()
{
	[ "$(id -u)" -eq 0 ] || _skip "needs root"
}

_require_module()
{
	[ -e /dev/vhost-blk ] || _skip "/dev/vhost-blk missing: vhost_blk not loaded"
	[ -r "$VB_KO" ] || _skip "cannot find vhost_blk.ko to reload (set VHOST_BLK_KO)"
}

# _rmmod_vhost_blk: unload, allowing the release path 2 s to finish.
_rmmod_vhost_blk()
{
	local i

	for i in $(seq 20); do
		rmmod vhost_blk 2>/dev/null && return 0
		sleep 0.1
	done
	rmmod vhost_blk
}

_insmod_vhost_blk()
{
	grep -q '^vhost_blk ' /proc/modules && return 0
	insmod "$VB_KO"
}

# _nullb_create NAME MB: a memory-backed null_blk with slow completions;
# prints the device node.
_nullb_create()
{
	local dir=/sys/kernel/config/nullb/$1

	modprobe null_blk nr_devices=0 2>/dev/null
	[ -d /sys/kernel/config/nullb ] || return 1
	mkdir "$dir" || return 1
	echo "$2" >"$dir/size"
	echo 1 >"$dir/memory_backed"
	echo 2 >"$dir/irqmode"
	echo 2000000 >"$dir/completion_nsec"
	echo 1 >"$dir/power" || return 1
	__nullb_node "$1" "$(cat "$dir/index")"
}

__nullb_node()
{
	local i

	for i in $(seq 100); do
		[ -b "/dev/$1" ] && { echo "/dev/$1"; return 0; }
		[ -b "/dev/nullb$2" ] && { echo "/dev/nullb$2"; return 0; }
		sleep 0.05
	done
	return 1
}

_nullb_remove()
{
	local dir=/sys/kernel/config/nullb/$1

	[ -d "$dir" ] || return 0
	echo 0 >"$dir/power"
	rmdir "$dir"
}

# _flood_and_kill BACKEND: start an owner flooding BACKEND, SIGKILL it
# with I/O in flight, reap it.
_flood_and_kill()
{
	local fifo pid line

	fifo=$(mktemp -u /tmp/vb-flood.XXXXXX)
	mkfifo "$fifo"
	"$VB_DIR/vhost_blk_flood" "$1" 4 >"$fifo" &
	pid=$!
	read -r -t 60 line <"$fifo"
	rm -f "$fifo"
	[ "$line" = ready ] || { kill -9 "$pid" 2>/dev/null; wait "$pid"; return 1; }
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	return 0
}
