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
	sparse fio e2fsprogs util-linux dmsetup
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
