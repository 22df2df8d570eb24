# SPDX-License-Identifier: GPL-2.0
#
# The packaging stage of "make check", sourced by check (it uses check's
# check_run, check_ktap, check_pass, check_fail, $check_dir and $timeout):
# build the .debs, install them here with apt-get as a user would, check
# that DKMS built and installed vhost_blk for each kernel of the matrix, boot
# each of them and run the whole selftest suite against the DKMS module
# loaded with "modprobe vhost_blk", then purge the packages and check that
# nothing of them is left.
#
# The matrix: Debian 12's 6.1, and its 6.12 and 6.12 PREEMPT_RT kernels.

CHECK_PKG_PACKAGES=(
	dkms debhelper dh-dkms dpkg-dev lintian
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
	linux-image-6.12-rt-amd64 linux-headers-6.12-rt-amd64
)
CHECK_PKG_DEBS=(vhost-blk-dkms vhost-blk-dev)
# Two checks installing and purging the same packages at once would pull
# the module out from under each other's VMs.
CHECK_PKG_LOCK=/run/lock/vhost-blk-packaging.lock

# check_pkg_kernels: the newest installed kernel of each series of the
# matrix that has modules and headers, one per line.
check_pkg_kernels()
{
	local pattern image version

	for pattern in '6.1.*-amd64' '6.12.*[0-9]-amd64' '6.12.*-rt-amd64'; do
		for image in /boot/vmlinuz-$pattern; do
			version=${image#/boot/vmlinuz-}
			[ -e "/lib/modules/$version/modules.dep" ] &&
				[ -e "/lib/modules/$version/build/Makefile" ] &&
				echo "$version"
		done | sort -V | tail -n 1
	done
}

# check_pkg_leftovers: print whatever of vhost-blk's packages is installed.
check_pkg_leftovers()
{
	dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${CHECK_PKG_DEBS[@]}" 2>/dev/null |
		grep -v '^not-installed' || true
	dkms status -m vhost-blk 2>/dev/null
	ls -d /usr/src/vhost-blk-* /usr/include/linux/vhost_blk.h \
		/lib/modules/*/updates/dkms/vhost_blk.ko* 2>/dev/null || true
}

check_pkg_build_debs()
{
	"$VB_TOP/scripts/build-deb" "$check_dir/deb" >"$check_dir/debs"
}

# check_pkg_lintian DEB...: no lintian error or warning; the overrides
# in debian/*.lintian-overrides say why a tag does not apply to us.
check_pkg_lintian()
{
	lintian --pedantic --fail-on error,warning "$@" 2>&1 |
		grep -v '^running with root privileges'
	[ "${PIPESTATUS[0]}" -eq 0 ]
}

check_pkg_apt()
{
	vb_as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get -o DPkg::Lock::Timeout=600 -y "$@"
}

check_pkg_install()
{
	check_pkg_apt install "$@"
}

check_pkg_purge()
{
	check_pkg_apt purge "${CHECK_PKG_DEBS[@]}"
}

check_pkg_purged()
{
	local left

	check_pkg_purge || return
	left=$(check_pkg_leftovers)
	[ -z "$left" ] || { echo "left behind: $left"; return 1; }
}

# check_pkg_dkms_built KVER VERSION: DKMS built and installed VERSION for
# KVER, and modprobe resolves vhost_blk to it.
check_pkg_dkms_built()
{
	local kver=$1 version=$2 path

	dkms status -m vhost-blk -v "$version" -k "$kver" | tee /dev/stderr |
		grep -q ": installed" || return
	path=$(modinfo -k "$kver" -n vhost_blk) || return
	echo "modprobe vhost_blk loads $path"
	[[ $path == /lib/modules/$kver/updates/dkms/vhost_blk.ko* ]] &&
		[ "$(modinfo -F version "$path")" = "$version" ]
}

# check_pkg_suites BUILT SUITE_KVER KVER...: the selftests on each KVER,
# with DKMS's module.  The suite ran on SUITE_KVER already, from the same
# sources: there the VM only checks that modprobe loads DKMS's build.  On
# the others the suite runs side by side, two VMs at once: each is waiting
# most of the time (for dm-delay, timeouts, sleeps), using about a third
# of the machine's two CPUs.  Their output follows, one after the other.
check_pkg_suites()
{
	local built=$1 suite_kver=$2 kver status
	local -a suites=() pids=()

	shift 2
	for kver; do
		if [ -z "$built" ]; then
			check_fail "selftests on $kver, modprobe'd from DKMS: not run, the build failed"
		elif [ "$kver" = "$suite_kver" ]; then
			check_run "packaging: modprobe vhost_blk on $kver loads the DKMS module (VM)" \
				"$VB_TOOLS/vm" --kernel "$kver" --module modprobe \
				--timeout "$timeout" -- test -c /dev/vhost-blk
		else
			echo "# booting $kver: modprobe vhost_blk from DKMS, then the selftests"
			VHOST_BLK_FUZZ_SECONDS=$CHECK_MATRIX_FUZZ_SECONDS \
				"$VB_TOOLS/vm" --kernel "$kver" --module modprobe \
				--timeout "$timeout" >"$check_dir/suite-$kver.out" \
				2>"$check_dir/suite-$kver.err" &
			pids+=($!)
			suites+=("$kver")
		fi
	done
	for kver in "${suites[@]}"; do
		status=0
		wait "${pids[0]}" || status=$?
		pids=("${pids[@]:1}")
		echo "# selftests on $kver, modprobe'd from DKMS:"
		cat "$check_dir/suite-$kver.err" >&2
		check_ktap_output "selftests on $kver, modprobe'd from DKMS (exit status, guest kernel log)" \
			"$status" "$check_dir/suite-$kver.out"
	done
}

# check_packaging BUILT SUITE_KVER: the whole stage; BUILT is empty when
# the module or the selftests did not build.  The suite ran on SUITE_KVER
# already: there DKMS's module is only loaded, elsewhere the suite runs on
# it.
check_packaging()
{
	local built=$1 suite_kver=$2 version kver kernels debs lock_fd
	local stage_start=$SECONDS

	check_run "packaging: install dkms, debhelper and the kernels" \
		vb_need_packages "${CHECK_PKG_PACKAGES[@]}" || return
	exec {lock_fd}>"$CHECK_PKG_LOCK"
	flock "$lock_fd"
	if [ -n "$(check_pkg_leftovers)" ]; then
		check_fail "packaging: not run: vhost-blk is installed on this machine ($(check_pkg_leftovers | tr '\n' ' ')); remove it first"
		exec {lock_fd}>&-
		return
	fi

	version=$(make -s --no-print-directory -C "$VB_TOP" version)
	mapfile -t kernels < <(check_pkg_kernels)
	echo "# packaging vhost-blk $version for ${kernels[*]}"
	if check_run "packaging: build the .debs" check_pkg_build_debs; then
		mapfile -t debs <"$check_dir/debs"
		check_run "packaging: lintian on ${debs[*]##*/}" \
			check_pkg_lintian "${debs[@]}"
		# Whatever ends the run from here on, leave no package behind.
		trap 'check_pkg_purge >/dev/null 2>&1; rm -rf "$check_dir"' EXIT
		if check_run "packaging: apt-get install ${debs[*]##*/}" \
			check_pkg_install "${debs[@]}"; then
			for kver in "${kernels[@]}"; do
				check_run "packaging: DKMS built and installed vhost_blk $version for $kver" \
					check_pkg_dkms_built "$kver" "$version"
			done
			check_pkg_suites "$built" "$suite_kver" "${kernels[@]}"
		fi
		check_run "packaging: apt-get purge removes the packages, the module and the source" \
			check_pkg_purged
		trap 'rm -rf "$check_dir"' EXIT
	fi
	if [ ${#kernels[@]} -eq 3 ]; then
		check_pass "packaging: kernel matrix complete (${kernels[*]})"
	else
		check_fail "packaging: kernel matrix incomplete: only ${kernels[*]} installed with headers"
	fi
	exec {lock_fd}>&-
	echo "# packaging stage took $((SECONDS - stage_start)) s"
}
