#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# contrib/bpftrace/vhost-blk-latency.bt, run for a few seconds of I/O,
# prints a latency histogram for the device's reads and writes.

. "$(dirname "$0")/test_common.sh"

_require_root
_require_module_loaded
command -v bpftrace >/dev/null || _skip_all "bpftrace is not installed"
# A kernel without BPF tracepoint programs (CONFIG_BPF_EVENTS) cannot run it.
why=$(timeout -k 5 600 bpftrace -e 'tracepoint:sched:sched_switch { exit(); }' 2>&1 >/dev/null) ||
	_skip_all "bpftrace cannot attach on this kernel: ${why//$'\n'/ }"
script=$(_bpftrace_script vhost-blk-latency.bt) ||
	_skip_all "vhost-blk-latency.bt is neither here nor in \$VHOST_BLK_TOP/contrib/bpftrace"

out=$(mktemp /tmp/vb-bt.XXXXXX)
file=$(mktemp /tmp/vb-bt-disk.XXXXXX)
truncate -s 16M "$file"

# __bt_stacks PID: the kernel stack of each thread of PID, as comments.
__bt_stacks()
{
	local t

	for t in /proc/"$1"/task/*; do
		echo "# $(cat "$t/comm" 2>/dev/null) $(cat "$t/stat" 2>/dev/null | cut -d' ' -f3):" \
			"$(tr '\n' ' ' <"$t/stack" 2>/dev/null)"
	done
}

# __trace_io: bpftrace up, then I/O for 3 s, then SIGINT prints the maps.
__trace_io()
{
	local bt i

	# SIGINT reaches bpftrace through timeout, which kills it -k
	# seconds later.  Its exit (the maps printed, its probes detached)
	# took more than 10 s under TCG on a loaded machine once; twice it
	# was still there 120 and 200 s later: 200 s keeps the program
	# inside kselftest's 300 s, and a slow exit shows its stacks.
	timeout -k 200 900 bpftrace "$script" >"$out" 2>&1 &
	bt=$!
	_wait_for_text "$out" "Tracing" 6000 "$bt" || {
		echo "# bpftrace did not start:"; sed 's/^/# /' "$out"
		kill -9 "$bt"; return 1
	}
	_flood_for "$file" 3 || { echo "# flood did not get ready"; return 1; }
	# The SIGINT goes to bpftrace itself, again every 10 s: once, one
	# was lost, and bpftrace sat in epoll_wait() until it was killed.
	kill -INT "$bt"
	for i in $(seq 1900); do
		kill -0 "$bt" 2>/dev/null || break
		if [ $((i % 100)) -eq 0 ]; then
			[ "$i" -ne 300 ] || {
				echo "# bpftrace still there 30 s after SIGINT; its threads' kernel stacks:"
				__bt_stacks "$(pgrep -P "$bt" -x bpftrace || echo none)"
			}
			pkill -INT -P "$bt" -x bpftrace
		fi
		sleep 0.1
	done
	wait "$bt"
}

__has_histogram()
{
	grep -qE '^@usecs\[[0-9]+, (0|1)\]:' "$out" &&
		grep -qE '^\[[0-9]+[KM]?, [0-9]+[KM]?\) +[0-9]+ \|' "$out" || {
		sed 's/^/# /' "$out"; return 1
	}
}

ktap_print_header
ktap_set_plan 2
ktap_test_result "bpftrace_script_runs_over_io" __trace_io
ktap_test_result "it_prints_a_latency_histogram_per_device_and_type" __has_histogram
rm -f "$out" "$file"
ktap_finished
