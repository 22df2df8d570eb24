# SPDX-License-Identifier: GPL-2.0
#
# Helpers for running a nested (L2) guest on vhost-blk-pci inside the VM
# runner's (L1) guest: shared by e2e and demo.  Source it after lib.sh.
#
# L0 (this machine) builds the patched QEMU and the L2 initramfs; L1 is the
# runner's TCG guest with vhost_blk.ko and kvm_amd loaded, which runs the
# patched QEMU with -accel kvm; L2 is a Debian kernel with a busybox
# initramfs (l2-init) whose disks are vhost-blk-pci devices.

# Tools the L2 initramfs carries besides busybox, with their libraries.
NESTED_TOOLS=(fio blkdiscard lsblk blockdev)

# Where Debian's firmware is; the patched QEMU has only its own data dir.
NESTED_FIRMWARE=(-L /usr/share/qemu -L /usr/share/seabios)

# nested_pattern SEED: the 16 MiB pattern l2-init's pattern() writes.
nested_pattern()
{
	awk -v s="$1" 'BEGIN { for (i = 0; i < 262144; i++) printf "%-20.20s %012d %-29s\n", s, i, "vhost-blk end-to-end test" }'
}

# nested_initramfs KVER: print the path of the cached L2 initramfs for KVER.
nested_initramfs()
{
	local kver=$1 key out tmp bin lib tool path base unpack

	key=$(cat "$VB_TOOLS/l2-init" "$VB_TOOLS/nested.sh" /bin/busybox \
		"/lib/modules/$kver/modules.dep" $(command -v "${NESTED_TOOLS[@]}") |
		md5sum | cut -c1-12)
	out=$VB_CACHE/l2-initramfs-$kver-$key.cpio
	if [ ! -e "$out" ]; then
		mkdir -p "$VB_CACHE"
		tmp=$(mktemp -d "$VB_CACHE/l2-initramfs.XXXXXX")
		mkdir -p "$tmp"/{bin,dev,etc,lib/modules,proc,sys,tmp}
		cp /bin/busybox "$tmp/bin/"
		"$tmp/bin/busybox" --list | while read -r base; do
			[ -e "$tmp/bin/$base" ] || ln -s busybox "$tmp/bin/$base"
		done
		# In /opt/bin: busybox's shell runs its own applets of the same
		# name whatever PATH says, so l2-init calls these by path.
		mkdir -p "$tmp/opt/bin"
		for tool in "${NESTED_TOOLS[@]}"; do
			bin=$(command -v "$tool") || vb_die "$tool is not installed"
			cp "$bin" "$tmp/opt/bin/$tool"
			for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
				cp -L --parents "$lib" "$tmp/"
			done
		done
		cp "$VB_TOOLS/l2-init" "$tmp/init"
		chmod +x "$tmp/init"
		: >"$tmp/etc/modules"
		# vfat and its code pages: the firmware run mounts the
		# partition it booted from; ext4: the crash run's file system;
		# button and evdev: the power button the libvirt run presses.
		for path in $(for m in virtio_pci virtio_blk vfat nls_cp437 nls_ascii nls_utf8 ext4 button evdev; do
				modprobe -S "$kver" --show-depends "$m"
			      done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
			case "$path" in
			*.xz)	unpack="xz -dc" ;;
			*.zst)	unpack="zstd -qdc" ;;
			*.gz)	unpack="gzip -dc" ;;
			*)	unpack=cat ;;
			esac
			base=${path##*/}
			base=${base%.ko*}.ko
			$unpack "$path" >"$tmp/lib/modules/$base"
			echo "$base" >>"$tmp/etc/modules"
		done
		(cd "$tmp" && find . | cpio -o -H newc --quiet) | gzip -1 >"$tmp.cpio"
		mv "$tmp.cpio" "$out"
		rm -rf "$tmp"
	fi
	echo "$out"
}

# How many times an L2 guest boots: l2-init prints "E2E boot" first thing.
# No scenario reboots its guest, so a second boot is a failure (a reset
# that nobody asked for, or a panic: L2 runs with panic=-1).
NESTED_BOOTS=1

# nested_l2 LOG QMP-SOCKET SMP SECONDS APPEND [QEMU-ARG]...: run the patched
# QEMU ($nested_qemu, kernel $nested_kernel, initramfs $nested_initramfs)
# with KVM in the background, console to LOG, stderr to LOG.stderr; sets
# nested_pid.  The guest has SECONDS to power off (nested_wait_exit); 30 s
# before that its l2-init dumps its tasks' stacks on the console.  With
# NESTED_APPEND set, the console and stderr are appended to LOG and
# LOG.stderr: a guest migrated to this QEMU goes on writing to the same log.
# With NESTED_DISK_BOOT set, the firmware boots a disk of the QEMU-ARGs
# (whose boot loader passes the kernel its command line): no -kernel,
# -initrd or -append, and APPEND is not used.  NESTED_ACCEL: the
# accelerator (default kvm).
nested_l2()
{
	local log=$1 qmp=$2 smp=$3 limit=$4 append=$5 console=(-serial "file:$log")
	local boot=(-kernel "$nested_kernel" -initrd "$nested_initramfs"
		-append "console=ttyS0 rdinit=/init quiet panic=-1 e2e.watchdog=$((limit - 30)) $append")

	shift 5
	[ -z "${NESTED_DISK_BOOT:-}" ] || boot=()
	nested_log=$log
	nested_qmp=$qmp
	nested_limit=$limit
	nested_start=$SECONDS
	nested_ticks=$(nested_count '^E2E tick')
	nested_tick_at=
	if [ -n "${NESTED_APPEND:-}" ]; then
		console=(-chardev "file,id=console,path=$log,append=on" -serial chardev:console)
	else
		: >"$log.stderr"
	fi
	"$nested_qemu" "${NESTED_FIRMWARE[@]}" -accel "${NESTED_ACCEL:-kvm}" -cpu max -M pc \
		-smp "$smp" -m 512M -nodefaults -no-user-config -nographic \
		-monitor none "${console[@]}" \
		-qmp "unix:$qmp,server=on,wait=off" \
		"${boot[@]}" "$@" </dev/null 2>>"$log.stderr" &
	nested_pid=$!
}

# nested_count PATTERN: how many lines of the running L2 guest's console
# match PATTERN.
nested_count()
{
	local n

	n=$(grep -a -c -- "$1" "$nested_log" 2>/dev/null) || true
	echo "${n:-0}"
}

# nested_boots: how many times the running L2 guest has booted.
nested_boots()
{
	nested_count 'E2E boot'
}

# A guest whose l2-init printed its heartbeat ("E2E tick", every 10 s) and
# then printed none for NESTED_STALL seconds has stopped as a whole: a
# request that never completes blocks one task, not the heartbeat.
NESTED_STALL=90

# nested_stalled: whether the running L2 guest's heartbeat stopped (the
# count is taken at each call: callers poll).  Until the first new tick
# (a migrated guest's log has its source's) nothing counts as a stall.
nested_stalled()
{
	local n

	# (The checks of QEMUs that run no guest have no console.)
	[ -f "$nested_log" ] || return 1
	n=$(nested_count '^E2E tick')
	if [ "$n" -ne "$nested_ticks" ]; then
		nested_ticks=$n
		nested_tick_at=$SECONDS
		return 1
	fi
	[ -n "$nested_tick_at" ] && [ $((SECONDS - nested_tick_at)) -ge "$NESTED_STALL" ]
}

# nested_stall_report: what the stalled guest's QEMU is doing: its
# threads' kernel stacks (one blocked in vhost_blk is our fault, and says
# so) and where the guest's vCPUs are.  The line "# the L2 guest stalled"
# (which e2e's retry looks for) is printed only when no thread is in
# vhost_blk.
nested_stall_report()
{
	local task ours=

	for task in /proc/"$nested_pid"/task/*; do
		echo "# L2 QEMU thread ${task##*/} ($(cat "$task/comm" 2>/dev/null)), $(grep '^State:' "$task/status" 2>/dev/null):"
		sed 's/^/#     /' "$task/stack" 2>/dev/null
		! grep -q vhost_blk "$task/stack" 2>/dev/null || ours=1
	done
	vb_bounded 20 "QMP info registers" "$VB_TOOLS/qmp" --timeout 15 "$nested_qmp" \
		human-monitor-command '{"command-line": "info registers -a"}' 2>&1 |
		sed 's/\\r\\n/\n/g' | grep -E 'CPU#|RIP=|CR0=|EFL=' | sed 's/^/#   /' || true
	if [ -n "$ours" ]; then
		echo "# the L2 guest's heartbeat stopped with a QEMU thread in vhost_blk"
	else
		echo "# the L2 guest stalled: no heartbeat on its console for $NESTED_STALL s, no QEMU thread in vhost_blk: stopping it"
	fi
}

# nested_alive: whether the L2 QEMU runs, its guest booted no more than
# expected and has not stalled (nested_stalled); a guest that booted
# again or stalled is stopped.
nested_alive()
{
	local boots

	kill -0 "$nested_pid" 2>/dev/null || return 1
	boots=$(nested_boots)
	if [ "${boots:-0}" -gt "$NESTED_BOOTS" ]; then
		echo "# the L2 guest booted $boots times, $NESTED_BOOTS expected: stopping it"
	elif nested_stalled; then
		nested_stall_report
	else
		return 0
	fi
	nested_cleanup
	return 1
}

# nested_wait_line LOG PATTERN SECONDS [NTH]: wait until the NTH line of
# LOG matching PATTERN appears, or the L2 QEMU exits; says what it waited
# for when it gives up.
nested_wait_line()
{
	local log=$1 pattern=$2 limit=$3 nth=${4:-1} start=$SECONDS n

	while n=$(grep -a -c -- "$pattern" "$log" 2>/dev/null); [ "${n:-0}" -lt "$nth" ]; do
		if ! nested_alive; then
			echo "# the L2 QEMU exited before its console showed '$pattern'"
			return 1
		fi
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			echo "# no '$pattern' on the L2 console within $limit s"
			return 1
		fi
		sleep 0.5
	done
}

# nested_wait_exit: wait for the L2 QEMU until its time (nested_l2's
# SECONDS) is up, then stop it; returns its exit status, 124 on timeout,
# VB_STUCK when it survives SIGKILL (with its kernel stack printed).
nested_wait_exit()
{
	local left rc=0

	while nested_alive; do
		left=$((nested_start + nested_limit - SECONDS))
		if [ "$left" -le 0 ]; then
			echo "# timed out after $nested_limit s waiting for the L2 guest to power off"
			nested_cleanup || rc=$?
			[ "$rc" -eq "$VB_STUCK" ] || rc=124
			return "$rc"
		fi
		sleep 0.5
	done
	[ -n "$nested_pid" ] || return 1
	vb_wait_child "$nested_pid" 30 "the L2 QEMU to be reaped" || rc=$?
	nested_pid=
	return "$rc"
}

# Never leave an L2 QEMU behind; one that survives SIGKILL is reported.
nested_cleanup()
{
	local rc=0

	if [ -n "${nested_pid:-}" ]; then
		vb_stop_child "$nested_pid" "the L2 QEMU" 2> >(sed 's/^/# /') || rc=$?
	fi
	nested_pid=
	return "$rc"
}

# nested_kvm: load KVM in L1 (the runner's -cpu max exposes SVM or VMX).
# vgif=0: without virtual GIF, KVM intercepts the guest's STGI/CLGI and
# finds NMI windows the older way.  TCG's emulation of V_GIF is its
# youngest SVM path, and both L1 faults seen as the blockdev run's L2
# QEMU started (the frozen vCPUs; "scheduling while atomic" with an NMI
# count in preempt_count while L2 took a double fault) were in interrupt
# and NMI state.  Not proven to be the cause; L2 needs no virtual GIF.
nested_kvm()
{
	modprobe kvm_amd vgif=0 2>/dev/null || modprobe kvm_intel 2>/dev/null || true
	[ -c /dev/kvm ]
}
