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
		for path in $(for m in virtio_pci virtio_blk; do
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

# nested_l2 LOG QMP-SOCKET SMP APPEND [QEMU-ARG]...: run the patched QEMU
# ($nested_qemu, kernel $nested_kernel, initramfs $nested_initramfs) with
# KVM in the background, console to LOG; sets nested_pid.
nested_l2()
{
	local log=$1 qmp=$2 smp=$3 append=$4

	shift 4
	"$nested_qemu" "${NESTED_FIRMWARE[@]}" -accel kvm -cpu max -M pc \
		-smp "$smp" -m 512M -nodefaults -no-user-config -nographic \
		-monitor none -serial "file:$log" \
		-qmp "unix:$qmp,server=on,wait=off" \
		-kernel "$nested_kernel" -initrd "$nested_initramfs" \
		-append "console=ttyS0 rdinit=/init quiet panic=-1 $append" \
		"$@" </dev/null 2>"$log.stderr" &
	nested_pid=$!
}

# nested_wait_line LOG PATTERN SECONDS [NTH]: wait until the NTH line of
# LOG matching PATTERN appears, or the L2 QEMU exits.
nested_wait_line()
{
	local log=$1 pattern=$2 limit=$3 nth=${4:-1} start=$SECONDS n

	while n=$(grep -a -c -- "$pattern" "$log" 2>/dev/null); [ "${n:-0}" -lt "$nth" ]; do
		kill -0 "$nested_pid" 2>/dev/null || return 1
		[ $((SECONDS - start)) -lt "$limit" ] || return 1
		sleep 0.5
	done
}

# nested_wait_exit SECONDS: wait for the L2 QEMU, killing it after
# SECONDS; returns its exit status (124 on timeout).
nested_wait_exit()
{
	local limit=$1 start=$SECONDS rc=0

	while kill -0 "$nested_pid" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			kill "$nested_pid" 2>/dev/null
			wait "$nested_pid" 2>/dev/null
			nested_pid=
			return 124
		fi
		sleep 0.5
	done
	wait "$nested_pid" || rc=$?
	nested_pid=
	return "$rc"
}

# Never leave an L2 QEMU behind.
nested_cleanup()
{
	if [ -n "${nested_pid:-}" ]; then
		kill "$nested_pid" 2>/dev/null || true
		wait "$nested_pid" 2>/dev/null || true
	fi
}

# nested_kvm: load KVM in L1 (the runner's -cpu max exposes SVM or VMX).
nested_kvm()
{
	modprobe kvm_amd 2>/dev/null || modprobe kvm_intel 2>/dev/null || true
	[ -c /dev/kvm ]
}
