#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# SIGKILL the owner with I/O in flight on a file and on a block device:
# release must drain everything, so that rmmod vhost_blk succeeds at once.

. "$(dirname "$0")/test_common.sh"

_require_root
_require_module

file=$(mktemp /dev/shm/vb-kill.XXXXXX 2>/dev/null || mktemp /tmp/vb-kill.XXXXXX)
truncate -s 64M "$file"
nullb=$(_nullb_create "vbkill$$" 64) || nullb=

rc=0
for backend in "$file" $nullb; do
	_flood_and_kill "$backend" || { _log "flood on $backend never got ready"; rc=1; }
	_rmmod_vhost_blk || { _log "rmmod after SIGKILL ($backend) failed"; rc=1; }
	_insmod_vhost_blk || _fail "cannot reload $VB_KO"
	_log "$backend: owner killed, module unloaded and reloaded"
done

_nullb_remove "vbkill$$"
rm -f "$file"
[ -n "$nullb" ] || _log "null_blk unavailable: block device case not run"
exit "$rc"
