# SPDX-License-Identifier: GPL-2.0
#
# The newest-kernel stage of "make check", sourced by check (it uses
# check's check_run, check_ktap, check_fail, check_no_warnings_in_our_files,
# $check_dir and $timeout): Debian unstable's kernel (Linux 7.2 today), from
# the cached root of tools/testing/vhost_blk/sid-root.  The module is built
# there, chrooted, with that release's compiler (W=1, no warnings in our
# files); then the VM runner boots that kernel with the root as the guest's
# root file system and runs the whole selftest suite.  Last, the .debs are
# installed in an overlay of the root (the cache stays as it was): DKMS must
# build and install the module for that kernel there, and the guest's
# "modprobe vhost_blk" must load it; and the in-tree build runs in that
# release's linux-source, with its checkpatch.pl --strict.

# Where the module for the root's kernel is built: a copy of drivers/vhost,
# whose own directory holds the build for the host's kernel (kbuild builds
# in the source directory).
CHECK_SID_MODULE=$VB_TOP/build/sid/module

check_sid_root()
{
	vb_sid_root >"$check_dir/sid-root"
}

# check_sid_build ROOT KVER: build vhost_blk.ko for KVER in ROOT.
check_sid_build()
{
	local root=$1 kver=$2 out=$CHECK_SID_MODULE f rc

	rm -rf "$out"
	mkdir -p "$out"
	for f in "$VB_TOP"/drivers/vhost/*.[ch] "$VB_TOP/drivers/vhost/Makefile"; do
		[[ $f == *.mod.c ]] || cp "$f" "$out/"
	done
	vb_in_root "$root" "$VB_TOP" -- make -C "$VB_TOP" KVER="$kver" \
		KDIR="/lib/modules/$kver/build" M="$out" W=1 module \
		>"$check_dir/sid-build.out" 2>&1
	rc=$?
	# Report warnings against the files they come from: since 6.13 kbuild
	# names the files of an M= build relative to M.
	sed -e "s|^\([A-Za-z0-9_.-]*\.[ch]:[0-9]\)|$out/\1|" \
		-e "s|$out/|$VB_TOP/drivers/vhost/|g" \
		"$check_dir/sid-build.out" >"$check_dir/sid-build.mapped"
	cat "$check_dir/sid-build.mapped"
	[ "$rc" -eq 0 ] && [ -e "$out/vhost_blk.ko" ] &&
		check_no_warnings_in_our_files "$check_dir/sid-build.mapped"
}

# check_sid_overlay ROOT DIR: mount an overlay of ROOT on DIR/root, whose
# changes go to DIR/upper.
check_sid_overlay()
{
	mkdir -p "$2/upper" "$2/work" "$2/root" &&
	vb_as_root mount -t overlay overlay \
		-o "lowerdir=$1,upperdir=$2/upper,workdir=$2/work" "$2/root"
}

# check_sid_dkms ROOT KVER: in ROOT (the overlay), install the .debs with
# apt-get, and check that DKMS built and installed vhost_blk for KVER and
# that modprobe resolves vhost_blk to it.
check_sid_dkms()
{
	local root=$1 kver=$2 version path

	version=$(make -s --no-print-directory -C "$VB_TOP" version) &&
	"$VB_TOP/scripts/build-deb" "$check_dir/sid-deb" >"$check_dir/sid-debs" || return
	vb_in_root "$root" "$check_dir/sid-deb" -- env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $(cat "$check_dir/sid-debs") || return
	vb_in_root "$root" -- dkms status -m vhost-blk -v "$version" -k "$kver" |
		tee /dev/stderr | grep -q ": installed" || return
	path=$(modinfo -b "$root" -k "$kver" -n vhost_blk) || return
	path=${path#"$root"}
	echo "modprobe vhost_blk loads $path"
	[[ $path == /lib/modules/$kver/updates/dkms/vhost_blk.ko* ]] &&
		[ "$(modinfo -F version "$root$path")" = "$version" ]
}

# check_sid_start BUILT: the first half of the stage (BUILT is empty when
# the selftests did not build): the root, the module built in it, and the
# suite's VM started in the background, beside the packaging stage's two
# (each waits most of the time); check_sid_finish reports it.
check_sid_pid=
check_sid_start()
{
	local built=$1

	check_sid_stage_start=$SECONDS
	check_sid_kver=
	check_run "newest kernel: Debian $VB_SID_SUITE root (sid-root)" check_sid_root || return
	check_sid_root_dir=$(cat "$check_dir/sid-root")
	check_sid_kver=$(vb_sid_kernel_version "$check_sid_root_dir")
	echo "# newest kernel: $check_sid_kver, in $check_sid_root_dir"
	if ! check_run "build vhost_blk.ko for $check_sid_kver in the $VB_SID_SUITE root (W=1)" \
		check_sid_build "$check_sid_root_dir" "$check_sid_kver"; then
		check_fail "selftests on $check_sid_kver: not run, the build failed"
	elif [ -z "$built" ]; then
		check_fail "selftests on $check_sid_kver: not run, the selftests did not build"
	else
		echo "# booting $check_sid_kver with the $VB_SID_SUITE root for the selftests (output after the packaging stage's)"
		VHOST_BLK_FUZZ_SECONDS=$CHECK_MATRIX_FUZZ_SECONDS \
			"$VB_TOOLS/vm" --root "$check_sid_root_dir" --kernel "$check_sid_kver" \
			--module "$CHECK_SID_MODULE/vhost_blk.ko" --timeout "$timeout" \
			>"$check_dir/suite-sid.out" 2>"$check_dir/suite-sid.err" &
		check_sid_pid=$!
	fi
	check_sid_stage_time=$((SECONDS - check_sid_stage_start))
}

# check_sid_finish: the second half: the suite's results, DKMS in an
# overlay of the root, the in-tree build in that release's linux-source.
check_sid_finish()
{
	local root=${check_sid_root_dir:-} kver=$check_sid_kver series status
	local stage_start=$SECONDS

	[ -n "$kver" ] || return
	if [ -n "$check_sid_pid" ]; then
		status=0
		wait "$check_sid_pid" || status=$?
		check_sid_pid=
		echo "# selftests on $kver, $VB_SID_SUITE root:"
		cat "$check_dir/suite-sid.err" >&2
		check_ktap_output "selftests on $kver, $VB_SID_SUITE root (exit status, guest kernel log)" \
			"$status" "$check_dir/suite-sid.out"
	fi

	# DKMS, on a throwaway overlay of the root.
	if check_run "packaging: overlay of the $VB_SID_SUITE root for DKMS" \
		check_sid_overlay "$root" "$check_dir/sid-overlay"; then
		if check_run "packaging: DKMS built and installed vhost_blk for $kver in the $VB_SID_SUITE root" \
			check_sid_dkms "$check_dir/sid-overlay/root" "$kver"; then
			check_run "packaging: modprobe vhost_blk on $kver loads the DKMS module (VM)" \
				"$VB_TOOLS/vm" --root "$check_dir/sid-overlay/root" --kernel "$kver" \
				--module modprobe --timeout "$timeout" -- test -c /dev/vhost-blk
		fi
		vb_as_root umount "$check_dir/sid-overlay/root"
		vb_as_root rm -rf "$check_dir/sid-overlay"
	fi

	# The tree is prepared once, in the root with its compiler, into
	# the host's cache.
	series=$(echo "$kver" | cut -d. -f1,2)
	check_run "in-tree build in linux-source-$series (W=1, its checkpatch --strict)" \
		vb_in_root "$root" "$VB_TOP" "$VB_CACHE" -- \
		env VHOST_BLK_CACHE="$VB_CACHE" "$VB_TOOLS/intree-build" \
		--series "$series" --checkpatch
	echo "# newest-kernel stage took $((check_sid_stage_time + SECONDS - stage_start)) s (its suite's VM ran beside the packaging stage)"
}
