# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the vhost_blk shell tests: source it from the test.  Public
# helpers are _name, private ones __name.  Results are KTAP, through the
# kselftest ktap_helpers.sh.

. "$(dirname "${BASH_SOURCE[0]}")/../kselftest/ktap_helpers.sh"

VHOST_BLK_DEV=/dev/vhost-blk

# _skip_all REASON: skip the whole test.
_skip_all()
{
	ktap_print_header
	ktap_skip_all "$*"
	exit "$KSFT_SKIP"
}

_require_root()
{
	[ "$(id -u)" -eq 0 ] || _skip_all "must run as root"
}

_module_loaded()
{
	[ -e /sys/module/vhost_blk ]
}

_require_module_loaded()
{
	_module_loaded || _skip_all "vhost_blk is not loaded"
}

# _module_path: the vhost_blk.ko to load again after an rmmod.  The VM
# runner exports VHOST_BLK_MODULE; otherwise use the installed module.
_module_path()
{
	if [ -n "${VHOST_BLK_MODULE:-}" ]; then
		echo "$VHOST_BLK_MODULE"
	else
		modinfo -n vhost_blk 2>/dev/null
	fi
}

# _wait_for PATH: up to 5 s for PATH to appear (udev-less devtmpfs is quick).
_wait_for()
{
	local i

	for i in $(seq 50); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
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

# _insmod_vhost_blk: load the module under test again, if it is not loaded.
_insmod_vhost_blk()
{
	_module_loaded && return 0
	insmod "$(_module_path)" && _wait_for "$VHOST_BLK_DEV"
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

# _flood_and_kill BACKEND: start an owner flooding BACKEND with I/O,
# SIGKILL it with requests in flight, and reap it.
_flood_and_kill()
{
	local dir fifo pid line

	dir=$(dirname "${BASH_SOURCE[0]}")
	fifo=$(mktemp -u /tmp/vb-flood.XXXXXX)
	mkfifo "$fifo"
	"$dir/vhost_blk_flood" "$1" 4 >"$fifo" &
	pid=$!
	read -r -t 60 line <"$fifo"
	rm -f "$fifo"
	if [ "$line" != ready ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid"
		return 1
	fi
	sleep 0.2
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	return 0
}

# _bpftrace_script NAME: the path of contrib/bpftrace/NAME: staged next to
# the tests, or in the checkout named by VHOST_BLK_TOP.
_bpftrace_script()
{
	local dir

	dir=$(dirname "${BASH_SOURCE[0]}")
	if [ -r "$dir/$1" ]; then
		echo "$dir/$1"
	elif [ -n "${VHOST_BLK_TOP:-}" ] &&
	     [ -r "$VHOST_BLK_TOP/contrib/bpftrace/$1" ]; then
		echo "$VHOST_BLK_TOP/contrib/bpftrace/$1"
	else
		return 1
	fi
}

# _wait_for_text FILE TEXT TENTHS [PID]: up to TENTHS/10 s for TEXT in
# FILE, and no longer than process PID lives.
_wait_for_text()
{
	local i

	for i in $(seq "$3"); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		[ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# _flood_for BACKEND SECONDS: one queue of I/O on BACKEND for SECONDS.
_flood_for()
{
	local dir fifo pid line

	dir=$(dirname "${BASH_SOURCE[0]}")
	fifo=$(mktemp -u /tmp/vb-flood.XXXXXX)
	mkfifo "$fifo"
	"$dir/vhost_blk_flood" "$1" 1 >"$fifo" &
	pid=$!
	read -r -t 60 line <"$fifo"
	rm -f "$fifo"
	[ "$line" = ready ] && sleep "$2"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$line" = ready ]
}
