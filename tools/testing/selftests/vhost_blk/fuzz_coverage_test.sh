#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run vhost_blk_fuzz for a bounded time (VHOST_BLK_FUZZ_SECONDS, default
# 60): several threads of ioctls and hostile rings against one device, a
# verified oracle queue, documented errnos only, close() in bounded time.
# Inputs come from the committed seeds in fuzz-corpus/ and from
# VHOST_BLK_FUZZ_CORPUS (the cache of earlier runs, read-only here); with
# kcov, inputs that reach new vhost_blk PCs go to
# $VHOST_BLK_VM_OUT/fuzz-corpus, which the VM runner copies back, or to a
# temporary directory.  VHOST_BLK_FUZZ_SEED fixes the run's seed.

. "$(dirname "$0")/test_common.sh"

_require_root
_require_module_loaded

dir=$(dirname "$0")
fuzz=$dir/vhost_blk_fuzz
[ -x "$fuzz" ] || _skip_all "vhost_blk_fuzz is not built"
if [ -n "${VHOST_BLK_VM_OUT:-}" ]; then
	out=$VHOST_BLK_VM_OUT/fuzz-corpus
else
	out=$(mktemp -d /tmp/vb-fuzz-corpus.XXXXXX)
fi
mkdir -p "$out"

args=(--time "${VHOST_BLK_FUZZ_SECONDS:-60}" --corpus "$out"
      --seed-corpus "$dir/fuzz-corpus")
[ -d "${VHOST_BLK_FUZZ_CORPUS:-}" ] &&
	args+=(--seed-corpus "$VHOST_BLK_FUZZ_CORPUS")
[ -n "${VHOST_BLK_FUZZ_SEED:-}" ] && args+=(--seed "$VHOST_BLK_FUZZ_SEED")

name=fuzz_${VHOST_BLK_FUZZ_SECONDS:-60}s_every_oracle_holds
ktap_print_header
ktap_set_plan 1
# The fuzzer's own lines become KTAP diagnostics.
"$fuzz" "${args[@]}" 2>&1 | sed -e 's/^\([^#]\)/# \1/'
case ${PIPESTATUS[0]} in
0)	ktap_test_pass "$name" ;;
4)	ktap_test_skip "$name" ;;
*)	ktap_test_fail "$name" ;;
esac
ktap_finished
