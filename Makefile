# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of vhost_blk.ko, its selftests, and the checks CI runs.
#
#   make [KVER=6.1.0-56-amd64 | KDIR=/path/to/build]   build the module
#   make selftests                                      build the selftests
#   make check                                          everything CI runs
#   make check-quick                                    all but check-debug
#   make check-debug                                    selftests on a KASAN/lockdep/kmemleak kernel
#   make check-e2e [QEMU_VERSION=10.2]                  vhost-blk-pci guests, nested KVM
#   make fuzz [DURATION=600]                            the fuzzer, with kcov, on the debug kernel
#   make soak [DURATION=600] [SOAK_KERNEL=debian]       verified I/O under injected faults
#   make demo                                           show it in a VM
#   sudo make install                                   install it into updates/
#   make deb                                            the Debian packages

TOOLS := $(CURDIR)/tools/testing/vhost_blk
ifeq ($(origin KVER),undefined)
KVER := $(shell $(TOOLS)/kernel-version)
endif
KDIR ?= /lib/modules/$(KVER)/build
M := $(CURDIR)/drivers/vhost
KBUILD_ARGS = -C $(KDIR) M=$(M) CONFIG_VHOST_BLK=m KCPPFLAGS="-I$(CURDIR)/include"

# The one home of the version is VHOST_BLK_VERSION in drivers/vhost/blk.c;
# dkms.conf reads it from there, and so does everything else through it.
VERSION = $(shell bash -c '. $(CURDIR)/dkms.conf && echo "$$PACKAGE_VERSION"')
# The release of the kernel in KDIR, for depmod.
KRELEASE = $(shell cat $(KDIR)/include/config/kernel.release)

# Build products that are not kbuild's live here (gitignored).
BUILD ?= $(CURDIR)/build
# The selftests are staged next to the kernel's lib.mk, as in a kernel tree.
KSFT := $(BUILD)/kselftest
SELFTESTS := $(CURDIR)/tools/testing/selftests/vhost_blk

all: module

module:
	$(MAKE) $(KBUILD_ARGS) modules

# As a distribution's module would be, in /lib/modules/<release>/updates/,
# where it takes precedence over an in-tree vhost_blk.
install: module
	$(MAKE) $(KBUILD_ARGS) INSTALL_MOD_DIR=updates modules_install
	depmod -a $(KRELEASE)

uninstall:
	rm -f /lib/modules/$(KRELEASE)/updates/vhost_blk.ko*
	rmdir --ignore-fail-on-non-empty /lib/modules/$(KRELEASE)/updates
	depmod -a $(KRELEASE)

version:
	@echo $(VERSION)

# vhost-blk-dkms and vhost-blk-dev, in build/deb.
deb:
	$(CURDIR)/scripts/build-deb $(BUILD)/deb

# sparse over every source file, whether or not it needs rebuilding.
sparse:
	$(MAKE) $(KBUILD_ARGS) C=2 modules

selftests:
	@ksrc=$$($(TOOLS)/kernel-source) && \
	mkdir -p $(KSFT)/vhost_blk && \
	cp -a $$ksrc/tools/testing/selftests/. $(KSFT)/ && \
	cp -a $(SELFTESTS)/. $(KSFT)/vhost_blk/ && \
	cp -a $(CURDIR)/contrib/bpftrace/*.bt $(KSFT)/vhost_blk/
	$(MAKE) -C $(KSFT)/vhost_blk OUTPUT=$(KSFT)/vhost_blk USERCFLAGS=-Werror \
		KHDR_INCLUDES="-isystem $(CURDIR)/include/uapi"

# KVER from the command line picks the kernel to check against; otherwise
# the scripts use Debian 12's own kernel series.
VM_KERNEL = $(if $(filter command line environment,$(origin KVER)),--kernel $(KVER))

# One after the other: check-quick starts with "make clean".
check:
	@$(TOOLS)/check $(VM_KERNEL)

check-quick:
	@$(TOOLS)/check --no-debug $(VM_KERNEL)

# The sanitizer stage: builds (once, ~20 min, cached) a debug kernel.
check-debug:
	@$(TOOLS)/check-debug

# The fuzzer alone, coverage-guided on the sanitizer kernel, for DURATION
# seconds (default 600); what it finds joins the cached corpus.
DURATION ?= 600
fuzz:
	@VHOST_BLK_FUZZ_SECONDS=$(DURATION) $(TOOLS)/check-debug \
		--only fuzz_coverage_test.sh --timeout $$(( $(DURATION) + 900 ))

# The soak alone: verified I/O on several devices while faults are
# injected, for DURATION seconds, on the sanitizer kernel (kmemleak,
# KASAN, lockdep); SOAK_KERNEL=debian runs it on Debian's kernel instead
# (KVER picks which), much faster.
soak:
ifeq ($(SOAK_KERNEL),debian)
	@$(MAKE) -s module selftests
	@cd $(KSFT)/vhost_blk && VHOST_BLK_SOAK_SECONDS=$(DURATION) \
		$(TOOLS)/vm $(VM_KERNEL) --timeout $$(( $(DURATION) + 600 )) \
		-- ./soak_test.sh
else
	@VHOST_BLK_SOAK_SECONDS=$(DURATION) $(TOOLS)/check-debug \
		--only soak_test.sh --timeout $$(( $(DURATION) + 900 ))
endif

# Only the end-to-end tests (part of check): patched QEMU, nested KVM.
check-e2e:
	$(TOOLS)/e2e $(VM_KERNEL) $(if $(QEMU_VERSION),--qemu-version $(QEMU_VERSION))

demo:
	@$(TOOLS)/demo $(VM_KERNEL)

# The micro benchmark in one VM boot; BENCH_ARGS=--quick for a short run.
bench: module selftests
	@$(TOOLS)/bench $(VM_KERNEL) $(BENCH_ARGS)

clean:
	$(MAKE) $(KBUILD_ARGS) clean
	rm -rf $(BUILD)

.PHONY: all module install uninstall version deb sparse selftests check check-quick check-debug check-e2e fuzz soak demo bench clean
