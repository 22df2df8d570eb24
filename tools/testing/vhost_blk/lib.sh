# SPDX-License-Identifier: GPL-2.0
#
# Helpers shared by the vhost-blk build and test scripts.  Source it, do not
# run it.  Every name starts with vb_ so that callers can tell ours apart.

VB_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VB_TOP=$(cd "$VB_TOOLS/../../.." && pwd)
# Everything expensive to rebuild (initramfs, extracted kernel sources) lives
# here, outside the repository, under names that change when their inputs do.
VB_CACHE=${VHOST_BLK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-blk}
# Debian's linux-source-6.12 gives us checkpatch and the kselftest harness.
VB_LINUX_SOURCE=/usr/src/linux-source-6.12.tar.xz
# The kernel series booted when no version is named: Debian 12's own.
VB_DEFAULT_SERIES=6.1

# What building, checking and running the module in a VM needs, on a fresh
# Debian 12.  The guest runs the host's own tools, so this covers both.
VB_PACKAGES=(
	build-essential perl kmod xz-utils zstd cpio
	linux-image-amd64 linux-headers-amd64 linux-source-6.12
	qemu-system-x86 busybox-static
	sparse fio e2fsprogs xfsprogs util-linux dmsetup procps
	bpftrace
)

vb_log()
{
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

vb_die()
{
	vb_log "error: $*"
	exit 1
}

vb_as_root()
{
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# vb_need_packages PACKAGE...: install whichever Debian packages are missing.
# The package lists are refreshed once per process, and only when needed.
vb_need_packages()
{
	local missing=() pkg

	for pkg in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null |
			grep -qx installed || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	vb_log "installing ${missing[*]}"
	if [ -z "${vb_apt_updated:-}" ]; then
		vb_as_root apt-get update -qq
		vb_apt_updated=1
	fi
	vb_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >&2
}

# vb_kernel_version [SERIES]: the newest kernel of SERIES (6.1, 6.12, ...)
# installed with its modules and headers, so that we can both build for it
# and boot it.
vb_kernel_version()
{
	local series=${1:-$VB_DEFAULT_SERIES} image version

	for image in /boot/vmlinuz-"$series".*; do
		version=${image#/boot/vmlinuz-}
		[ -e "/lib/modules/$version/modules.dep" ] &&
			[ -e "/lib/modules/$version/build/Makefile" ] &&
			echo "$version"
	done | sort -V | tail -n 1
}

# vb_need_kernel VERSION: install the image and headers of VERSION.
vb_need_kernel()
{
	vb_need_packages "linux-image-$1" "linux-headers-$1"
}

# vb_kernel_source: print the directory holding the few files we use from
# linux-source-6.12 (checkpatch, the kselftest harness), extracting them
# into the cache the first time.
vb_kernel_source()
{
	local files=(
		scripts/checkpatch.pl
		scripts/spelling.txt
		scripts/const_structs.checkpatch
		tools/testing/selftests/lib.mk
		tools/testing/selftests/kselftest.h
		tools/testing/selftests/kselftest_harness.h
		tools/testing/selftests/kselftest
	)
	local key dir tmp

	[ -r "$VB_LINUX_SOURCE" ] || vb_die "$VB_LINUX_SOURCE is missing (apt-get install linux-source-6.12)"
	key=$(stat -L -c '%s-%Y' "$VB_LINUX_SOURCE")-$(echo "${files[*]}" | md5sum | cut -c1-8)
	dir=$VB_CACHE/linux-source-6.12-$key
	if [ ! -e "$dir/.complete" ]; then
		vb_log "extracting ${#files[@]} paths from $VB_LINUX_SOURCE"
		mkdir -p "$VB_CACHE"
		tmp=$(mktemp -d "$dir.XXXXXX")
		tar -xJf "$VB_LINUX_SOURCE" -C "$tmp" --strip-components=1 \
			"${files[@]/#/linux-source-6.12/}"
		touch "$tmp/.complete"
		# Another run may have won the race; either copy is fine.
		mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	fi
	echo "$dir"
}

# Bounded waits.  A process stuck in the kernel (D state) ignores SIGKILL
# until it wakes, and whoever waits for it - timeout(1) too - waits with
# it: so we never wait without a limit, we poll, and a process that outlives
# its SIGKILL is reported with its kernel stack rather than waited for.

# Seconds between a SIGTERM and the SIGKILL after it, and after the SIGKILL
# until a process that is still there counts as stuck.
VB_KILL_GRACE=10
# The status of a wait that gave up on a process that survived SIGKILL.
VB_STUCK=125

# vb_task_stack PID: one task's name, state and kernel stack (root only).
vb_task_stack()
{
	local pid=$1

	printf '%s (%s) %s\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null)" \
		"$(grep '^State:' "/proc/$pid/status" 2>/dev/null)"
	sed 's/^/    /' "/proc/$pid/stack" 2>/dev/null || true
}

# vb_dump_stuck [PID]...: print the kernel stacks of PID and its children
# and of every task in D state; as root, also have the kernel log blocked
# tasks (sysrq w) and every task (sysrq t) on its console.
vb_dump_stuck()
{
	local pid

	for pid in "$@" $(pgrep -P "$(echo "$@" | tr ' ' ,)" 2>/dev/null); do
		vb_task_stack "$pid"
	done
	echo "tasks in D state:"
	for pid in $(grep -l '^State:[[:space:]]*D' /proc/[0-9]*/status 2>/dev/null |
		     cut -d/ -f3); do
		vb_task_stack "$pid"
	done
	if [ -w /proc/sysrq-trigger ]; then
		echo "blocked tasks (sysrq w) and all tasks (sysrq t) are in the kernel log"
		# sysrq's dumps are KERN_INFO: let them reach the console.
		echo 8 >/proc/sys/kernel/printk
		echo w >/proc/sysrq-trigger
		echo t >/proc/sysrq-trigger
	fi
}

# vb_wait_child PID SECONDS WHAT: wait at most SECONDS for our child PID;
# its exit status, or VB_STUCK (with a message naming WHAT) if it is still
# there.
vb_wait_child()
{
	local pid=$1 limit=$2 what=$3 start=$SECONDS rc=0

	while kill -0 "$pid" 2>/dev/null; do
		if [ $((SECONDS - start)) -ge "$limit" ]; then
			vb_log "error: gave up after $limit s waiting for $what (pid $pid)"
			return "$VB_STUCK"
		fi
		sleep 0.2
	done
	wait "$pid" || rc=$?
	return "$rc"
}

# vb_stop_child PID WHAT: end our child PID: SIGTERM, then SIGKILL; if it
# survives that, print its kernel stack and every D-state task's and
# return VB_STUCK.  Otherwise its exit status.
vb_stop_child()
{
	local pid=$1 what=$2 rc=0

	kill -TERM "$pid" 2>/dev/null
	vb_wait_child "$pid" "$VB_KILL_GRACE" "$what to exit on SIGTERM" 2>/dev/null || rc=$?
	[ "$rc" -eq "$VB_STUCK" ] || return "$rc"
	kill -KILL "$pid" 2>/dev/null
	rc=0
	vb_wait_child "$pid" "$VB_KILL_GRACE" "$what to exit on SIGKILL" || rc=$?
	[ "$rc" -eq "$VB_STUCK" ] || return "$rc"
	vb_log "error: $what (pid $pid) survived SIGKILL: stuck in the kernel"
	vb_dump_stuck "$pid" >&2
	return "$VB_STUCK"
}

# vb_timeout_leftovers PID WHAT: after timeout(1) PID ended by SIGKILL, the
# processes of its group that outlived it.  timeout runs its command in a
# process group of its own and sends its SIGKILL to the whole group, itself
# included, so what is left of the group a while later survived SIGKILL:
# report it with its stacks and return VB_STUCK.
vb_timeout_leftovers()
{
	local pid=$1 what=$2 left _

	for _ in $(seq "$VB_KILL_GRACE"); do
		left=$(pgrep -g "$pid" | tr '\n' ' ')
		[ -n "$left" ] || return 0
		sleep 1
	done
	vb_log "error: $what survived SIGKILL: stuck in the kernel"
	# shellcheck disable=SC2086 # one argument per pid
	vb_dump_stuck $left >&2
	return "$VB_STUCK"
}

# vb_bounded SECONDS WHAT COMMAND...: run COMMAND under timeout -k, and say
# what was waited for when it times out (status 124 or 137) or survives
# SIGKILL (VB_STUCK, with stacks).  Otherwise COMMAND's status.
vb_bounded()
{
	local limit=$1 what=$2 pid rc=0

	shift 2
	timeout -k "$VB_KILL_GRACE" "$limit" "$@" &
	pid=$!
	vb_wait_child "$pid" $((limit + 2 * VB_KILL_GRACE)) "$what" 2>/dev/null || rc=$?
	case "$rc" in
	124|137)
		vb_log "error: timed out after $limit s waiting for $what"
		vb_timeout_leftovers "$pid" "$what" || rc=$?
		;;
	"$VB_STUCK")
		vb_log "error: $what survived SIGKILL after a $limit s timeout: stuck in the kernel"
		vb_dump_stuck "$pid" >&2
		;;
	esac
	return "$rc"
}

# vb_checkpatch KSRC [TREE]: KSRC's checkpatch.pl --strict over our files:
# the driver, its uapi header and the selftests in the checkout, or only
# the driver and the header as they are in the kernel tree TREE that they
# were copied into (checked as part of that tree, without --no-tree).
vb_checkpatch()
(
	local ksrc=$1 tree=${2:-} f files=() cp

	cp=(perl "$ksrc/scripts/checkpatch.pl" --strict --quiet --show-types)
	[ -n "$tree" ] || cp+=(--no-tree)
	for f in "$VB_TOP"/drivers/vhost/*.[ch]; do
		# kbuild generates *.mod.c next to the sources; the compat
		# and trace headers are checked on their own below.
		f=${f#"$VB_TOP"/}
		[[ $f == *.mod.c || $f == */blk_compat.h ||
		   $f == */blk_trace.h ]] || files+=("$f")
	done
	files+=(include/uapi/linux/vhost_blk.h)
	cd "${tree:-$VB_TOP}" || return
	"${cp[@]}" -f "${files[@]}" || return
	# Version checks are what the compat header is for.
	"${cp[@]}" --ignore LINUX_VERSION_CODE,CONSTANT_COMPARISON \
		-f drivers/vhost/blk_compat.h || return
	# TRACE_EVENT() arguments are laid out as in include/trace/events/.
	"${cp[@]}" --ignore PARENTHESIS_ALIGNMENT,OPEN_ENDED_LINE \
		-f drivers/vhost/blk_trace.h || return
	[ -z "$tree" ] || return 0
	# User space has no BIT() or __aligned(), and checkpatch reads the
	# harness's FIXTURE_DATA(name) *self as a multiplication.
	"${cp[@]}" --ignore SPACING,BIT_MACRO,PREFER_DEFINED_ATTRIBUTE_MACRO \
		-f tools/testing/selftests/vhost_blk/*.[ch]
)

# The newest kernels come from Debian unstable, in a root file system of
# their own (tools/testing/vhost_blk/sid-root) rather than in the host's
# apt sources.  What it holds: the kernel to build for and boot, its
# compiler, and what the selftests and the VM runner use in the guest
# (the Debian 12 list above, less what only the host needs); DKMS; and
# the kernel's source with what preparing it needs (intree-build).
VB_SID_SUITE=sid
VB_SID_PACKAGES=(
	gcc make libc6-dev perl kmod xz-utils zstd cpio
	linux-image-amd64 linux-headers-amd64
	busybox-static fio e2fsprogs util-linux dmsetup procps
	dkms
	linux-source bc bison flex libelf-dev libssl-dev
)

# vb_sid_root [--refresh]: print the path of the cached Debian unstable
# root, making it first when missing.
vb_sid_root()
{
	"$VB_TOOLS/sid-root" "$@"
}

# vb_sid_root_dir SUITE: where the root of SUITE lives, under a name that
# changes with what goes into it: the suite, the packages, the code that
# makes it.
vb_sid_root_dir()
{
	local key

	key=$({ echo "$1"; echo "${VB_SID_PACKAGES[*]}";
		declare -f vb_sid_root_make vb_in_root vb_debian_mirror; } |
		md5sum | cut -c1-12)
	echo "$VB_CACHE/root-$1-$key"
}

# vb_debian_mirror: the Debian mirror the host's apt sources name, for
# debootstrap; VHOST_BLK_MIRROR overrides it.
vb_debian_mirror()
{
	local codename

	if [ -n "${VHOST_BLK_MIRROR:-}" ]; then
		echo "$VHOST_BLK_MIRROR"
		return
	fi
	codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
	{
		# deb822 stanzas: the URIs of one whose Suites has our codename.
		{ cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
			awk -v want="$codename" '
			/^$/ { if (ok && uri) print uri; uri = ""; ok = 0; deb = 0 }
			/^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) ok = 1 }
			END { if (ok && deb && uri) print uri }'
		# One-line sources: deb [options] URI SUITE COMPONENT...
		{ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
			sed -E 's/\[[^]]*\]//' |
			awk -v want="$codename" '$1 == "deb" && $3 == want { print $2 }'
	} | head -n 1 | grep . || vb_die "no Debian mirror for $codename in /etc/apt: set VHOST_BLK_MIRROR"
}

# vb_in_root ROOT [DIR]... -- COMMAND...: run COMMAND chrooted in ROOT, with
# /proc, /sys, /dev and each DIR of the host bound at the same path, in a
# mount namespace of its own so that nothing stays mounted afterwards.
vb_in_root()
{
	local root=$1 dirs=()

	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		dirs+=("$1")
		shift
	done
	shift
	vb_as_root unshare --mount --propagation private /bin/sh -ec '
		root=$1 n=$2
		shift 2
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"
		mount --rbind /dev "$root/dev"
		mount -t tmpfs tmpfs "$root/tmp"
		while [ "$n" -gt 0 ]; do
			mkdir -p "$root$1"
			mount --bind "$1" "$root$1"
			shift
			n=$((n - 1))
		done
		exec chroot "$root" /usr/bin/env -i \
			PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"
	' sh "$root" "${#dirs[@]}" "${dirs[@]}" "$@"
}

# vb_sid_root_make SUITE DIR: debootstrap SUITE with VB_SID_PACKAGES into a
# temporary directory and rename it to DIR, replacing an older DIR.
vb_sid_root_make()
{
	local suite=$1 root=$2 mirror tmp old valid_until

	vb_need_packages debootstrap
	mirror=$(vb_debian_mirror)
	vb_log "making a $suite root in $root (debootstrap; takes minutes)"
	mkdir -p "$VB_CACHE"
	tmp=$(mktemp -d "$root.new.XXXXXX")
	vb_as_root debootstrap --variant=minbase --components=main \
		"$suite" "$tmp" "$mirror" >&2 ||
		{ tail -n 30 "$tmp/debootstrap/debootstrap.log" >&2 2>/dev/null; vb_as_root rm -rf "$tmp"; return 1; }
	chmod 0755 "$tmp"
	# Apt in the root trusts the mirror as the host's apt does: a mirror
	# that is a snapshot serves Release files past their Valid-Until.
	valid_until=$(apt-config dump Acquire::Check-Valid-Until | sed -n 's/^Acquire::Check-Valid-Until "\(.*\)";$/\1/p')
	[ -z "$valid_until" ] ||
		echo "Acquire::Check-Valid-Until \"$valid_until\";" >"$tmp/etc/apt/apt.conf.d/90vhost-blk-host"
	# The VM runner boots the kernel with an initramfs of its own: the
	# kernel's hooks need not make one (INITRD=No), and one made anyway
	# goes.
	vb_in_root "$tmp" -- /bin/sh -ec '
		export DEBIAN_FRONTEND=noninteractive INITRD=No
		apt-get -q update
		apt-get -y -q --no-install-recommends install "$@"
		apt-get clean
		rm -f /boot/initrd.img-*
	' sh "${VB_SID_PACKAGES[@]}" >&2 || { vb_as_root rm -rf "$tmp"; return 1; }
	[ -n "$(vb_sid_kernel_version "$tmp")" ] ||
		{ vb_as_root rm -rf "$tmp"; vb_die "no kernel with modules and headers in the new root"; }
	touch "$tmp/.vhost-blk-complete"
	# rename(2) cannot replace a non-empty directory: move the old one
	# aside first, then drop it.
	old=
	if [ -e "$root" ]; then
		old=$(mktemp -d "$root.old.XXXXXX")
		mv -T "$root" "$old/root"
	fi
	mv -T "$tmp" "$root"
	[ -z "$old" ] || vb_as_root rm -rf "$old"
	vb_log "made $root with Linux $(vb_sid_kernel_version "$root")"
}

# vb_sid_kernel_version ROOT: the newest kernel of ROOT with modules and
# headers.
vb_sid_kernel_version()
{
	local image version

	for image in "$1"/boot/vmlinuz-*; do
		version=${image##*/vmlinuz-}
		[ -e "$1/lib/modules/$version/modules.dep" ] &&
			[ -e "$1/lib/modules/$version/build/Makefile" ] &&
			echo "$version"
	done | sort -V | tail -n 1
}
