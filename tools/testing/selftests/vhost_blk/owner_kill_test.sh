#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# SIGKILL the owner with I/O in flight on a file and on a block device:
# release must drain everything, so that rmmod vhost_blk succeeds at once.
# Leaves the module loaded, as it found it.

. "$(dirname "$0")/test_common.sh"

_require_root
_require_module_loaded
[ -r "$(_module_path)" ] || _skip_all "cannot find vhost_blk.ko to load it again"

# __kill_then_rmmod BACKEND: the whole cycle for one backend.
__kill_then_rmmod()
{
	_flood_and_kill "$1" || { echo "# flood on $1 never got ready"; return 1; }
	_rmmod_vhost_blk || { echo "# rmmod after SIGKILL failed"; return 1; }
	_insmod_vhost_blk
}

file=$(mktemp /tmp/vb-kill.XXXXXX)
truncate -s 64M "$file"
nullb=$(_nullb_create "vbkill$$" 64) || nullb=

ktap_print_header
ktap_set_plan 2
ktap_test_result "sigkill_with_file_io_in_flight_then_rmmod_succeeds" \
	__kill_then_rmmod "$file"
if [ -n "$nullb" ]; then
	ktap_test_result "sigkill_with_bdev_io_in_flight_then_rmmod_succeeds" \
		__kill_then_rmmod "$nullb"
else
	ktap_test_skip "sigkill_with_bdev_io_in_flight_then_rmmod_succeeds" \
		"null_blk with configfs unavailable"
fi
_nullb_remove "vbkill$$"
rm -f "$file"
ktap_finished
