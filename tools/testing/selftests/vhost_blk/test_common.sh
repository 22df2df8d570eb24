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
