// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk on every kind of backend: null_blk (memory backed), brd, loop,
 * a file on tmpfs and on ext4 (buffered and O_DIRECT).  Each backend that
 * this machine cannot provide is skipped with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(32ULL << 20)
#define LEN		(64 * 1024)

FIXTURE(be) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf, buf2, sectors;
	uint8_t *tmp, *tmp2;
};

FIXTURE_VARIANT(be) {
	const char *kind;
	int oflags;
};

FIXTURE_VARIANT_ADD(be, nullb) { .kind = "nullb" };
FIXTURE_VARIANT_ADD(be, brd) { .kind = "brd" };
FIXTURE_VARIANT_ADD(be, loop) { .kind = "loop" };
FIXTURE_VARIANT_ADD(be, loop_direct) { .kind = "loop", .oflags = O_DIRECT };
FIXTURE_VARIANT_ADD(be, tmpfs) { .kind = "tmpfs" };
FIXTURE_VARIANT_ADD(be, ext4) { .kind = "ext4" };
FIXTURE_VARIANT_ADD(be, ext4_direct) { .kind = "ext4", .oflags = O_DIRECT };

FIXTURE_SETUP(be)
{
	struct vb_opts o = { .num = 64 };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE,
				variant->oflags, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	self->sectors = self->b.size / VB_SECTOR;
	ASSERT_LT(4096, self->sectors);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, LEN);
	self->buf2 = vb_alloc_data(&self->d.mem, LEN);
	self->tmp = malloc(LEN);
	self->tmp2 = malloc(LEN);
	ASSERT_NE(NULL, self->tmp);
	ASSERT_NE(NULL, self->tmp2);
}

FIXTURE_TEARDOWN(be)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->tmp);
	free(self->tmp2);
}

static void be_write(struct __test_metadata *_metadata, FIXTURE_DATA(be) *self,
		     uint64_t sector, uint32_t len, uint32_t seed,
		     unsigned int layout)
{
	uint32_t ul = 0;

	vb_pattern(self->tmp, len, sector, seed);
	vb_write(&self->d.mem, self->buf, self->tmp, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, sector,
					 self->buf, len, layout, &ul));
	ASSERT_EQ(1, ul);
}

static void be_read(struct __test_metadata *_metadata, FIXTURE_DATA(be) *self,
		    uint64_t sector, uint32_t len, unsigned int layout)
{
	uint32_t ul = 0;

	vb_fill(&self->d.mem, self->buf2, 0xaa, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, sector,
					 self->buf2, len, layout, &ul));
	ASSERT_EQ(len + 1, ul);
	vb_read(&self->d.mem, self->buf2, self->tmp2, len);
}

TEST_F(be, written_data_reads_back_in_every_layout)
{
	unsigned int layout;

	for (layout = 0; layout <= VB_L_ALL; layout++) {
		uint64_t sector = 256 + layout * 128;

		be_write(_metadata, self, sector, LEN, layout, layout);
		be_read(_metadata, self, sector, LEN, VB_L_ALL & ~layout);
		vb_pattern(self->tmp, LEN, sector, layout);
		ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, LEN))
			TH_LOG("layout %#x", layout);
	}
}

/*
 * Buffers that direct I/O cannot take as they are, as SeaBIOS sends them:
 * data at an odd address, in one descriptor or in 512-byte or uneven ones
 * across pages.  Where the backend does direct I/O (a block device, an
 * O_DIRECT file) the module serves them through pages of its own, as QEMU
 * bounces (vq0.bounced counts the parts); the page cache takes them as
 * they are.  The data reads back through aligned and misaligned buffers,
 * and nothing around a misaligned buffer is written.
 */
TEST_F(be, misaligned_buffers_are_served_and_read_back)
{
	static const unsigned int layouts[] = {
		0, VB_L_DATA_SPLIT, VB_L_DATA_ODD,
	};
	const uint32_t len = 8192 + 512;
	long long bounced;
	struct stat st;
	unsigned int i;
	uint8_t edge[2];
	bool direct;
	uint32_t ul;

	ASSERT_EQ(0, fstat(self->b.fd, &st));
	direct = S_ISBLK(st.st_mode) || (variant->oflags & O_DIRECT);
	for (i = 0; i < ARRAY_SIZE(layouts); i++) {
		uint64_t sector = 1024 + i * 64;
		uint64_t out = self->buf + 1 + i, in = self->buf2 + 3;

		vb_pattern(self->tmp, len, sector, 40 + i);
		vb_write(&self->d.mem, out, self->tmp, len);
		ul = 0;
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, sector, out, len,
				layouts[i], &ul))
			TH_LOG("write from +%u, layout %#x", 1 + i, layouts[i]);
		be_read(_metadata, self, sector, len, 0);
		ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len))
			TH_LOG("aligned read-back, layout %#x", layouts[i]);

		vb_fill(&self->d.mem, self->buf2, 0xaa, len + 8);
		ul = 0;
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, sector, in, len,
				layouts[i], &ul))
			TH_LOG("read to +3, layout %#x", layouts[i]);
		ASSERT_EQ(len + 1, ul);
		vb_read(&self->d.mem, in, self->tmp2, len);
		ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len))
			TH_LOG("misaligned read-back, layout %#x", layouts[i]);
		vb_read(&self->d.mem, in - 1, &edge[0], 1);
		vb_read(&self->d.mem, in + len, &edge[1], 1);
		ASSERT_EQ(0xaa, edge[0]);
		ASSERT_EQ(0xaa, edge[1]);
	}
	bounced = vb_fdinfo_num(self->d.fd, "vq0.bounced");
	ASSERT_EQ(direct ? 2 * ARRAY_SIZE(layouts) : 0, bounced)
		TH_LOG("%s%s: vq0.bounced %lld", variant->kind,
		       variant->oflags & O_DIRECT ? " (O_DIRECT)" : "", bounced);
}

TEST_F(be, written_data_reaches_the_backend)
{
	be_write(_metadata, self, 8192, LEN, 99, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 0, NULL));
	ASSERT_EQ(0, vb_backend_read(&self->b, 8192ULL * 512, self->tmp2, LEN));
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, LEN));
}

TEST_F(be, backend_content_is_read)
{
	vb_pattern(self->tmp, LEN, 9000, 98);
	ASSERT_EQ(0, vb_backend_write(&self->b, 9000ULL * 512, self->tmp, LEN));
	be_read(_metadata, self, 9000, LEN, VB_L_DATA_SPLIT);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, LEN));
}

TEST_F(be, flush_succeeds)
{
	uint32_t ul = 0;

	be_write(_metadata, self, 0, 4096, 1, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 0, &ul));
	ASSERT_EQ(1, ul);
}

static void be_zero_check(struct __test_metadata *_metadata,
			  FIXTURE_DATA(be) *self, uint32_t type,
			  uint32_t flags, int expect)
{
	uint32_t ul = 0;

	be_write(_metadata, self, 2048, LEN, 7, 0);
	/* the middle 64 sectors of the 128 written */
	ASSERT_EQ(expect, vb_discard_wz(self->vq, type, 2048 + 32, 64, flags,
					&ul));
	ASSERT_EQ(1, ul);
	be_read(_metadata, self, 2048, LEN, 0);
	vb_pattern(self->tmp, LEN, 2048, 7);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 32 * 512));
	ASSERT_EQ(0, memcmp(self->tmp + 96 * 512, self->tmp2 + 96 * 512,
			    32 * 512));
	if (expect == VIRTIO_BLK_S_OK && (type == VIRTIO_BLK_T_WRITE_ZEROES ||
					  self->b.discard_zeroes))
		ASSERT_TRUE(vb_is_zero(self->tmp2 + 32 * 512, 64 * 512));
}

TEST_F(be, write_zeroes_reads_back_zeroes)
{
	be_zero_check(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 0,
		      VIRTIO_BLK_S_OK);
}

TEST_F(be, write_zeroes_with_unmap_reads_back_zeroes)
{
	be_zero_check(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES,
		      VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, VIRTIO_BLK_S_OK);
}

TEST_F(be, discard_zeroes_where_supported_else_unsupp)
{
	be_zero_check(_metadata, self, VIRTIO_BLK_T_DISCARD, 0,
		      self->b.can_discard ? VIRTIO_BLK_S_OK :
					    VIRTIO_BLK_S_UNSUPP);
}

TEST_F(be, io_past_the_end_fails_with_ioerr)
{
	uint32_t ul;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_IN,
					    self->sectors, self->buf, 512, 0,
					    &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_OUT,
					    self->sectors - 1, self->buf, 1024,
					    0, &ul));
	be_write(_metadata, self, self->sectors - 2, 1024, 5, 0);
	be_read(_metadata, self, self->sectors - 2, 1024, 0);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 1024));
}

TEST_F(be, read_only_fd_rejects_writes)
{
	uint32_t ul;

	be_write(_metadata, self, 100, 4096, 3, 0);
	ASSERT_LE(0, vb_backend_reopen(&self->b, O_RDONLY | variant->oflags));
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	vb_pattern(self->tmp2, 4096, 100, 4);
	vb_write(&self->d.mem, self->buf, self->tmp2, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_OUT, 100,
					    self->buf, 4096, 0, &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, 100, 8, 0,
				&ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, 100, 8, 0,
				&ul));
	be_read(_metadata, self, 100, 4096, 0);
	vb_pattern(self->tmp, 4096, 100, 3);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 4096));
}

TEST_F(be, many_requests_in_flight_complete)
{
	static struct vb_req r[64];
	unsigned int i;

	for (i = 0; i < 64; i++) {
		r[i] = (struct vb_req){ .type = VIRTIO_BLK_T_OUT,
					.sector = 16 * i,
					.data_gpa = self->buf + 1024 * (i % 64),
					.data_len = 1024,
					.layout = VB_L_INDIRECT };
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 64, VB_TIMEOUT_MS));
	for (i = 0; i < 64; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
}

/* A backend that fails I/O: null_blk with bad blocks. */
FIXTURE(bad) {
	struct vb_dev d;
	struct vb_backend b;
	uint64_t buf;
};

FIXTURE_SETUP(bad)
{
	struct vb_opts o = { .num = 16 };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_nullb_create(&self->b, DISK_SIZE, "+64-71", 0, &why);
	if (ret < 0)
		SKIP(return, "null_blk badblocks: %s (%s)", why, strerror(-ret));
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->buf = vb_alloc_data(&self->d.mem, 3 * 4096);
}

FIXTURE_TEARDOWN(bad)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

TEST_F(bad, backend_io_error_fails_exactly_the_failed_request)
{
	struct vb_req r[6];
	unsigned int i;

	for (i = 0; i < 6; i++) {
		r[i] = (struct vb_req){
			.type = i < 3 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			.sector = 8 + 56 * (i % 3),	/* 8, 64, 120 */
			.data_gpa = self->buf + 4096 * (i % 3),
			.data_len = 4096,
			.layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(&self->d.vq[0], &r[i]));
	}
	vb_vq_kick(&self->d.vq[0]);
	ASSERT_EQ(0, vb_vq_wait(&self->d.vq[0], 6, VB_TIMEOUT_MS));
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(i % 3 == 1 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK,
			  r[i].status) TH_LOG("request %u", i);
		ASSERT_EQ(i % 3 == 1 || i < 3 ? 1 : 4097, r[i].used_len);
	}
	ASSERT_FALSE(vb_fd_signalled(self->d.vq[0].err));
}

TEST_F(bad, queue_keeps_serving_after_backend_errors)
{
	uint32_t ul;
	int i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(&self->d.vq[0], VIRTIO_BLK_T_IN, 60, self->buf,
				4096, 0, &ul));
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(&self->d.vq[0], VIRTIO_BLK_T_IN, 0, self->buf,
				4096, 0, &ul));
	}
}

/* ------------------------------------------- requests larger than 8 MiB */

/*
 * OVMF puts up to 1 GiB in one descriptor, whatever seg_max and size_max
 * say: a request of any size up to the disk's must work, on a block
 * device and on a file, in one descriptor or in many of uneven lengths.
 * Each case moves up to 320 MiB through patterns and compares: on the
 * sanitizer kernel under TCG on a busy machine that took more than the
 * harness's default 30 s, so they have BIG_TIMEOUT.
 */
#define BIG_DISK	(80ULL << 20)
#define BIG_MAX		(64U << 20)
#define BIG_TIMEOUT	120

FIXTURE(big) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
	uint8_t *tmp, *tmp2;
};

FIXTURE_VARIANT(big) {
	const char *kind;
	int oflags;
};

FIXTURE_VARIANT_ADD(big, nullb) { .kind = "nullb" };
FIXTURE_VARIANT_ADD(big, tmpfs) { .kind = "tmpfs" };
FIXTURE_VARIANT_ADD(big, ext4_direct) { .kind = "ext4", .oflags = O_DIRECT };

FIXTURE_SETUP(big)
{
	struct vb_opts o = { .num = 64, .data_mem = BIG_MAX + (4 << 20) };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->tmp = NULL;
	self->tmp2 = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, variant->kind, BIG_DISK,
				variant->oflags, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	ASSERT_EQ(BIG_DISK, self->b.size);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, BIG_MAX);
	ASSERT_NE(0, self->buf);
	self->tmp = malloc(BIG_MAX);
	self->tmp2 = malloc(BIG_MAX);
	ASSERT_NE(NULL, self->tmp);
	ASSERT_NE(NULL, self->tmp2);
}

FIXTURE_TEARDOWN(big)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->tmp);
	free(self->tmp2);
}

/* Write @len bytes at @sector in @wl, read them back in @rl, compare. */
static void big_roundtrip(struct __test_metadata *_metadata,
			  FIXTURE_DATA(big) *self, uint64_t sector,
			  uint32_t len, uint32_t seed, unsigned int wl,
			  unsigned int rl)
{
	uint32_t ul = 0;
	int st;

	vb_pattern(self->tmp, len, sector, seed);
	vb_write(&self->d.mem, self->buf, self->tmp, len);
	st = vb_io(self->vq, VIRTIO_BLK_T_OUT, sector, self->buf, len, wl, &ul);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st)
		TH_LOG("write of %u bytes, layout %#x", len, wl);
	ASSERT_EQ(1, ul);
	vb_fill(&self->d.mem, self->buf, 0xaa, len);
	st = vb_io(self->vq, VIRTIO_BLK_T_IN, sector, self->buf, len, rl, &ul);
	ASSERT_EQ(VIRTIO_BLK_S_OK, st)
		TH_LOG("read of %u bytes, layout %#x", len, rl);
	ASSERT_EQ(len + 1, ul);
	vb_read(&self->d.mem, self->buf, self->tmp2, len);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len)) {
		uint32_t i = 0;

		while (self->tmp[i] == self->tmp2[i])
			i++;
		TH_LOG("%u bytes, layouts %#x/%#x: first mismatch at byte %u",
		       len, wl, rl, i);
	}
	/* And it is on the backend, not only in the device's view. */
	ASSERT_EQ(0, vb_backend_read(&self->b, sector * VB_SECTOR,
				     self->tmp2, len));
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len));
}

TEST_F_TIMEOUT(big, single_descriptor_requests_of_16_and_64_mib_read_back, BIG_TIMEOUT)
{
	big_roundtrip(_metadata, self, 8, 16U << 20, 1, 0, 0);
	big_roundtrip(_metadata, self, 2048, BIG_MAX, 2, 0, 0);
}

TEST_F_TIMEOUT(big, multi_descriptor_requests_of_16_and_64_mib_read_back, BIG_TIMEOUT)
{
	/* Equal power-of-two descriptors, uneven ones, and both mixed. */
	big_roundtrip(_metadata, self, 24, 16U << 20, 3, VB_L_DATA_SPLIT,
		      VB_L_DATA_ODD | VB_L_INDIRECT);
	big_roundtrip(_metadata, self, 0, BIG_MAX, 4,
		      VB_L_DATA_ODD | VB_L_INDIRECT, VB_L_DATA_SPLIT);
	big_roundtrip(_metadata, self, 4096 + 8, BIG_MAX, 5,
		      VB_L_DATA_ODD | VB_L_HDR_DATA, 0);
	big_roundtrip(_metadata, self, 1, 16U << 20, 6, 0,
		      VB_L_DATA_ODD | VB_L_DATA_STATUS);
}

TEST_F_TIMEOUT(big, request_up_to_the_whole_disk_reads_back, BIG_TIMEOUT)
{
	uint32_t ul = 0;

	/* The last 64 MiB, ending at the last sector. */
	big_roundtrip(_metadata, self, (BIG_DISK - BIG_MAX) / VB_SECTOR,
		      BIG_MAX, 7, VB_L_DATA_ODD, 0);
	/* One sector less than all that is left after sector 1: fine. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io(self->vq, VIRTIO_BLK_T_IN,
			(BIG_DISK - BIG_MAX) / VB_SECTOR + 1, self->buf,
			BIG_MAX - VB_SECTOR, 0, &ul));
	ASSERT_EQ(BIG_MAX - VB_SECTOR + 1, ul);
}

TEST_F_TIMEOUT(big, request_past_the_end_fails_with_ioerr_and_writes_nothing, BIG_TIMEOUT)
{
	const uint32_t len = 16U << 20, tail = 8U << 20;
	uint64_t sector = (BIG_DISK - tail) / VB_SECTOR;
	unsigned int layouts[] = { 0, VB_L_DATA_ODD | VB_L_INDIRECT };
	unsigned int i;
	uint32_t ul;
	struct stat st;

	/* The last 8 MiB hold a known pattern, through the backend. */
	vb_pattern(self->tmp, tail, sector, 8);
	ASSERT_EQ(0, vb_backend_write(&self->b, BIG_DISK - tail, self->tmp,
				      tail));
	vb_pattern(self->tmp2, len, sector, 9);
	vb_write(&self->d.mem, self->buf, self->tmp2, len);
	for (i = 0; i < 2; i++) {
		/* 16 MiB from 8 MiB before the end: half of it past it. */
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, sector, self->buf,
				len, layouts[i], &ul));
		ASSERT_EQ(1, ul);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, sector, self->buf,
				len, layouts[i], &ul));
		ASSERT_EQ(1, ul);
	}
	/* Nothing of it was written, before the end or after it. */
	ASSERT_EQ(0, vb_backend_read(&self->b, BIG_DISK - tail, self->tmp2,
				     tail));
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, tail));
	ASSERT_EQ(0, fstat(self->b.fd, &st));
	if (S_ISREG(st.st_mode))
		ASSERT_EQ(BIG_DISK, st.st_size);
	/* The guest's buffer was not written either: reads are checked first. */
	vb_read(&self->d.mem, self->buf, self->tmp, len);
	vb_pattern(self->tmp2, len, sector, 9);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len));
	/* The queue goes on serving. */
	big_roundtrip(_metadata, self, sector, tail, 10, 0, VB_L_DATA_ODD);
}

/* A bad sector in the third 8 MiB of a 24 MiB request fails all of it. */
TEST(big_request_fails_when_any_part_fails)
{
	const uint32_t len = 24U << 20;
	struct vb_opts o = { .num = 16, .data_mem = len + (4 << 20) };
	struct vb_backend b = { .kind = NULL };
	const char *why = "";
	struct vb_dev d;
	uint64_t buf;
	uint32_t ul;
	int ret;

	vb_dev_init(&d);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	/* Sectors 40960-40967: 20 MiB in. */
	ret = vb_nullb_create(&b, 2 * DISK_SIZE, "+40960-40967", 0, &why);
	if (ret < 0)
		SKIP(return, "null_blk badblocks: %s (%s)", why, strerror(-ret));
	o.backend = b.fd;
	ret = vb_dev_setup(&d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	buf = vb_alloc_data(&d.mem, len);
	ASSERT_NE(0, buf);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(&d.vq[0], VIRTIO_BLK_T_IN, 0, buf,
					    len, 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(&d.vq[0], VIRTIO_BLK_T_OUT, 0,
					    buf, len, VB_L_DATA_ODD, &ul));
	ASSERT_EQ(1, ul);
	/* The same size where every sector is good succeeds. */
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(&d.vq[0], VIRTIO_BLK_T_IN, 40968,
					 buf, len, VB_L_DATA_ODD, &ul));
	ASSERT_EQ(len + 1, ul);
	vb_dev_teardown(&d);
	vb_backend_destroy(&b);
}

/* One ext4 file system for all ext4 variants, made by the first of them. */
static void __attribute__((constructor)) be_init(void)
{
	snprintf(vb_ext4_shared, sizeof(vb_ext4_shared), "/tmp/vbt-ext4-%d",
		 getpid());
}

/* Runs in the harness's main process only: tests end with _exit(). */
static void __attribute__((destructor)) be_fini(void)
{
	if (getpid() == atoi(vb_ext4_shared + strlen("/tmp/vbt-ext4-")))
		vb_ext4_shared_done();
}

TEST_HARNESS_MAIN
