#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vhost_blk_soak for a bounded time (VHOST_BLK_SOAK_SECONDS, default 180):
# three devices of two queues, each driven by an owner process with
# verified I/O, while faults are injected round by round (owner SIGKILL,
# dm-error/flakey/delay swapped in, dmsetup remove --force, null_blk
# powered off, ext4 frozen, memory.high, rmmod and insmod of vhost_blk).
# Every block whose write was acknowledged must read back as written, every
# failed request must fall in the window of a fault made to fail the
# backend, no request may stay in flight, and vhost_blk must unload.  On a
# kernel with kmemleak, its reports involving vhost_blk are counted too.
# VHOST_BLK_SOAK_SEED fixes the run's seed.  Leaves the module loaded.

. "$(dirname "$0")/test_common.sh"

_require_root

dir=$(dirname "$0")
soak=$dir/vhost_blk_soak
seconds=${VHOST_BLK_SOAK_SECONDS:-180}
[ -x "$soak" ] || _skip_all "vhost_blk_soak is not built"
_require_module_loaded
export VHOST_BLK_MODULE=${VHOST_BLK_MODULE:-$(_module_path)}

args=(--time "$seconds")
[ -n "${VHOST_BLK_SOAK_SEED:-}" ] && args+=(--seed "$VHOST_BLK_SOAK_SEED")
kmemleak=/sys/kernel/debug/kmemleak

ktap_print_header
ktap_set_plan 1

name=soak_${seconds}s_nothing_acknowledged_lost
[ -w "$kmemleak" ] && echo scan >"$kmemleak" && echo clear >"$kmemleak"
# The soak's own lines become KTAP diagnostics.
"$soak" "${args[@]}" 2>&1 | sed -u -e 's/^\([^#]\)/# \1/'
status=${PIPESTATUS[0]}
_insmod_vhost_blk || { echo "# cannot load vhost_blk again"; status=1; }
if [ -w "$kmemleak" ]; then
	# Two scans: an object stays reported only if unreferenced in both.
	echo scan >"$kmemleak"
	sleep 5
	echo scan >"$kmemleak"
	leaks=$(grep -c 'vhost_blk' "$kmemleak" || true)
	echo "# soak: kmemleak: ${leaks:-0} report line(s) involving vhost_blk"
	[ "${leaks:-0}" -eq 0 ] || status=1
else
	echo "# soak: kmemleak: not available on this kernel (make soak runs the sanitizer kernel)"
fi
case $status in
0)	ktap_test_pass "$name" ;;
4)	ktap_test_skip "$name: the soak had nothing to run on" ;;
*)	ktap_test_fail "$name" ;;
esac
ktap_finished
