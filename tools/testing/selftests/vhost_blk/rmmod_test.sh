#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vhost_blk unloads once every file of /dev/vhost-blk is closed, and loads
# again afterwards.  Leaves the module loaded, as it found it.

. "$(dirname "$0")/test_common.sh"

_require_root
_require_module_loaded
module=$(_module_path)
[ -r "$module" ] || _skip_all "cannot find vhost_blk.ko to load it again"

__rmmod_fails() { ! rmmod vhost_blk 2>/dev/null; }
__node_gone() { [ ! -e "$VHOST_BLK_DEV" ] && ! _module_loaded; }
__insmod() { insmod "$module" && _wait_for "$VHOST_BLK_DEV"; }

ktap_print_header
ktap_set_plan 4
exec 3<>"$VHOST_BLK_DEV"
ktap_test_result "rmmod_fails_while_a_file_is_open" __rmmod_fails
exec 3>&-
ktap_test_result "rmmod_succeeds_after_all_files_are_closed" rmmod vhost_blk
ktap_test_result "device_node_is_removed_by_rmmod" __node_gone
_module_loaded || __insmod
ktap_test_result "insmod_after_rmmod_creates_device_node" test -c "$VHOST_BLK_DEV"
ktap_finished
