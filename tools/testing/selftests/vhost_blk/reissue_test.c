// SPDX-License-Identifier: GPL-2.0
/*
 * Direct I/O that fails late with -EAGAIN is served again, not failed.
 *
 * The file backend sends direct I/O from the worker with IOCB_NOWAIT.  On
 * XFS a read is one iomap iteration per extent or hole, and each takes the
 * inode's ILOCK with a trylock under IOMAP_NOWAIT: when another task holds
 * it (here a thread that keeps allocating with direct writes elsewhere in
 * the file), an iteration after the first fails with -EAGAIN while the
 * bios of the first are in flight, and the kiocb completes with -EAGAIN
 * after read_iter returned -EIOCBQUEUED (xfs_read_iomap_begin(),
 * __iomap_dio_rw()).
 * The device must then serve the request again from its workqueue, as
 * io_uring reissues, not fail it with VIRTIO_BLK_S_IOERR; vqN.reissued
 * counts it.  (XFS refuses a NOWAIT write whose range is not one mapping up
 * front, xfs_direct_write_iomap_begin(), so writes fail early, and the
 * worker already punts those: the write tests check that path's data.)
 *
 * The image is a file on XFS on a loop device (whose I/O completes
 * asynchronously, in the loop worker), laid out as written 4 KiB blocks
 * with a hole after each.  Skipped where mkfs.xfs (xfsprogs) or XFS is
 * missing: the debug kernel is built without XFS.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* fallocate() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/falloc.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(64ULL << 20)
#define BLK		4096u
/* The first LAYOUT bytes: written blocks at even block numbers, holes. */
#define LAYOUT		(16u << 20)
#define NREQ		32
#define RLEN		(256u * 1024)	/* 64 iterations of iomap each */
#define ROUND_BUDGET_MS	30000

FIXTURE(xfs) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf[NREQ];
	uint8_t *tmp, *want;
	pthread_t hammer;
	bool hammering;
	bool stop;		/* __atomic: tells the hammer to end */
};

static bool written(uint64_t off)
{
	return off < LAYOUT && !((off / BLK) & 1);
}

/* What the image holds at [off, off + len): a pattern or a hole's zeroes. */
static void expect(uint8_t *out, uint64_t off, uint32_t len, uint32_t seed)
{
	uint32_t i;

	for (i = 0; i < len; i += BLK) {
		if (written(off + i))
			vb_pattern(out + i, BLK, (off + i) / VB_SECTOR, seed);
		else
			memset(out + i, 0, BLK);
	}
}

/*
 * Keep taking the inode's ILOCK exclusively without its IOLOCK (i_rwsem,
 * which setattr and setxattr hold: reads would fail before they start):
 * direct writes into holes past LAYOUT, each an allocation and, when it
 * completes, an unwritten extent conversion under XFS_ILOCK_EXCL.  Every
 * other block, so that each is an extent of its own; the region is punched
 * again when full.
 */
static void *hammer(void *arg)
{
	FIXTURE_DATA(xfs) *self = arg;
	uint64_t off = LAYOUT;
	void *blk;
	int fd;

	fd = open(self->b.path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign(&blk, BLK, BLK)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	memset(blk, 0x5a, BLK);
	while (!__atomic_load_n(&self->stop, __ATOMIC_RELAXED)) {
		if (off >= DISK_SIZE) {
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  LAYOUT, DISK_SIZE - LAYOUT);
			off = LAYOUT;
		}
		if (pwrite(fd, blk, BLK, off) != BLK)
			break;
		off += 2 * BLK;
	}
	free(blk);
	close(fd);
	return NULL;
}

FIXTURE_SETUP(xfs)
{
	struct vb_opts o = { .num = 64, .data_mem = 16ULL << 20 };
	const char *why = "";
	uint64_t off;
	void *blk;
	int ret, i;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->hammering = false;
	self->stop = false;
	self->tmp = NULL;
	self->want = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "xfs", DISK_SIZE, O_DIRECT, &why);
	if (ret < 0)
		SKIP(return, "xfs: %s (%s)", why, strerror(-ret));
	ASSERT_EQ(0, posix_memalign(&blk, BLK, BLK));
	for (off = 0; off < LAYOUT; off += BLK) {
		if (!written(off))
			continue;
		vb_pattern(blk, BLK, off / VB_SECTOR, 1);
		ASSERT_EQ(BLK, pwrite(self->b.fd, blk, BLK, off));
	}
	free(blk);
	ASSERT_EQ(0, fsync(self->b.fd));
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	for (i = 0; i < NREQ; i++) {
		self->buf[i] = vb_alloc_data(&self->d.mem, RLEN);
		ASSERT_NE(0, self->buf[i]);
	}
	self->tmp = malloc(RLEN);
	self->want = malloc(RLEN);
	ASSERT_NE(NULL, self->tmp);
	ASSERT_NE(NULL, self->want);
	ASSERT_EQ(0, pthread_create(&self->hammer, NULL, hammer, self));
	self->hammering = true;
}

FIXTURE_TEARDOWN(xfs)
{
	if (self->hammering) {
		__atomic_store_n(&self->stop, true, __ATOMIC_RELAXED);
		pthread_join(self->hammer, NULL);
	}
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->tmp);
	free(self->want);
}

/*
 * Post NREQ requests of @type, @len bytes each at @off + i * @stride
 * (writes carry seed @seed), wait for all, and check every status.
 */
static void batch(struct __test_metadata *_metadata, FIXTURE_DATA(xfs) *self,
		  uint32_t type, uint64_t off, uint64_t stride, uint32_t len,
		  uint32_t seed)
{
	static struct vb_req r[NREQ];
	unsigned int i;

	for (i = 0; i < NREQ; i++) {
		uint64_t o = off + i * stride;

		if (type == VIRTIO_BLK_T_OUT) {
			vb_pattern(self->tmp, len, o / VB_SECTOR, seed);
			ASSERT_EQ(0, vb_write(&self->d.mem, self->buf[i],
					      self->tmp, len));
		} else {
			ASSERT_EQ(0, vb_fill(&self->d.mem, self->buf[i], 0xaa,
					     len));
		}
		r[i] = (struct vb_req){ .type = type, .sector = o / VB_SECTOR,
					.data_gpa = self->buf[i],
					.data_len = len,
					.layout = VB_L_INDIRECT };
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, NREQ, VB_TIMEOUT_MS));
	for (i = 0; i < NREQ; i++) {
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status)
			TH_LOG("request %u at %llu: late -EAGAIN? (reissued %lld, ioerr %lld)",
			       i, (unsigned long long)(off + i * stride),
			       vb_fdinfo_num(self->d.fd, "vq0.reissued"),
			       vb_fdinfo_num(self->d.fd, "vq0.ioerr"));
	}
}

static void check_read(struct __test_metadata *_metadata,
		       FIXTURE_DATA(xfs) *self, unsigned int i, uint64_t off,
		       uint32_t len, uint32_t seed)
{
	ASSERT_EQ(0, vb_read(&self->d.mem, self->buf[i], self->tmp, len));
	expect(self->want, off, len, seed);
	ASSERT_EQ(0, memcmp(self->want, self->tmp, len))
		TH_LOG("read %u at %llu: wrong data", i,
		       (unsigned long long)off);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * Reads across written blocks and holes, while the ILOCK is contended,
 * until some were reissued: each completes OK with the file's data.
 */
TEST_F_TIMEOUT(xfs, late_eagain_read_is_reissued_not_failed, 120)
{
	int64_t end = now_ms() + ROUND_BUDGET_MS;
	unsigned int rounds = 0, i;
	long long reissued = 0;

	while (now_ms() < end) {
		uint64_t base = (rounds * RLEN) %
				(LAYOUT - (NREQ + 1) * RLEN / 2);

		base &= ~(uint64_t)(BLK - 1);
		batch(_metadata, self, VIRTIO_BLK_T_IN, base, RLEN / 2, RLEN,
		      0);
		for (i = 0; i < NREQ; i++)
			check_read(_metadata, self, i, base + i * RLEN / 2,
				   RLEN, 1);
		rounds++;
		reissued = vb_fdinfo_num(self->d.fd, "vq0.reissued");
		if (reissued >= 8)
			break;
	}
	TH_LOG("%u rounds of %u reads, %lld reissued, %lld punted", rounds,
	       NREQ, reissued, vb_fdinfo_num(self->d.fd, "vq0.punted"));
	ASSERT_LE(0, reissued) TH_LOG("no vq0.reissued in fdinfo");
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.ioerr"));
	ASSERT_EQ(rounds * NREQ, vb_fdinfo_num(self->d.fd, "vq0.reqs_in"));
	if (!reissued)
		SKIP(return, "no late -EAGAIN in %u rounds: XFS never failed a started read",
		     rounds);
	/* A reissued request is punted: counted there too. */
	ASSERT_LE(reissued, vb_fdinfo_num(self->d.fd, "vq0.punted"));
}

/*
 * One write over a written block and the hole after it, then many at once
 * over written blocks and holes: each completes OK, and the file and a
 * read through the device hold the data.
 */
TEST_F(xfs, write_across_extent_and_hole_lands)
{
	uint64_t off = 10 * BLK;	/* written, then a hole at 11 */
	unsigned int i;
	void *blk;

	static struct vb_req r;

	vb_pattern(self->tmp, 2 * BLK, off / VB_SECTOR, 7);
	ASSERT_EQ(0, vb_write(&self->d.mem, self->buf[0], self->tmp, 2 * BLK));
	r = (struct vb_req){ .type = VIRTIO_BLK_T_OUT,
			     .sector = off / VB_SECTOR,
			     .data_gpa = self->buf[0], .data_len = 2 * BLK };
	ASSERT_EQ(0, vb_req_post(self->vq, &r));
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	ASSERT_EQ(0, posix_memalign(&blk, BLK, 2 * BLK));
	ASSERT_EQ(2 * BLK, pread(self->b.fd, blk, 2 * BLK, off));
	ASSERT_EQ(0, memcmp(self->tmp, blk, 2 * BLK));
	free(blk);

	/* 32 writes of 12 KiB: written, hole, written or hole, written, hole. */
	batch(_metadata, self, VIRTIO_BLK_T_OUT, 1 << 20, 3 * BLK, 3 * BLK, 9);
	batch(_metadata, self, VIRTIO_BLK_T_IN, 1 << 20, 3 * BLK, 3 * BLK, 0);
	for (i = 0; i < NREQ; i++) {
		vb_pattern(self->want, 3 * BLK,
			   ((1 << 20) + i * 3 * BLK) / VB_SECTOR, 9);
		ASSERT_EQ(0, vb_read(&self->d.mem, self->buf[i], self->tmp,
				     3 * BLK));
		ASSERT_EQ(0, memcmp(self->want, self->tmp, 3 * BLK))
			TH_LOG("write %u did not land", i);
	}
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.ioerr"));
}

TEST_HARNESS_MAIN
