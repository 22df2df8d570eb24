// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk control plane: ownership, features, and the exact errno of
 * every malformed or ill-timed ioctl.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define ERRNO(call)	((call) < 0 ? errno : 0)

/* An open, un-owned device. */
FIXTURE(fresh) {
	int fd;
};

FIXTURE_SETUP(fresh)
{
	self->fd = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	self->fd = vb_open();
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(fresh)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(fresh, get_features_works_before_set_owner)
{
	uint64_t f = 0;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_GET_FEATURES, &f));
	ASSERT_EQ(0, ERRNO(ioctl(self->fd, VHOST_GET_BACKEND_FEATURES, &f)));
	ASSERT_EQ(0, f);
}

TEST_F(fresh, get_features_reports_exactly_the_served_bits)
{
	uint64_t f = 0;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_GET_FEATURES, &f));
	ASSERT_EQ(VB_F_EXPECTED, f) TH_LOG("features %#llx, expected %#llx",
					   (unsigned long long)f,
					   (unsigned long long)VB_F_EXPECTED);
	ASSERT_NE(0, f & (1ULL << VHOST_F_LOG_ALL));
}

TEST_F(fresh, ioctls_before_set_owner_fail_with_eperm)
{
	struct vhost_vring_state s = { .index = 0, .num = 128 };
	struct vhost_vring_file f = { .index = 0, .fd = -1 };
	struct vhost_vring_addr a = { 0 };
	struct vhost_memory m = { 0 };
	uint64_t feat = 1ULL << VIRTIO_F_VERSION_1;
	char serial[VIRTIO_BLK_ID_BYTES] = "x";

	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_FEATURES, &feat)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_MEM_TABLE, &m)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM, &s)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_BASE, &s)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_GET_VRING_BASE, &s)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_KICK, &f)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_CALL, &f)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ERR, &f)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_BLK_SET_SERIAL, serial)));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_RESET_OWNER, NULL)));
	feat = 0;
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_BACKEND_FEATURES,
				     &feat)));
}

TEST_F(fresh, set_owner_twice_fails_with_ebusy)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(EBUSY, ERRNO(ioctl(self->fd, VHOST_SET_OWNER, NULL)));
}

TEST_F(fresh, reset_owner_makes_device_unowned)
{
	struct vhost_vring_state s = { .index = 0, .num = 128 };

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_RESET_OWNER, NULL));
	ASSERT_EQ(EPERM, ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM, &s)));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_NUM, &s));
}

TEST_F(fresh, forked_child_ioctls_fail_with_eperm)
{
	int status;
	pid_t pid;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct vhost_vring_state s = { .index = 0, .num = 64 };
		uint64_t f = 1ULL << VIRTIO_F_VERSION_1;

		if (ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM, &s)) != EPERM)
			_exit(1);
		if (ERRNO(ioctl(self->fd, VHOST_SET_FEATURES, &f)) != EPERM)
			_exit(2);
		if (ERRNO(ioctl(self->fd, VHOST_RESET_OWNER, NULL)) != EPERM)
			_exit(3);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
}

TEST_F(fresh, unimplemented_ioctls_fail_with_enotty)
{
	struct vhost_vring_state s = { .index = 0, .num = 0 };
	uint64_t v = 0;
	struct termios t;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_GET_FEATURES_ARRAY, &v)));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_SET_FEATURES_ARRAY, &v)));
	/* Newer than 6.1, and not ours: the worker is always a kthread. */
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_SET_FORK_FROM_OWNER, &v)));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_GET_FORK_FROM_OWNER, &v)));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ENDIAN, &s)));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, VHOST_GET_VRING_ENDIAN, &s)));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, _IO(VHOST_VIRTIO, 0x7f))));
	ASSERT_EQ(ENOTTY, ERRNO(ioctl(self->fd, TCGETS, &t)));
}

TEST_F(fresh, set_features_with_unserved_bit_fails_with_eopnotsupp)
{
	static const int bits[] = {
		VIRTIO_BLK_F_SCSI, VIRTIO_BLK_F_SECURE_ERASE,
		33 /* RING_PACKED */, 63,
	};
	uint64_t f;
	unsigned int i;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	for (i = 0; i < ARRAY_SIZE(bits); i++) {
		f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << bits[i]);
		ASSERT_EQ(EOPNOTSUPP,
			  ERRNO(ioctl(self->fd, VHOST_SET_FEATURES, &f)))
			TH_LOG("bit %d", bits[i]);
	}
	f = VB_F_EXPECTED;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_FEATURES, &f));
}

TEST_F(fresh, set_backend_features_nonzero_fails_with_eopnotsupp)
{
	uint64_t f = 1;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(EOPNOTSUPP,
		  ERRNO(ioctl(self->fd, VHOST_SET_BACKEND_FEATURES, &f)));
	f = 1ULL << 63;
	ASSERT_EQ(EOPNOTSUPP,
		  ERRNO(ioctl(self->fd, VHOST_SET_BACKEND_FEATURES, &f)));
	f = 0;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_BACKEND_FEATURES, &f));
}

/* ---- memory table ---- */

static struct vhost_memory *table(unsigned int n)
{
	struct vhost_memory *m = calloc(1, sizeof(*m) +
					n * sizeof(m->regions[0]));
	static char mem[64 * 4096] __attribute__((aligned(4096)));
	unsigned int i;

	m->nregions = n;
	for (i = 0; i < n; i++) {
		m->regions[i].guest_phys_addr = 0x100000ULL * (i + 1);
		m->regions[i].memory_size = 4096;
		m->regions[i].userspace_addr = (uintptr_t)(mem + 4096 * i);
	}
	return m;
}

static int set_table(int fd, struct vhost_memory *m)
{
	int ret = ERRNO(ioctl(fd, VHOST_SET_MEM_TABLE, m));

	free(m);
	return ret;
}

TEST_F(fresh, mem_table_of_64_regions_is_accepted)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, set_table(self->fd, table(64)));
	ASSERT_EQ(0, set_table(self->fd, table(1)));
}

TEST_F(fresh, mem_table_of_65_regions_fails_with_e2big)
{
	struct vhost_memory *m = table(64);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->nregions = 65;	/* the kernel must not read the 65th */
	ASSERT_EQ(E2BIG, set_table(self->fd, m));
	m = table(1);
	m->nregions = 0xffffffff;
	ASSERT_EQ(E2BIG, set_table(self->fd, m));
}

TEST_F(fresh, mem_region_of_size_0_fails_with_einval)
{
	struct vhost_memory *m = table(2);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[1].memory_size = 0;
	ASSERT_EQ(EINVAL, set_table(self->fd, m));
}

TEST_F(fresh, mem_region_gpa_overflow_fails_with_einval)
{
	struct vhost_memory *m = table(1);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[0].guest_phys_addr = ~0ULL - 2047;
	ASSERT_EQ(EINVAL, set_table(self->fd, m));
}

TEST_F(fresh, mem_region_user_address_overflow_fails_with_efault)
{
	struct vhost_memory *m = table(1);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[0].userspace_addr = ~0ULL - 2047;
	ASSERT_EQ(EFAULT, set_table(self->fd, m));
}

TEST_F(fresh, mem_region_kernel_address_fails_with_efault)
{
	struct vhost_memory *m = table(1);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[0].userspace_addr = 0xffff888000000000ULL;
	ASSERT_EQ(EFAULT, set_table(self->fd, m));
}

TEST_F(fresh, mem_region_flags_padding_fails_with_einval)
{
	struct vhost_memory *m = table(1);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[0].flags_padding = 1;
	ASSERT_EQ(EINVAL, set_table(self->fd, m));
}

TEST_F(fresh, overlapping_mem_regions_fail_with_einval)
{
	struct vhost_memory *m = table(3);

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	m->regions[2].guest_phys_addr = m->regions[0].guest_phys_addr + 2048;
	ASSERT_EQ(EINVAL, set_table(self->fd, m));
	m = table(2);
	m->regions[1].guest_phys_addr = m->regions[0].guest_phys_addr;
	ASSERT_EQ(EINVAL, set_table(self->fd, m));
}

/* ---- per-queue ioctls ---- */

TEST_F(fresh, queue_index_16_fails_with_enobufs)
{
	struct vhost_vring_state s = { .index = 16, .num = 64 };
	struct vhost_vring_addr a = { .index = 16 };
	struct vhost_vring_file f = { .index = 16, .fd = -1 };

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM, &s)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_BASE, &s)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_GET_VRING_BASE, &s)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_KICK, &f)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_CALL, &f)));
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ERR, &f)));
	s.index = 0xffffffff;
	ASSERT_EQ(ENOBUFS, ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM, &s)));
	s.index = 15;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_NUM, &s));
}

TEST_F(fresh, bad_queue_sizes_fail_with_einval)
{
	static const unsigned int bad[] = { 0, 3, 100, 1023, 2048, 65535,
					    0x10000, 0x80000000 };
	struct vhost_vring_state s = { .index = 0 };
	unsigned int i;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		s.num = bad[i];
		ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_SET_VRING_NUM,
					      &s))) TH_LOG("num %u", bad[i]);
	}
	for (s.num = 1; s.num <= 1024; s.num *= 2)
		ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_NUM, &s));
}

TEST_F(fresh, vring_base_above_0xffff_fails_with_einval)
{
	struct vhost_vring_state s = { .index = 0, .num = 0x10000 };

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_SET_VRING_BASE, &s)));
	s.num = 0xffff;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_BASE, &s));
}

TEST_F(fresh, vring_addr_unknown_flag_fails_with_eopnotsupp)
{
	static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
	struct vhost_vring_addr a = {
		.index = 0, .flags = 1 << 1,
		.desc_user_addr = (uintptr_t)ring,
		.avail_user_addr = (uintptr_t)ring + 4096,
		.used_user_addr = (uintptr_t)ring + 8192,
	};

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(EOPNOTSUPP, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	a.flags = 0;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_ADDR, &a));
}

TEST_F(fresh, misaligned_vring_addresses_fail_with_einval)
{
	static uint8_t ring[3 * 4096] __attribute__((aligned(4096)));
	struct vhost_vring_addr good = {
		.index = 0,
		.desc_user_addr = (uintptr_t)ring,
		.avail_user_addr = (uintptr_t)ring + 4096,
		.used_user_addr = (uintptr_t)ring + 8192,
	}, a;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	a = good;
	a.desc_user_addr += 8;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	a = good;
	a.avail_user_addr += 1;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	a = good;
	a.used_user_addr += 2;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_SET_VRING_ADDR, &a)));
	a = good;
	a.desc_user_addr += 16;
	a.avail_user_addr += 2;
	a.used_user_addr += 4;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_VRING_ADDR, &a));
}

TEST_F(fresh, bad_eventfds_fail_with_ebadf_or_einval)
{
	static const unsigned long req[] = {
		VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR,
	};
	struct vhost_vring_file f = { .index = 0 };
	int p[2], closed, i;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, pipe(p));
	closed = eventfd(0, 0);
	close(closed);
	for (i = 0; i < 3; i++) {
		f.fd = closed;
		ASSERT_EQ(EBADF, ERRNO(ioctl(self->fd, req[i], &f)));
		f.fd = p[0];
		ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, req[i], &f)));
		f.fd = self->fd;
		ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, req[i], &f)));
		f.fd = eventfd(0, 0);
		ASSERT_EQ(0, ioctl(self->fd, req[i], &f));
		close(f.fd);
		f.fd = -1;
		ASSERT_EQ(0, ioctl(self->fd, req[i], &f));
	}
	close(p[0]);
	close(p[1]);
}

TEST_F(fresh, bad_backend_fds_fail_with_ebadf_or_einval)
{
	struct vhost_vring_file f = { .index = 0 };
	int p[2], sv[2], efd, dir, chr, closed;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	closed = eventfd(0, 0);
	close(closed);
	f.fd = closed;
	ASSERT_EQ(EBADF, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = -2;
	ASSERT_EQ(EBADF, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	efd = eventfd(0, 0);
	dir = open("/", O_RDONLY | O_DIRECTORY);
	chr = open("/dev/null", O_RDWR);
	ASSERT_LE(0, efd);
	ASSERT_LE(0, dir);
	ASSERT_LE(0, chr);
	f.fd = p[0];
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = sv[0];
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = efd;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = dir;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = chr;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = self->fd;
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f)));
	f.fd = -1;
	ASSERT_EQ(0, ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f));
	f.index = 12345;	/* ignored */
	ASSERT_EQ(0, ioctl(self->fd, VHOST_BLK_SET_BACKEND, &f));
}

/* A running device: full QEMU sequence done, backend attached. */
FIXTURE(running) {
	struct vb_dev d;
	struct vb_backend b;
};

FIXTURE_SETUP(running)
{
	struct vb_opts o = { .num = 64 };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", 1 << 20, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(running)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

TEST_F(running, ring_layout_ioctls_while_running_fail_with_ebusy)
{
	struct vb_vq *vq = &self->d.vq[0];
	struct vhost_vring_state s = { .index = 0, .num = 64 };
	/* Moved rings: only the log flag and address may change now. */
	struct vhost_vring_addr a = {
		.index = 0,
		.desc_user_addr = (uintptr_t)vq->desc + 16,
		.avail_user_addr = (uintptr_t)vq->avail,
		.used_user_addr = (uintptr_t)vq->used,
	};

	ASSERT_EQ(EBUSY, ERRNO(ioctl(self->d.fd, VHOST_SET_VRING_NUM, &s)));
	ASSERT_EQ(EBUSY, ERRNO(ioctl(self->d.fd, VHOST_SET_VRING_BASE, &s)));
	ASSERT_EQ(EBUSY, ERRNO(ioctl(self->d.fd, VHOST_SET_VRING_ADDR, &a)));
	/* once stopped, the same calls are fine */
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, NULL));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_NUM, &s));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_BASE, &s));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_ADDR, &a));
}

TEST_F(running, ring_ioctls_after_backend_detach_succeed)
{
	struct vhost_vring_state s = { .index = 0, .num = 32 };

	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_NUM, &s));
}

TEST_F(running, serial_is_settable_any_time)
{
	char serial[VIRTIO_BLK_ID_BYTES] = "0123456789abcdefghij";

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SERIAL, serial));
}

TEST_F(running, mem_table_replaceable_while_running)
{
	ASSERT_EQ(0, vb_set_mem_table(&self->d));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io(&self->d.vq[0], VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, NULL));
}

TEST_F(running, close_without_stop_releases_cleanly)
{
	int i;

	/* post I/O and close at once: release must drain it */
	for (i = 0; i < 8; i++) {
		static struct vb_req r[8];

		r[i] = (struct vb_req){ .type = VIRTIO_BLK_T_IN,
					.data_gpa = self->d.vq[0].scratch_gpa,
					.data_len = 512,
					.layout = VB_L_INDIRECT };
		ASSERT_EQ(0, vb_req_post(&self->d.vq[0], &r[i]));
	}
	vb_vq_kick(&self->d.vq[0]);
	close(self->d.fd);
	self->d.fd = -1;
}

TEST_HARNESS_MAIN
