// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk dirty-page logging: VHOST_F_LOG_ALL, VHOST_SET_LOG_BASE,
 * VHOST_SET_LOG_FD and VHOST_VRING_F_LOG, as QEMU drives them for live
 * migration.  With logging on, the bitmap must hold exactly the pages the
 * device wrote: the data of IN and GET_ID requests, the status byte's
 * page and the used ring's page, and nothing else (not OUT data, not the
 * headers or the indirect tables the device only reads).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define ERRNO(call)	((call) < 0 ? errno : 0)
#define DISK_SIZE	(16ULL << 20)
#define MAX_PAGES	4096

/* A set of guest pages, by number. */
struct pages {
	unsigned int n;
	uint64_t pfn[MAX_PAGES];
};

static void pages_add(struct pages *p, uint64_t gpa, uint64_t len)
{
	uint64_t pfn, last = (gpa + len - 1) / VB_LOG_PAGE;
	unsigned int i;

	for (pfn = gpa / VB_LOG_PAGE; len && pfn <= last; pfn++) {
		for (i = 0; i < p->n && p->pfn[i] != pfn; i++)
			;
		if (i == p->n && p->n < MAX_PAGES)
			p->pfn[p->n++] = pfn;
	}
}

/*
 * The log holds exactly @want: each of its pages is marked, and as many
 * bits are set as it has pages.  On a mismatch, say which page.
 */
static void log_is(struct __test_metadata *_metadata,
		   const struct vb_log *l, const struct pages *want)
{
	uint64_t gpa = 0;
	unsigned int i;

	for (i = 0; i < want->n; i++)
		EXPECT_TRUE(vb_log_test(l, want->pfn[i] * VB_LOG_PAGE))
			TH_LOG("page %#llx not marked",
			       (unsigned long long)want->pfn[i] * VB_LOG_PAGE);
	while ((gpa = vb_log_next(l, gpa)) != UINT64_MAX) {
		for (i = 0; i < want->n && want->pfn[i] * VB_LOG_PAGE != gpa; i++)
			;
		EXPECT_LT(i, want->n) TH_LOG("page %#llx marked, not written",
					     (unsigned long long)gpa);
		gpa += VB_LOG_PAGE;
	}
	ASSERT_EQ(want->n, vb_log_count(l));
}

FIXTURE(log) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_log l;
	struct vb_vq *vq;
	uint8_t *want, *got;
};

FIXTURE_VARIANT(log) {
	const char *kind;
	int oflags;
};

/* A block device (bios), a file through the page cache, a file's kiocbs. */
FIXTURE_VARIANT_ADD(log, brd) { .kind = "brd" };
FIXTURE_VARIANT_ADD(log, tmpfs) { .kind = "tmpfs" };
FIXTURE_VARIANT_ADD(log, ext4_direct) { .kind = "ext4", .oflags = O_DIRECT };

#define BUF_MAX		(256 * 1024)
/* A read of two parts (see VHOST_BLK_MAX_REQUEST_BYTES). */
#define TWO_PARTS	(VHOST_BLK_MAX_REQUEST_BYTES + 64 * 1024)

FIXTURE_SETUP(log)
{
	struct vb_opts o = { .num = 128 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->l.bits = NULL;
	self->l.fd = -1;
	self->b.kind = NULL;
	self->want = NULL;
	self->got = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE,
				variant->oflags, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	ASSERT_EQ(0, vb_log_init(&self->l, &self->d.mem));
	self->want = malloc(TWO_PARTS);
	self->got = malloc(TWO_PARTS);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->got);
	vb_pattern(self->want, TWO_PARTS, 0, 7);
	ASSERT_EQ(0, vb_backend_write(&self->b, 0, self->want, TWO_PARTS));
}

FIXTURE_TEARDOWN(log)
{
	vb_dev_teardown(&self->d);
	vb_log_free(&self->l);
	vb_backend_destroy(&self->b);
	free(self->want);
	free(self->got);
}

/*
 * One request with logging on, from a clear log: it completes with @want
 * status, its data reads back (IN), the log eventfd fired, and the log
 * holds exactly the pages the device wrote.
 */
static void logged_io(struct __test_metadata *_metadata,
		      FIXTURE_DATA(log) *self, uint32_t type, uint64_t gpa,
		      uint32_t len, unsigned int layout)
{
	struct vb_req r = { .type = type, .sector = 0, .data_gpa = gpa,
			    .data_len = len, .layout = layout };
	struct pages want = { 0 };

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(0, vb_fill(&self->d.mem, gpa, 0, len));
	vb_log_clear(&self->l);
	vb_log_signals(&self->l);
	ASSERT_EQ(0, vb_req_post(self->vq, &r));
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
	ASSERT_TRUE(r.done);
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(1, vb_wait_fd(self->l.fd, VB_TIMEOUT_MS))
		TH_LOG("log eventfd not signalled");
	if (type == VIRTIO_BLK_T_IN) {
		ASSERT_EQ(len + 1, r.used_len);
		ASSERT_EQ(0, vb_read(&self->d.mem, gpa, self->got, len));
		ASSERT_EQ(0, memcmp(self->want, self->got, len));
		pages_add(&want, gpa, len);
	} else if (type == VIRTIO_BLK_T_GET_ID) {
		pages_add(&want, gpa, len < VIRTIO_BLK_ID_BYTES ?
				      len : VIRTIO_BLK_ID_BYTES);
	}
	pages_add(&want, r.status_gpa, 1);
	pages_add(&want, self->vq->used_gpa,
		  6 + 8 * self->vq->num + 2);
	log_is(_metadata, &self->l, &want);
	EXPECT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.log_faults"));
}

TEST_F(log, in_one_descriptor_marks_its_pages)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, 16384), 16384, 0);
}

TEST_F(log, in_many_descriptors_unaligned_marks_their_pages)
{
	/* 512-byte descriptors from mid-page: 17 pages, each marked once */
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, 65536) + 512, 65536,
		  VB_L_DATA_SPLIT);
}

TEST_F(log, in_spanning_two_regions_marks_both_sides)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_span(&self->d.mem, 65536), 65536, 0);
}

TEST_F(log, in_indirect_marks_data_not_the_table)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, 32768), 32768,
		  VB_L_INDIRECT | VB_L_DATA_SPLIT);
}

TEST_F(log, in_with_status_in_the_data_descriptor)
{
	/* the status byte is on the page after the data */
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, 8192), 8192, VB_L_DATA_STATUS);
}

TEST_F(log, large_in_marks_every_page)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, BUF_MAX), BUF_MAX,
		  VB_L_INDIRECT);
}

/* Each part of a read above 8 MiB is logged when it completes. */
TEST_F(log, in_of_two_parts_marks_the_pages_of_both)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_IN,
		  vb_alloc_data(&self->d.mem, TWO_PARTS) + 512, TWO_PARTS,
		  VB_L_DATA_ODD);
}

TEST_F(log, get_id_marks_its_buffer)
{
	/* the 20 bytes cross into a second page */
	logged_io(_metadata, self, VIRTIO_BLK_T_GET_ID,
		  vb_alloc_data(&self->d.mem, 8192) + 4090,
		  VIRTIO_BLK_ID_BYTES, 0);
}

TEST_F(log, out_marks_only_status_and_used_ring)
{
	uint64_t gpa = vb_alloc_data(&self->d.mem, 16384);

	ASSERT_EQ(0, vb_write(&self->d.mem, gpa, self->want, 16384));
	logged_io(_metadata, self, VIRTIO_BLK_T_OUT, gpa, 16384, 0);
}

TEST_F(log, flush_marks_only_status_and_used_ring)
{
	logged_io(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
}

TEST_F(log, stopping_log_all_and_ring_log_stops_marking)
{
	uint64_t gpa = vb_alloc_data(&self->d.mem, 16384);

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "log_all"));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "vq0.log_used"));
	ASSERT_EQ(0, vb_log_stop(&self->d));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_all"));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.log_used"));
	vb_log_clear(&self->l);
	vb_log_signals(&self->l);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0, gpa,
					 16384, 0, NULL));
	ASSERT_EQ(0, vb_read(&self->d.mem, gpa, self->got, 16384));
	ASSERT_EQ(0, memcmp(self->want, self->got, 16384));
	usleep(VB_QUIET_MS * 1000);
	ASSERT_EQ(0, vb_log_count(&self->l));
	ASSERT_EQ(0, vb_log_signals(&self->l));
}

/* Upstream's split: LOG_ALL logs data, VHOST_VRING_F_LOG the used ring. */
TEST_F(log, ring_log_without_log_all_marks_only_the_used_ring)
{
	uint64_t gpa = vb_alloc_data(&self->d.mem, 16384);
	struct pages want = { 0 };

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &self->d.features));
	vb_log_clear(&self->l);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0, gpa,
					 16384, 0, NULL));
	pages_add(&want, self->vq->used_gpa, 8);
	log_is(_metadata, &self->l, &want);
}

TEST_F(log, restarting_the_log_marks_again)
{
	uint64_t gpa = vb_alloc_data(&self->d.mem, 4096);

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(0, vb_log_stop(&self->d));
	logged_io(_metadata, self, VIRTIO_BLK_T_IN, gpa, 4096, 0);
}

/* The bitmap read-only: the request completes, the fault is counted. */
TEST_F(log, unwritable_log_completes_requests_and_counts_faults)
{
	uint64_t gpa = vb_alloc_data(&self->d.mem, 16384);
	unsigned int before;

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(0, mprotect(self->l.bits, self->l.map_len, PROT_READ));
	/* the queue may have logged its avail event before that */
	before = vb_log_count(&self->l);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0, gpa,
					 16384, 0, NULL));
	ASSERT_EQ(0, vb_read(&self->d.mem, gpa, self->got, 16384));
	ASSERT_EQ(0, memcmp(self->want, self->got, 16384));
	ASSERT_LT(0, vb_fdinfo_num(self->d.fd, "vq0.log_faults"));
	ASSERT_EQ(before, vb_log_count(&self->l));
	/* the queue still runs */
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0, gpa,
					 16384, 0, NULL));
}

/* QEMU re-sends VHOST_SET_VRING_ADDR on a running queue for the flag. */
TEST_F(log, ring_log_flag_changes_while_running_ring_moves_do_not)
{
	struct vb_vq *vq = self->vq;
	struct vhost_vring_addr a = {
		.index = 0, .flags = 1 << VHOST_VRING_F_LOG,
		.desc_user_addr = (uintptr_t)vq->desc,
		.avail_user_addr = (uintptr_t)vq->avail + 2,
		.used_user_addr = (uintptr_t)vq->used,
		.log_guest_addr = vq->used_gpa,
	};

	ASSERT_EQ(0, vb_vring_log(&self->d, vq, true, vq->used_gpa));
	ASSERT_EQ(0, vb_vring_log(&self->d, vq, false, 0));
	ASSERT_EQ(EBUSY, ERRNO(ioctl(self->d.fd, VHOST_SET_VRING_ADDR, &a)));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.log_used"));
}

TEST_F(log, fdinfo_shows_the_log_fd)
{
	int none = -1;

	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_fd"));
	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "log_fd"));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_FD, &none));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_fd"));
}

/* Control-path errors: a device with memory and rings, no backend needed. */
FIXTURE(bad) {
	struct vb_dev d;
	struct vb_log l;
};

FIXTURE_SETUP(bad)
{
	struct vb_opts o = { .num = 128, .backend = -1 };
	int ret;

	vb_dev_init(&self->d);
	self->l.bits = NULL;
	self->l.fd = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	ASSERT_EQ(0, vb_log_init(&self->l, &self->d.mem));
}

FIXTURE_TEARDOWN(bad)
{
	vb_dev_teardown(&self->d);
	vb_log_free(&self->l);
}

/*
 * User addresses near the top of the address space: 64 KiB below it is
 * too little room for the bits of the memory's highest page (132 KiB into
 * the log), 256 KiB is enough for them but not for a page at 2^40 (32 MiB).
 */
#define TOO_HIGH_BASE	(vb_user_top() - 64 * 1024)
#define HIGH_BASE	(vb_user_top() - 256 * 1024)
#define FAR_GPA		(1ULL << 40)

TEST_F(bad, log_base_outside_user_space_fails_with_efault)
{
	uint64_t base = 0xffff888000000000ULL;

	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base)));
	base = ~0ULL;
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base)));
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_BASE,
				      (void *)8)));
}

TEST_F(bad, log_all_with_a_log_too_small_for_the_memory_fails_with_efault)
{
	uint64_t base = TOO_HIGH_BASE, f = self->d.features |
		       (1ULL << VHOST_F_LOG_ALL);

	/* accepted while nothing is logged, refused when it would be */
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base));
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_FEATURES, &f)));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_all"));
	base = (uintptr_t)self->l.bits;
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &f));
	/* with LOG_ALL on, a base that cannot cover the table is refused */
	base = TOO_HIGH_BASE;
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base)));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "log_all"));
	/* and LOG_ALL can be cleared again */
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &self->d.features));
}

TEST_F(bad, mem_table_beyond_the_log_fails_with_efault_while_logging)
{
	struct vhost_memory *t = vb_mem_table(&self->d.mem);
	uint64_t base = HIGH_BASE, f = self->d.features |
		       (1ULL << VHOST_F_LOG_ALL);

	/* nothing is written: the checks are of the address space alone */
	ASSERT_NE(NULL, t);
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &f));
	t->regions[2].guest_phys_addr = FAR_GPA;
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_MEM_TABLE, t)));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &self->d.features));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_MEM_TABLE, t));
	/* and now LOG_ALL is refused */
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_FEATURES, &f)));
	free(t);
}

TEST_F(bad, log_fd_must_be_an_eventfd)
{
	char path[] = "/tmp/vbt-log-XXXXXX";
	int fd = mkstemp(path), bad = 1000000, none = -1;

	ASSERT_LE(0, fd);
	unlink(path);
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_FD, &fd)));
	ASSERT_EQ(EBADF, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_FD, &bad)));
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_FD, NULL)));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_fd"));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_FD, &self->l.fd));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "log_fd"));
	/* a failed call leaves the old eventfd */
	ASSERT_EQ(EINVAL, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_FD, &fd)));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "log_fd"));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_FD, &none));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "log_fd"));
	close(fd);
}

TEST_F(bad, ring_log_address_unaligned_or_beyond_the_log_fails_with_einval)
{
	struct vb_vq *vq = &self->d.vq[0];
	uint64_t base = HIGH_BASE;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base));
	ASSERT_EQ(-EINVAL, vb_vring_log(&self->d, vq, true, vq->used_gpa + 2));
	ASSERT_EQ(-EINVAL, vb_vring_log(&self->d, vq, true, FAR_GPA));
	ASSERT_EQ(-EINVAL, vb_vring_log(&self->d, vq, true, ~3ULL));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.log_used"));
	ASSERT_EQ(0, vb_vring_log(&self->d, vq, true, vq->used_gpa));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "vq0.log_used"));
	/* a log base that cannot hold the ring's bits is refused now */
	ASSERT_EQ(0, vb_vring_log(&self->d, vq, true, 1ULL << 32));
	base = TOO_HIGH_BASE;
	ASSERT_EQ(EFAULT, ERRNO(ioctl(self->d.fd, VHOST_SET_LOG_BASE, &base)));
}

/*
 * Requests taken before LOG_ALL was set and completing after it must be
 * logged: null_blk completes each one 400 ms after it was submitted.
 */
#define SLOW_NUM	8

FIXTURE(slow) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_log l;
};

FIXTURE_SETUP(slow)
{
	struct vb_opts o = { .num = 32 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->l.bits = NULL;
	self->l.fd = -1;
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_nullb_create_slow(&self->b, DISK_SIZE, 400, 64, &why);
	if (ret < 0)
		SKIP(return, "slow null_blk: %s (%s)", why, strerror(-ret));
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	ASSERT_EQ(0, vb_log_init(&self->l, &self->d.mem));
}

FIXTURE_TEARDOWN(slow)
{
	vb_dev_teardown(&self->d);
	vb_log_free(&self->l);
	vb_backend_destroy(&self->b);
}

TEST_F(slow, request_in_flight_when_logging_starts_is_logged)
{
	struct vb_vq *vq = &self->d.vq[0];
	uint64_t buf = vb_alloc_data(&self->d.mem, SLOW_NUM * 8192);
	struct vb_req r[SLOW_NUM];
	struct pages want = { 0 };
	unsigned int i;

	for (i = 0; i < SLOW_NUM; i++) {
		/* a page apart: the pages between must stay clear */
		r[i] = (struct vb_req){ .type = VIRTIO_BLK_T_IN, .sector = 8 * i,
					.data_gpa = buf + 8192 * i,
					.data_len = 4096 };
		ASSERT_EQ(0, vb_req_post(vq, &r[i]));
		pages_add(&want, r[i].data_gpa, 4096);
		pages_add(&want, r[i].status_gpa, 1);
	}
	pages_add(&want, vq->used_gpa, 8);
	vb_vq_kick(vq);
	for (i = 0; i < 1000; i++) {
		if (vb_fdinfo_num(self->d.fd, "vq0.inflight") == SLOW_NUM)
			break;
		usleep(1000);
	}
	ASSERT_EQ(SLOW_NUM, vb_fdinfo_num(self->d.fd, "vq0.inflight"));
	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	vb_log_clear(&self->l);
	ASSERT_EQ(0, vb_used_idx(vq)) TH_LOG("completed before logging began");
	ASSERT_EQ(0, vb_vq_wait(vq, SLOW_NUM, VB_TIMEOUT_MS));
	for (i = 0; i < SLOW_NUM; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
	ASSERT_EQ(1, vb_wait_fd(self->l.fd, VB_TIMEOUT_MS));
	log_is(_metadata, &self->l, &want);
}

TEST_F(slow, request_in_flight_when_logging_stops_is_not_logged)
{
	struct vb_vq *vq = &self->d.vq[0];
	uint64_t buf = vb_alloc_data(&self->d.mem, 4096);
	struct vb_req r = { .type = VIRTIO_BLK_T_IN, .data_gpa = buf,
			    .data_len = 4096 };

	ASSERT_EQ(0, vb_log_start(&self->d, &self->l));
	ASSERT_EQ(0, vb_req_post(vq, &r));
	vb_vq_kick(vq);
	usleep(50 * 1000);
	ASSERT_EQ(0, vb_log_stop(&self->d));
	vb_log_clear(&self->l);
	ASSERT_EQ(0, vb_vq_wait(vq, 1, VB_TIMEOUT_MS));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_EQ(0, vb_log_count(&self->l));
}

/* One ext4 file system for every ext4 variant, made by the first. */
static void __attribute__((constructor)) log_init(void)
{
	snprintf(vb_ext4_shared, sizeof(vb_ext4_shared), "/tmp/vbt-ext4-%d",
		 getpid());
}

/* Runs in the harness's main process only: tests end with _exit(). */
static void __attribute__((destructor)) log_fini(void)
{
	if (getpid() == atoi(vb_ext4_shared + strlen("/tmp/vbt-ext4-")))
		vb_ext4_shared_done();
}

/* Open /dev/vhost-blk, own it, and read what it offers. */
static int open_features(uint64_t *features)
{
	int fd = open(VB_DEV_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, VHOST_SET_OWNER) || ioctl(fd, VHOST_GET_FEATURES, features)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

#define LOG_PARAM	"/sys/module/vhost_blk/parameters/log"

/*
 * log=0 makes the devices opened afterwards a module without dirty
 * logging: no VHOST_F_LOG_ALL offered nor taken, which QEMU turns into a
 * migration blocker.  A device keeps what it offered at open.
 */
TEST(log_parameter_off_hides_log_all_from_devices_opened_after)
{
	uint64_t all = 1ULL << VHOST_F_LOG_ALL, f, g;
	char saved[8];
	int off, on;

	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (vb_read_text(LOG_PARAM, saved, sizeof(saved)) <= 0)
		SKIP(return, "no log parameter");
	ASSERT_EQ(0, vb_write_text(LOG_PARAM, "0"));
	off = open_features(&f);
	ASSERT_EQ(0, vb_write_text(LOG_PARAM, "1"));
	ASSERT_LE(0, off) TH_LOG("open: %s", strerror(-off));
	on = open_features(&g);
	ASSERT_LE(0, on) TH_LOG("open: %s", strerror(-on));

	EXPECT_EQ(0, f & all);
	EXPECT_EQ(all, g & all);
	EXPECT_EQ(f, g & ~all);
	/* The device opened with log=0 refuses it, also now that log=1. */
	f |= all;
	EXPECT_EQ(EOPNOTSUPP, ERRNO(ioctl(off, VHOST_SET_FEATURES, &f)));
	f &= ~all;
	EXPECT_EQ(0, ERRNO(ioctl(off, VHOST_SET_FEATURES, &f)));
	EXPECT_EQ(0, ERRNO(ioctl(on, VHOST_SET_FEATURES, &g)));
	close(off);
	close(on);
	EXPECT_EQ(0, vb_write_text(LOG_PARAM, saved));
}

TEST_HARNESS_MAIN
