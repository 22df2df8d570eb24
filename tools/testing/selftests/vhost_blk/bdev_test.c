// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk on block devices that do not simply work: one made read-only
 * with BLKROSET, a slow null_blk (timer completions) that keeps requests in
 * flight so that the used ring's NO_NOTIFY flag can be watched, and
 * device-mapper tables that fail I/O (dm-error, and dm-linear with an error
 * target in the middle), and dm-delay, which keeps requests in flight across
 * a stop to show that nothing is written after it returned.  dm tables are
 * made with dmsetup; the tests that need it skip where it is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define DISK_SECTORS	(DISK_SIZE / VB_SECTOR)
#define LEN		(16 * 1024)
#define NO_EVENT_IDX	(VB_F_TRANSPORT & ~(1ULL << VIRTIO_RING_F_EVENT_IDX))

/* ---------------------------------------------- read-only block device */

FIXTURE(ro) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
	uint8_t *want, *got;
	bool ro_set;
};

FIXTURE_VARIANT(ro) {
	const char *kind;
};

FIXTURE_VARIANT_ADD(ro, brd) { .kind = "brd" };
FIXTURE_VARIANT_ADD(ro, nullb) { .kind = "nullb" };

#define RO_SECTOR	1024

FIXTURE_SETUP(ro)
{
	struct vb_opts o = { .num = 32 };
	const char *why = "";
	int ret, one = 1, ro = 0;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->ro_set = false;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	self->want = malloc(LEN);
	self->got = malloc(LEN);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->got);
	/* known content, then read-only on the O_RDWR fd we attach */
	vb_pattern(self->want, LEN, RO_SECTOR, 11);
	ASSERT_EQ(0, vb_backend_write(&self->b, RO_SECTOR * 512ULL,
				      self->want, LEN));
	ASSERT_EQ(O_RDWR, fcntl(self->b.fd, F_GETFL) & O_ACCMODE);
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROSET, &one));
	self->ro_set = true;
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROGET, &ro));
	ASSERT_EQ(1, ro);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, LEN);
}

FIXTURE_TEARDOWN(ro)
{
	int zero = 0;

	vb_dev_teardown(&self->d);
	/* brd's /dev/ram0 outlives us: leave it writable */
	if (self->ro_set && ioctl(self->b.fd, BLKROSET, &zero))
		perror("BLKROSET 0");
	vb_backend_destroy(&self->b);
	free(self->want);
	free(self->got);
}

static void ro_expect_unchanged(struct __test_metadata *_metadata,
				FIXTURE_DATA(ro) *self)
{
	ASSERT_EQ(0, vb_backend_read(&self->b, RO_SECTOR * 512ULL, self->got,
				     LEN));
	ASSERT_EQ(0, memcmp(self->want, self->got, LEN))
		TH_LOG("the read-only device was modified");
}

TEST_F(ro, write_fails_with_ioerr_and_leaves_the_data)
{
	uint32_t ul = 0;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR, LEN, 12,
				      &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR + 8, 512,
				      12, &ul));
	ro_expect_unchanged(_metadata, self);
}

TEST_F(ro, discard_and_write_zeroes_fail_with_ioerr_and_leave_the_data)
{
	uint32_t ul = 0;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, RO_SECTOR,
				LEN / 512, 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, RO_SECTOR,
				LEN / 512, 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, RO_SECTOR,
				LEN / 512, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP,
				&ul));
	ASSERT_EQ(1, ul);
	ro_expect_unchanged(_metadata, self);
}

TEST_F(ro, reads_return_the_device_content)
{
	uint32_t ul = 0;

	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_read_to(self->vq, self->buf, RO_SECTOR, LEN, self->got,
				&ul));
	ASSERT_EQ(LEN + 1, ul);
	ASSERT_EQ(0, memcmp(self->want, self->got, LEN));
}

TEST_F(ro, flush_succeeds_and_get_id_works)
{
	uint32_t ul = 0;

	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_GET_ID, 0,
					 self->buf, 20, 0, &ul));
	ASSERT_EQ(21, ul);
}

TEST_F(ro, writes_in_flight_with_reads_fail_alone)
{
	struct vb_req r[16];
	unsigned int i;

	for (i = 0; i < 16; i++) {
		r[i] = (struct vb_req){
			.type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
			.sector = RO_SECTOR + 8 * (i / 2),
			.data_gpa = self->buf + 4096 * (i % 4),
			.data_len = 4096, .layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 16, VB_TIMEOUT_MS));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(i % 2 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR,
			  r[i].status) TH_LOG("request %u", i);
		ASSERT_EQ(i % 2 ? 4097 : 1, r[i].used_len);
	}
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
	ro_expect_unchanged(_metadata, self);
}

TEST_F(ro, writes_succeed_after_clearing_ro_and_attaching_again)
{
	uint32_t ul = 0;
	int zero = 0;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR, LEN, 13,
				      &ul));
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROSET, &zero));
	self->ro_set = false;
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR, LEN, 13,
				      &ul));
	vb_pattern(self->want, LEN, RO_SECTOR, 13);
	ro_expect_unchanged(_metadata, self);
}

TEST_F(ro, read_only_is_followed_while_attached)
{
	uint32_t ul = 0;
	int zero = 0, one = 1;

	/* writable again, without attaching again */
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROSET, &zero));
	self->ro_set = false;
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR, LEN, 14,
				      &ul));
	vb_pattern(self->want, LEN, RO_SECTOR, 14);
	ro_expect_unchanged(_metadata, self);

	/* and read-only again: the next write must not reach the device */
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROSET, &one));
	self->ro_set = true;
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, RO_SECTOR, LEN, 15,
				      &ul));
	ASSERT_EQ(1, ul);
	ro_expect_unchanged(_metadata, self);
}

/* ------------------------------------ NO_NOTIFY with a slow backend */

#define SLOW_NUM	16
/* null_blk completes each request by a timer this long after submission */
#define SLOW_MS		400

FIXTURE(slow) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
};

FIXTURE_SETUP(slow)
{
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_nullb_create_slow(&self->b, DISK_SIZE, SLOW_MS, 64, &why);
	if (ret < 0)
		SKIP(return, "slow null_blk: %s (%s)", why, strerror(-ret));
}

FIXTURE_TEARDOWN(slow)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

static void slow_start(struct __test_metadata *_metadata,
		       FIXTURE_DATA(slow) *self, uint64_t features)
{
	struct vb_opts o = { .num = SLOW_NUM, .backend = self->b.fd,
			     .features = features };
	int ret;

	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, SLOW_NUM * 4096);
	ASSERT_NE(0, self->buf);
}

/* A 4 KiB read into the buffer of slot @i (< SLOW_NUM). */
static void slow_post(struct __test_metadata *_metadata,
		      FIXTURE_DATA(slow) *self, struct vb_req *r,
		      unsigned int i)
{
	*r = (struct vb_req){ .type = VIRTIO_BLK_T_IN, .sector = 8 * i,
			      .data_gpa = self->buf + 4096 * i,
			      .data_len = 4096, .layout = VB_L_INDIRECT };
	ASSERT_EQ(0, vb_req_post(self->vq, r));
}

static bool no_notify(struct vb_vq *vq)
{
	return __atomic_load_n(&vq->used->flags, __ATOMIC_ACQUIRE) &
	       VRING_USED_F_NO_NOTIFY;
}

/*
 * A full ring of slow requests: the device takes them all and then has no
 * room for more, so it must leave kicks off until they complete.
 */
TEST_F(slow, used_no_notify_is_set_while_a_full_ring_is_in_flight)
{
	struct vb_req r[SLOW_NUM];
	bool seen = false;
	unsigned int i;

	slow_start(_metadata, self, NO_EVENT_IDX);
	for (i = 0; i < SLOW_NUM; i++)
		slow_post(_metadata, self, &r[i], i);
	vb_vq_kick(self->vq);
	for (i = 0; i < 2000 && vb_used_idx(self->vq) == 0; i++) {
		if (no_notify(self->vq)) {
			seen = vb_used_idx(self->vq) == 0;
			break;
		}
		usleep(100);
	}
	ASSERT_TRUE(seen) TH_LOG("NO_NOTIFY never seen with %u requests in flight",
				 SLOW_NUM);
	ASSERT_EQ(0, vb_vq_wait(self->vq, SLOW_NUM, VB_TIMEOUT_MS));
	for (i = 0; i < SLOW_NUM; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
	/* idle: the device wants kicks again */
	for (i = 0; i < 100 && no_notify(self->vq); i++)
		usleep(10000);
	ASSERT_FALSE(no_notify(self->vq));
	slow_post(_metadata, self, &r[0], 0);
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
	ASSERT_EQ(VIRTIO_BLK_S_OK, r[0].status);
}

/*
 * A guest that kicks only when NO_NOTIFY is clear (virtqueue_kick_prepare
 * without EVENT_IDX) and refills the ring as requests complete must never
 * wait for a request the device did not see.
 */
TEST_F(slow, guest_that_honours_no_notify_gets_every_request_served)
{
	struct vb_req r[SLOW_NUM];
	bool busy[SLOW_NUM] = { false };
	unsigned int i, posted = 0, done = 0, kicks = 0, skipped = 0;
	const unsigned int total = 3 * SLOW_NUM;

	slow_start(_metadata, self, NO_EVENT_IDX);
	while (done < total) {
		bool added = false;

		for (i = 0; i < SLOW_NUM && posted < total; i++) {
			if (busy[i] || !self->vq->nfree)
				continue;
			slow_post(_metadata, self, &r[i], i);
			busy[i] = true;
			posted++;
			added = true;
		}
		if (added) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (no_notify(self->vq)) {
				skipped++;
			} else {
				vb_vq_kick(self->vq);
				kicks++;
			}
		}
		ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS))
			TH_LOG("stalled: %u of %u done, %u kicks, %u skipped",
			       done, total, kicks, skipped);
		for (i = 0; i < SLOW_NUM; i++)
			if (busy[i] && r[i].done) {
				ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
				busy[i] = false;
				done++;
			}
	}
	TH_LOG("%u kicks, %u skipped for NO_NOTIFY", kicks, skipped);
}

TEST_F(slow, event_idx_leaves_used_flags_alone)
{
	struct vb_req r[SLOW_NUM];
	unsigned int i;

	slow_start(_metadata, self, 0);
	ASSERT_TRUE(self->d.features & (1ULL << VIRTIO_RING_F_EVENT_IDX));
	for (i = 0; i < SLOW_NUM; i++)
		slow_post(_metadata, self, &r[i], i);
	vb_vq_kick(self->vq);
	for (i = 0; i < VB_TIMEOUT_MS && self->vq->completed < SLOW_NUM; i++) {
		ASSERT_FALSE(no_notify(self->vq));
		ASSERT_LE(0, vb_vq_collect(self->vq));
		usleep(1000);
	}
	ASSERT_EQ(SLOW_NUM, self->vq->completed);
	for (i = 0; i < SLOW_NUM; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
}

/* ------------------------------------------------------ device-mapper */

/*
 * A queue keeps the requests it completed for its next ones, at most 64
 * (VHOST_BLK_REQ_CACHE), and a kept request serves the next one as a new
 * one would: writes and reads of a batch that reuses them carry the right
 * data.
 */
#define CACHE_MAX	64
#define CACHE_BATCH	100

FIXTURE(cache) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t wbuf, rbuf;
};

FIXTURE_SETUP(cache)
{
	struct vb_opts o = { .num = 128 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	/* Slow enough that the whole batch is in flight at once. */
	ret = vb_nullb_create_slow(&self->b, DISK_SIZE, SLOW_MS, 128, &why);
	if (ret < 0)
		SKIP(return, "slow null_blk: %s (%s)", why, strerror(-ret));
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->wbuf = vb_alloc_data(&self->d.mem, CACHE_BATCH * 4096);
	self->rbuf = vb_alloc_data(&self->d.mem, CACHE_BATCH * 4096);
	ASSERT_NE(0, self->wbuf);
	ASSERT_NE(0, self->rbuf);
}

FIXTURE_TEARDOWN(cache)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

/*
 * CACHE_BATCH 4 KiB requests of @type at once, slot i at sector 8 * i,
 * each in one descriptor of the ring.
 */
static void cache_batch(struct __test_metadata *_metadata,
			FIXTURE_DATA(cache) *self, uint32_t type)
{
	struct vb_req r[CACHE_BATCH];
	uint64_t buf = type == VIRTIO_BLK_T_OUT ? self->wbuf : self->rbuf;
	unsigned int i;

	for (i = 0; i < CACHE_BATCH; i++) {
		r[i] = (struct vb_req){ .type = type, .sector = 8 * i,
					.data_gpa = buf + 4096 * i,
					.data_len = 4096,
					.layout = VB_L_INDIRECT };
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, CACHE_BATCH, VB_TIMEOUT_MS));
	for (i = 0; i < CACHE_BATCH; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status) TH_LOG("slot %u", i);
}

TEST_F(cache, completed_requests_are_kept_up_to_64_and_serve_the_next)
{
	static char want[CACHE_BATCH * 4096], got[CACHE_BATCH * 4096];
	uint32_t ul;
	unsigned int i;

	/* One at a time: the one request is kept and taken again. */
	for (i = 0; i < 3; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, 0, self->rbuf, 4096,
				0, &ul));
	ASSERT_EQ(1, vb_fdinfo_num(self->d.fd, "vq0.cached_reqs"));

	for (i = 0; i < CACHE_BATCH; i++)
		vb_pattern(want + 4096 * i, 4096, 8 * i, 0xcac4e);
	ASSERT_EQ(0, vb_write(&self->d.mem, self->wbuf, want, sizeof(want)));
	cache_batch(_metadata, self, VIRTIO_BLK_T_OUT);
	ASSERT_EQ(CACHE_MAX, vb_fdinfo_num(self->d.fd, "vq0.cached_reqs"));
	/* The reads take the kept requests first, the writes' among them. */
	ASSERT_EQ(0, vb_fill(&self->d.mem, self->rbuf, 0, sizeof(got)));
	cache_batch(_metadata, self, VIRTIO_BLK_T_IN);
	ASSERT_EQ(0, vb_read(&self->d.mem, self->rbuf, got, sizeof(got)));
	for (i = 0; i < CACHE_BATCH; i++)
		ASSERT_EQ(0, memcmp(want + 4096 * i, got + 4096 * i, 4096))
			TH_LOG("slot %u read back other data", i);
	ASSERT_EQ(CACHE_MAX, vb_fdinfo_num(self->d.fd, "vq0.cached_reqs"));
	ASSERT_EQ(0, vb_fdinfo_num(self->d.fd, "vq0.inflight"));
}

FIXTURE(dmerr) {
	struct vb_dev d;
	struct vb_dm dm;
	struct vb_vq *vq;
	uint64_t buf;
};

FIXTURE_SETUP(dmerr)
{
	struct vb_opts o = { .num = 64 };
	char table[64];
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->dm.fd = -1;
	self->dm.name[0] = 0;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	snprintf(table, sizeof(table), "0 %llu error",
		 (unsigned long long)DISK_SECTORS);
	ret = vb_dm_create(&self->dm, "vbt-err", table, &why);
	if (ret < 0)
		SKIP(return, "dm-error: %s (%s)", why, strerror(-ret));
	o.backend = self->dm.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, 1 << 20);
}

FIXTURE_TEARDOWN(dmerr)
{
	vb_dev_teardown(&self->d);
	vb_dm_destroy(&self->dm);
}

TEST_F(dmerr, every_read_and_write_fails_with_ioerr_and_used_len_1)
{
	static const uint32_t lens[] = { 512, 4096, 65536, 1 << 20 };
	uint64_t sector;
	unsigned int i, layout;
	uint32_t ul;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		sector = (DISK_SECTORS - lens[i] / 512) * i / 4;
		for (layout = 0; layout <= VB_L_ALL; layout += 5) {
			ul = 0;
			ASSERT_EQ(VIRTIO_BLK_S_IOERR,
				  vb_io(self->vq, VIRTIO_BLK_T_IN, sector,
					self->buf, lens[i], layout, &ul))
				TH_LOG("read of %u at %llu", lens[i],
				       (unsigned long long)sector);
			ASSERT_EQ(1, ul);
			ul = 0;
			ASSERT_EQ(VIRTIO_BLK_S_IOERR,
				  vb_io(self->vq, VIRTIO_BLK_T_OUT, sector,
					self->buf, lens[i], layout, &ul))
				TH_LOG("write of %u at %llu", lens[i],
				       (unsigned long long)sector);
			ASSERT_EQ(1, ul);
		}
	}
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

TEST_F(dmerr, a_full_ring_of_failing_requests_completes)
{
	static struct vb_req r[64];
	unsigned int i;

	for (i = 0; i < 64; i++) {
		r[i] = (struct vb_req){
			.type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
			.sector = 64 * i, .data_gpa = self->buf + 8192 * i,
			.data_len = 8192, .layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 64, VB_TIMEOUT_MS));
	for (i = 0; i < 64; i++) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR, r[i].status) TH_LOG("request %u", i);
		ASSERT_EQ(1, r[i].used_len);
	}
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

TEST_F(dmerr, flush_gives_the_same_status_every_time)
{
	uint32_t ul = 0;
	int first, i, st;

	first = vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, &ul);
	TH_LOG("flush on dm-error: status %d", first);
	ASSERT_TRUE(first == VIRTIO_BLK_S_OK || first == VIRTIO_BLK_S_IOERR);
	ASSERT_EQ(1, ul);
	for (i = 0; i < 4; i++) {
		/* also after failed writes */
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, 8 * i, self->buf,
				4096, 0, &ul));
		st = vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, &ul);
		ASSERT_EQ(first, st);
		ASSERT_EQ(1, ul);
	}
}

TEST_F(dmerr, discard_and_write_zeroes_never_succeed)
{
	uint32_t ul = 0;
	int st;

	st = vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, 0, 64, 0, &ul);
	ASSERT_TRUE(st == VIRTIO_BLK_S_IOERR || st == VIRTIO_BLK_S_UNSUPP)
		TH_LOG("discard: status %d", st);
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, 0, 64, 0,
				&ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, 64, 64,
				VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &ul));
	ASSERT_EQ(1, ul);
}

TEST_F(dmerr, stop_and_swap_to_a_good_backend_after_errors_work)
{
	struct vb_backend b;
	const char *why = "";
	unsigned int base = 0;
	uint32_t ul;
	int ret;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_IN, 0,
					    self->buf, 4096, 0, &ul));
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(1, base);
	ASSERT_EQ(0, vb_vq_start(&self->d, self->vq, base));
	ret = vb_backend_create(&b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, vb_set_backend(&self->d, b.fd));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0,
					 self->buf, 4096, 0, &ul));
	ASSERT_EQ(4097, ul);
	ASSERT_EQ(0, vb_set_backend(&self->d, self->dm.fd));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_IN, 0,
					    self->buf, 4096, 0, &ul));
	vb_backend_destroy(&b);
}

/* dm-linear over null_blk with an error target at [HOLE, HOLE + HOLE_LEN) */
#define HOLE		1024
#define HOLE_LEN	1024

FIXTURE(dmhole) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_dm dm;
	struct vb_vq *vq;
	uint64_t buf;
	uint8_t *want, *got;
};

FIXTURE_SETUP(dmhole)
{
	struct vb_opts o = { .num = 64 };
	const char *why = "";
	struct stat st;
	char table[320];
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->dm.fd = -1;
	self->dm.name[0] = 0;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (!vb_have_dmsetup())
		SKIP(return, "dmsetup not installed (apt-get install dmsetup)");
	ret = vb_backend_create(&self->b, "nullb", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "nullb: %s (%s)", why, strerror(-ret));
	ASSERT_EQ(0, fstat(self->b.fd, &st));
	snprintf(table, sizeof(table),
		 "0 %u linear %u:%u 0\\n%u %u error\\n%u %llu linear %u:%u %u\\n",
		 HOLE, major(st.st_rdev), minor(st.st_rdev), HOLE, HOLE_LEN,
		 HOLE + HOLE_LEN,
		 (unsigned long long)DISK_SECTORS - HOLE - HOLE_LEN,
		 major(st.st_rdev), minor(st.st_rdev), HOLE + HOLE_LEN);
	ret = vb_dm_create(&self->dm, "vbt-hole", table, &why);
	if (ret < 0)
		SKIP(return, "dm-linear: %s (%s)", why, strerror(-ret));
	self->want = malloc(1 << 20);
	self->got = malloc(1 << 20);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->got);
	o.backend = self->dm.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, 1 << 20);
}

FIXTURE_TEARDOWN(dmhole)
{
	vb_dev_teardown(&self->d);
	vb_dm_destroy(&self->dm);
	vb_backend_destroy(&self->b);
	free(self->want);
	free(self->got);
}

/* Ranges (sector, sectors) wholly or partly in the hole, and wholly out. */
static const struct { uint64_t sector; uint32_t n; } in_hole[] = {
	{ HOLE, 8 }, { HOLE + 500, 1 }, { HOLE + HOLE_LEN - 8, 8 },
	{ HOLE - 8, 16 }, { HOLE + HOLE_LEN - 8, 16 }, { HOLE - 512, 2048 },
}, outside[] = {
	{ 0, 8 }, { HOLE - 8, 8 }, { HOLE + HOLE_LEN, 8 },
	{ HOLE + HOLE_LEN, 1024 }, { DISK_SECTORS - 128, 128 },
};

TEST_F(dmhole, requests_touching_the_error_range_fail_with_ioerr)
{
	unsigned int i;
	uint32_t ul;

	for (i = 0; i < ARRAY_SIZE(in_hole); i++) {
		uint32_t len = in_hole[i].n * 512;

		ul = 0;
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io_read_to(self->vq, self->buf, in_hole[i].sector,
					len, self->got, &ul))
			TH_LOG("read [%llu, +%u)",
			       (unsigned long long)in_hole[i].sector,
			       in_hole[i].n);
		ASSERT_EQ(1, ul);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io_write_pattern(self->vq, self->buf,
					      in_hole[i].sector, len, i, &ul))
			TH_LOG("write [%llu, +%u)",
			       (unsigned long long)in_hole[i].sector,
			       in_hole[i].n);
		ASSERT_EQ(1, ul);
	}
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

TEST_F(dmhole, requests_outside_the_error_range_succeed_with_the_data)
{
	unsigned int i;
	uint32_t ul;

	for (i = 0; i < ARRAY_SIZE(outside); i++) {
		uint64_t sector = outside[i].sector;
		uint32_t len = outside[i].n * 512;

		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io_write_pattern(self->vq, self->buf, sector, len,
					      40 + i, &ul));
		ASSERT_EQ(1, ul);
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io_read_to(self->vq, self->buf, sector, len,
					self->got, &ul));
		ASSERT_EQ(len + 1, ul);
		vb_pattern(self->want, len, sector, 40 + i);
		ASSERT_EQ(0, memcmp(self->want, self->got, len))
			TH_LOG("read back [%llu, +%u)",
			       (unsigned long long)sector, outside[i].n);
		/* dm-linear maps 1:1 onto the null_blk below */
		ASSERT_EQ(0, vb_backend_read(&self->b, sector * 512,
					     self->got, len));
		ASSERT_EQ(0, memcmp(self->want, self->got, len));
	}
}

TEST_F(dmhole, failed_writes_never_reach_the_device_below)
{
	uint32_t ul;

	/* the null_blk sectors hidden by the error target, and the edges */
	vb_pattern(self->want, 3 * 4096, HOLE - 8, 77);
	ASSERT_EQ(0, vb_backend_write(&self->b, (HOLE - 8) * 512ULL,
				      self->want, 3 * 4096));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, HOLE - 8, 3 * 4096,
				      78, &ul));
	ASSERT_EQ(0, vb_backend_read(&self->b, HOLE * 512ULL, self->got,
				     2 * 4096));
	ASSERT_EQ(0, memcmp(self->want + 8 * 512, self->got, 2 * 4096))
		TH_LOG("the error target let a write through");
}

TEST_F(dmhole, mixed_batch_fails_exactly_the_requests_in_the_hole)
{
	static struct vb_req r[32];
	unsigned int i;

	for (i = 0; i < 32; i++) {
		/* every 4th request lands in the hole */
		uint64_t sector = i % 4 == 3 ? HOLE + 16 * i :
				  HOLE + HOLE_LEN + 16 * i;

		r[i] = (struct vb_req){
			.type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
			.sector = sector, .data_gpa = self->buf + 8192 * i,
			.data_len = 8192, .layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 32, VB_TIMEOUT_MS));
	for (i = 0; i < 32; i++) {
		bool bad = i % 4 == 3;

		ASSERT_EQ(bad ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK,
			  r[i].status) TH_LOG("request %u", i);
		ASSERT_EQ(bad || !(i % 2) ? 1 : 8193, r[i].used_len);
	}
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

/* --------------------------- no write to guest memory after a stop */

/*
 * dm-delay holds every bio QUIESCE_DELAY_MS before it reaches a null_blk,
 * so a read's data lands in guest memory, and its status and used entry
 * follow, long after the device took the request.  Once GET_VRING_BASE,
 * RESET_OWNER or close has returned, the device must not write one more
 * byte of guest memory: the VMM reuses or unmaps it right away (a reset, a
 * hot-unplug, a VMM that exits).
 */
#define QUIESCE_NUM		16
#define QUIESCE_LEN		4096
#define QUIESCE_DELAY_MS	1000
#define QUIESCE_SEED		41

FIXTURE(quiesce) {
	struct vb_dev d;
	struct vb_delay dl;
	struct vb_vq *vq;
	uint64_t buf;
	struct vb_req r[QUIESCE_NUM];
	uint8_t *snap;
	size_t used_size;
};

FIXTURE_SETUP(quiesce)
{
	struct vb_opts o = { .num = QUIESCE_NUM };
	const char *why = "";
	uint8_t *p;
	int ret;

	vb_dev_init(&self->d);
	vb_delay_init(&self->dl);
	self->snap = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_delay_create(&self->dl, "vbt-delay", DISK_SIZE, NULL,
			      QUIESCE_DELAY_MS, &why);
	if (ret < 0)
		SKIP(return, "dm-delay over null_blk: %s (%s)", why,
		     strerror(-ret));
	/* on the null_blk itself, not delayed */
	p = malloc(QUIESCE_NUM * QUIESCE_LEN);
	ASSERT_NE(NULL, p);
	vb_pattern(p, QUIESCE_NUM * QUIESCE_LEN, 0, QUIESCE_SEED);
	ret = vb_backend_write(&self->dl.disk, 0, p,
			       QUIESCE_NUM * QUIESCE_LEN);
	free(p);
	ASSERT_EQ(0, ret);
	o.backend = self->dl.dm.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, QUIESCE_NUM * QUIESCE_LEN);
	ASSERT_NE(0, self->buf);
	/* flags, idx, the ring and avail_event */
	self->used_size = 4 + 8 * QUIESCE_NUM + 2;
	self->snap = malloc(self->used_size + QUIESCE_NUM * (QUIESCE_LEN + 1));
	ASSERT_NE(NULL, self->snap);
}

FIXTURE_TEARDOWN(quiesce)
{
	vb_dev_teardown(&self->d);
	vb_delay_destroy(&self->dl);
	free(self->snap);
}

/*
 * A ring full of delayed reads into buffers of 0xaa, kicked, and none
 * completed yet.  (That the device had taken them, GET_VRING_BASE's
 * count shows: it drains what it took.)
 */
static void quiesce_fill_ring(struct __test_metadata *_metadata,
			      FIXTURE_DATA(quiesce) *self)
{
	unsigned int i;

	vb_fill(&self->d.mem, self->buf, 0xaa, QUIESCE_NUM * QUIESCE_LEN);
	for (i = 0; i < QUIESCE_NUM; i++) {
		self->r[i] = (struct vb_req){
			.type = VIRTIO_BLK_T_IN, .sector = i * QUIESCE_LEN / VB_SECTOR,
			.data_gpa = self->buf + i * QUIESCE_LEN,
			.data_len = QUIESCE_LEN, .layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(self->vq, &self->r[i]));
	}
	vb_vq_kick(self->vq);
	/* time to take them all; none may be back yet */
	usleep(QUIESCE_DELAY_MS * 1000 / 4);
	ASSERT_EQ(0, vb_used_idx(self->vq))
		TH_LOG("requests completed before the stop: no dm-delay?");
}

/* Copy what the device may write: the used ring, statuses, data buffers. */
static void quiesce_snapshot(FIXTURE_DATA(quiesce) *self, uint8_t *to)
{
	unsigned int i;

	memcpy(to, self->vq->used, self->used_size);
	to += self->used_size;
	for (i = 0; i < QUIESCE_NUM; i++)
		vb_read(&self->d.mem, self->r[i].status_gpa, to++, 1);
	vb_read(&self->d.mem, self->buf, to, QUIESCE_NUM * QUIESCE_LEN);
}

/*
 * Right after the stop returned, snapshot; then watch for twice the delay,
 * in which every request the device abandoned or still held would land,
 * and find guest memory unchanged.  Returns how many requests completed.
 */
static unsigned int quiesce_expect_no_writes(struct __test_metadata *_metadata,
					     FIXTURE_DATA(quiesce) *self)
{
	size_t len = self->used_size + QUIESCE_NUM * (QUIESCE_LEN + 1);
	uint8_t *now = malloc(len);
	unsigned int i, done = 0;
	size_t off;

	ASSERT_NE(NULL, now);
	quiesce_snapshot(self, self->snap);
	usleep(2 * QUIESCE_DELAY_MS * 1000);
	quiesce_snapshot(self, now);
	for (off = 0; off < len && self->snap[off] == now[off]; off++)
		;
	free(now);
	ASSERT_EQ(len, off)
		TH_LOG("guest memory written after the stop returned, at byte %zu of the %s",
		       off < self->used_size ? off : off - self->used_size,
		       off < self->used_size ? "used ring" :
		       off < self->used_size + QUIESCE_NUM ? "status bytes" :
		       "data buffers");
	for (i = 0; i < QUIESCE_NUM; i++)
		done += self->snap[self->used_size + i] != 0xff;
	return done;
}

TEST_F_TIMEOUT(quiesce, no_write_after_get_vring_base_returns, 60)
{
	unsigned int base = ~0u, done;

	quiesce_fill_ring(_metadata, self);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	done = quiesce_expect_no_writes(_metadata, self);
	/*
	 * It had taken every request and drained them all before it
	 * returned: the base, the used ring and the statuses agree.
	 */
	ASSERT_EQ(QUIESCE_NUM, base);
	ASSERT_EQ(base, vb_used_idx(self->vq));
	ASSERT_EQ(base, done);
}

TEST_F_TIMEOUT(quiesce, no_write_after_reset_owner_returns, 60)
{
	quiesce_fill_ring(_metadata, self);
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER, NULL));
	quiesce_expect_no_writes(_metadata, self);
}

TEST_F_TIMEOUT(quiesce, no_write_after_close_returns, 60)
{
	quiesce_fill_ring(_metadata, self);
	ASSERT_EQ(0, close(self->d.fd));
	self->d.fd = -1;
	quiesce_expect_no_writes(_metadata, self);
}

TEST_HARNESS_MAIN
