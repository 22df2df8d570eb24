#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vhost_blk_fuzz in make check: first its table of the errnos each ioctl
# may return against Documentation/virt/vhost-blk.rst, then a run of a
# bounded time (VHOST_BLK_FUZZ_SECONDS, default 60): several threads of
# ioctls and hostile rings against one device, a verified oracle queue,
# documented errnos only, close() in bounded time.  Inputs come from the
# committed seeds in fuzz-corpus/ and from VHOST_BLK_FUZZ_CORPUS (the
# cache of earlier runs, read-only here); with kcov, inputs that reach new
# vhost_blk PCs go to $VHOST_BLK_VM_OUT/fuzz-corpus, which the VM runner
# copies back, or to a temporary directory.  VHOST_BLK_FUZZ_SEED fixes the
# run's seed.

. "$(dirname "$0")/test_common.sh"

_require_root

dir=$(dirname "$0")
fuzz=$dir/vhost_blk_fuzz
seconds=${VHOST_BLK_FUZZ_SECONDS:-60}
[ -x "$fuzz" ] || _skip_all "vhost_blk_fuzz is not built"

# The document: next to the staged suite in a checkout, or in a kernel tree.
doc=
for d in "${VHOST_BLK_DOC:-}" "$dir/../../../Documentation/virt/vhost-blk.rst" \
	 "$dir/../../../../Documentation/virt/vhost-blk.rst"; do
	[ -n "$d" ] && [ -r "$d" ] && { doc=$d; break; }
done

if [ -n "${VHOST_BLK_VM_OUT:-}" ]; then
	out=$VHOST_BLK_VM_OUT/fuzz-corpus
else
	out=$(mktemp -d /tmp/vb-fuzz-corpus.XXXXXX)
fi
mkdir -p "$out"
args=(--time "$seconds" --corpus "$out" --seed-corpus "$dir/fuzz-corpus")
[ -d "${VHOST_BLK_FUZZ_CORPUS:-}" ] &&
	args+=(--seed-corpus "$VHOST_BLK_FUZZ_CORPUS")
[ -n "${VHOST_BLK_FUZZ_SEED:-}" ] && args+=(--seed "$VHOST_BLK_FUZZ_SEED")

ktap_print_header
ktap_set_plan 2

name=errno_table_matches_vhost_blk_rst
if [ -z "$doc" ]; then
	ktap_test_skip "$name: Documentation/virt/vhost-blk.rst not found"
elif "$fuzz" --check-doc "$doc"; then
	ktap_test_pass "$name"
else
	ktap_test_fail "$name"
fi

name=fuzz_${seconds}s_every_oracle_holds
if ! _module_loaded; then
	ktap_test_skip "$name: vhost_blk is not loaded"
else
	# The fuzzer's own lines become KTAP diagnostics.
	log=$(mktemp /tmp/vb-fuzz-log.XXXXXX)
	"$fuzz" "${args[@]}" 2>&1 | tee "$log" | sed -e 's/^\([^#]\)/# \1/'
	status=${PIPESTATUS[0]}
	# With kcov: the PCs reached against the module's instrumented
	# sites, one call of __sanitizer_cov_trace_pc each.
	reached=$(sed -n 's/.*coverage: \([0-9]*\) distinct vhost_blk PCs.*/\1/p' "$log")
	if [ -n "$reached" ] && [ -f "${VHOST_BLK_MODULE:-}" ] &&
	   command -v readelf >/dev/null; then
		sites=$(readelf -rW "$VHOST_BLK_MODULE" |
			grep -c '__sanitizer_cov_trace_pc' || true)
		[ "${sites:-0}" -gt 0 ] &&
			echo "# coverage: $reached of $sites instrumented sites of vhost_blk.ko ($((reached * 100 / sites))%)"
	fi
	rm -f "$log"
	case $status in
	0)	ktap_test_pass "$name" ;;
	4)	ktap_test_skip "$name: the fuzzer had nothing to run on" ;;
	*)	ktap_test_fail "$name" ;;
	esac
fi
ktap_finished
