// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk hostile fuzz: seeded random descriptor tables, chains, indirect
 * tables, flags, lengths, addresses, heads and avail indices.  The device
 * may answer each round any way it likes except by hanging: every kick
 * must either complete every published request or signal the error
 * eventfd within a timeout.  After every round the device goes through
 * RESET_OWNER and QEMU's whole start sequence again and must then serve a
 * valid write and read correctly.  The guest kernel log is checked by the
 * VM runner (no WARN, BUG, Oops, hung task).
 *
 * VHOST_BLK_FUZZ_SEED and VHOST_BLK_FUZZ_ROUNDS override the seed and the
 * number of rounds; a failure logs the seed and round to replay it.
 *
 * Random addresses are either inside two fuzz areas that nothing else uses
 * (and above which nothing else lives, so that long buffers cannot clobber
 * the rings) or outside every memory region: the oracle stays exact.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define NUM		16
#define ROUNDS		400
/* Bound on the whole program in a slow (TCG) VM. */
#define TIME_BUDGET_MS	15000
#define AREA		(512 * 1024)
#define CHUNK		4096
#define TABLES		(AREA / CHUNK - 16)	/* chunks holding tables */

FIXTURE(fuzz) {
	struct vb_dev d;
	struct vb_backend b;
	uint64_t area[2];	/* guest-physical fuzz areas */
	uint64_t ring_lo;	/* region 0 allocator mark before the rings */
	uint64_t buf;		/* for the valid request after each round */
	uint64_t rng;
	uint8_t *want, *got;
};

FIXTURE_SETUP(fuzz)
{
	struct vb_opts o = { .num = NUM };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	/* vq 0's rings were region 0's first allocation */
	self->ring_lo = self->d.vq[0].desc_gpa - self->d.mem.r[0].gpa;
	self->buf = vb_alloc_data(&self->d.mem, 65536);
	ASSERT_NE(0, self->buf);
	/* last in region 2: everything above it is free */
	self->area[0] = vb_alloc_data(&self->d.mem, AREA);
	ASSERT_NE(0, self->area[0]);
	/* across the region 0/1 boundary, in the span reserve */
	self->area[1] = self->d.mem.r[1].gpa - AREA / 2;
	self->want = malloc(65536);
	self->got = malloc(65536);
	ASSERT_NE(NULL, self->want);
	ASSERT_NE(NULL, self->got);
}

FIXTURE_TEARDOWN(fuzz)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->want);
	free(self->got);
}

static uint64_t rnd(FIXTURE_DATA(fuzz) *self, uint64_t n)
{
	return n ? vb_rand(&self->rng) % n : vb_rand(&self->rng);
}

static uint64_t fuzz_addr(FIXTURE_DATA(fuzz) *self)
{
	const struct vb_mem *m = &self->d.mem;
	uint64_t a = self->area[rnd(self, 2)];

	switch (rnd(self, 16)) {
	case 0:	/* below region 0, or in the hole between regions */
		return m->r[0].gpa - 1 - rnd(self, 64);
	case 1:
		return m->r[1].gpa + m->r[1].size + rnd(self, 4096);
	case 2:	/* just below the end of region 2: long buffers overrun it */
		return m->r[2].gpa + m->r[2].size - 1 - rnd(self, 4096);
	case 3:	/* wraps */
		return ~0ULL - rnd(self, 4096);
	case 4:
		return rnd(self, 0) | (1ULL << 63);
	case 5:	/* a chunk start: where the headers are */
	case 6:
	case 7:
	case 8:
	case 9:
		return a + CHUNK * rnd(self, AREA / CHUNK);
	default:
		return a + rnd(self, AREA);
	}
}

static uint32_t fuzz_len(FIXTURE_DATA(fuzz) *self)
{
	static const uint32_t lens[] = {
		0, 1, 7, 15, 16, 17, 511, 512, 513, 4096, 65536, 1 << 20,
		(8 << 20) + 512, 0xffffffff,
	};

	if (rnd(self, 4) == 0)
		return rnd(self, 1 << 16);
	return lens[rnd(self, ARRAY_SIZE(lens))];
}

static uint16_t fuzz_flags(FIXTURE_DATA(fuzz) *self)
{
	uint16_t f = 0;

	if (rnd(self, 3))
		f |= VRING_DESC_F_NEXT;
	if (rnd(self, 2))
		f |= VRING_DESC_F_WRITE;
	if (rnd(self, 10) == 0)
		f |= VRING_DESC_F_INDIRECT;
	if (rnd(self, 50) == 0)
		f |= 1u << rnd(self, 16);
	return f;
}

static void fuzz_desc(FIXTURE_DATA(fuzz) *self, struct vring_desc *d,
		      unsigned int n, bool indirect_table)
{
	d->addr = fuzz_addr(self);
	d->len = fuzz_len(self);
	d->flags = fuzz_flags(self);
	d->next = rnd(self, 8) ? rnd(self, n) : rnd(self, 0x10000);
	if (!indirect_table && (d->flags & VRING_DESC_F_INDIRECT) &&
	    rnd(self, 4)) {
		/* mostly a plausible indirect table in a table chunk */
		d->addr = self->area[rnd(self, 2)] +
			  CHUNK * (16 + rnd(self, TABLES));
		d->len = rnd(self, 8) ? 16 * (1 + rnd(self, 32)) :
					fuzz_len(self);
		if (rnd(self, 2))
			d->flags &= ~VRING_DESC_F_NEXT;
	}
}

/* Headers in the first 16 chunks, random tables in the rest. */
static void fuzz_fill_areas(FIXTURE_DATA(fuzz) *self)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
		VIRTIO_BLK_T_WRITE_ZEROES, 3, 0xffffffff,
	};
	static const uint64_t sectors[] = {
		0, 8, DISK_SIZE / 512 - 1, DISK_SIZE / 512, ~0ULL,
		~0ULL - 7,
	};
	struct vb_mem *m = &self->d.mem;
	unsigned int a, c, i;

	for (a = 0; a < 2; a++) {
		for (c = 0; c < 16; c++) {
			struct virtio_blk_outhdr h = {
				.type = types[rnd(self, ARRAY_SIZE(types))],
				.sector = rnd(self, 2) ?
					  sectors[rnd(self, ARRAY_SIZE(sectors))] :
					  rnd(self, DISK_SIZE / 512),
			};
			uint64_t gpa = self->area[a] + CHUNK * c;

			vb_write(m, gpa, &h, sizeof(h));
		}
		for (c = 16; c < AREA / CHUNK; c++) {
			struct vring_desc t[32];

			for (i = 0; i < 32; i++)
				fuzz_desc(self, &t[i], 32, true);
			vb_write(m, self->area[a] + CHUNK * c, t, sizeof(t));
		}
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * One round on a freshly set up queue: random descriptor table, 1 to 4
 * random heads (now and then an avail index that jumps too far), one kick.
 * Returns 1 if the queue broke, 0 if it completed everything.
 */
static int fuzz_round(struct __test_metadata *_metadata,
		      FIXTURE_DATA(fuzz) *self, unsigned int round)
{
	struct vb_vq *vq = &self->d.vq[0];
	unsigned int i, heads = 1 + rnd(self, 4);
	bool plausible = rnd(self, 2);
	uint16_t idx;
	int64_t end;

	fuzz_fill_areas(self);
	for (i = 0; i < NUM; i++)
		fuzz_desc(self, &vq->desc[i], NUM, false);
	/* a plausible chain now and then: header, data, status */
	if (plausible) {
		unsigned int h = rnd(self, NUM - 2);

		vq->desc[h].addr = self->area[0] + CHUNK * rnd(self, 16);
		vq->desc[h].len = 16;
		vq->desc[h].flags = VRING_DESC_F_NEXT;
		vq->desc[h].next = h + 1;
		vq->desc[h + 1].addr = self->area[1] + 512 * rnd(self, AREA / 1024);
		vq->desc[h + 1].len = 512 * (1 + rnd(self, 64));
		vq->desc[h + 1].flags |= VRING_DESC_F_NEXT;
		vq->desc[h + 1].next = h + 2;
		vq->desc[h + 2].addr = self->area[0] + AREA - 1 - rnd(self, 4096);
		vq->desc[h + 2].len = 1;
		vq->desc[h + 2].flags = VRING_DESC_F_WRITE;
		vq->avail->ring[0] = h;
	}
	for (i = plausible; i < heads; i++)
		vq->avail->ring[i] = rnd(self, 16) ? rnd(self, NUM) :
				     rnd(self, 0x10000);
	idx = rnd(self, 20) ? heads : NUM + 1 + rnd(self, 0xfff0);
	__atomic_store_n(&vq->avail->idx, idx, __ATOMIC_RELEASE);
	vb_vq_kick(vq);

	end = now_ms() + VB_TIMEOUT_MS;
	for (;;) {
		if (vb_fd_signalled(vq->err))
			return 1;
		if (vb_used_idx(vq) == idx)
			return 0;
		if (now_ms() > end)
			break;
		usleep(500);
	}
	ASSERT_TRUE(0) TH_LOG("round %u hung: avail %u, used %u, no error signal",
			      round, idx, vb_used_idx(vq));
	return -1;
}

/* RESET_OWNER, QEMU's start sequence, then a write and a read that work. */
static void fuzz_resetup_and_check(struct __test_metadata *_metadata,
				   FIXTURE_DATA(fuzz) *self,
				   unsigned int round)
{
	struct vb_opts o = { .num = NUM, .backend = self->b.fd };
	uint64_t sector = rnd(self, DISK_SIZE / 512 - 128);
	uint32_t len = 512 * (1 + rnd(self, 128)), ul = 0;
	struct vb_vq *vq = &self->d.vq[0];
	int ret;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER, NULL));
	self->d.mem.r[0].lo = self->ring_lo;
	ret = vb_dev_sequence(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("round %u: start sequence: %s", round,
				 strerror(-ret));
	vb_pattern(self->want, len, sector, round);
	vb_write(&self->d.mem, self->buf, self->want, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_OUT, sector,
					 self->buf, len, rnd(self, VB_L_ALL + 1),
					 &ul)) TH_LOG("round %u", round);
	vb_fill(&self->d.mem, self->buf, 0, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_IN, sector,
					 self->buf, len, rnd(self, VB_L_ALL + 1),
					 &ul)) TH_LOG("round %u", round);
	ASSERT_EQ(len + 1, ul);
	vb_read(&self->d.mem, self->buf, self->got, len);
	ASSERT_EQ(0, memcmp(self->want, self->got, len))
		TH_LOG("round %u: wrong data after reset", round);
	ASSERT_FALSE(vb_fd_signalled(vq->err));
}

TEST_F(fuzz, random_rings_never_hang_and_reset_always_recovers)
{
	const char *env = getenv("VHOST_BLK_FUZZ_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed;
	unsigned int rounds = ROUNDS, round, broke = 0, served = 0;
	int64_t end = now_ms() + TIME_BUDGET_MS;
	int ret;

	env = getenv("VHOST_BLK_FUZZ_ROUNDS");
	if (env)
		rounds = strtoul(env, NULL, 0);
	/* a bijection of the seed; xorshift needs a state other than 0 */
	self->rng = (seed + 1) * 0x9E3779B97F4A7C15ULL ?: 1;
	TH_LOG("seed %#llx, up to %u rounds", (unsigned long long)seed, rounds);
	/* start every round from the same clean state */
	fuzz_resetup_and_check(_metadata, self, 0);
	for (round = 1; round <= rounds; round++) {
		ret = fuzz_round(_metadata, self, round);
		if (ret < 0)
			return;
		if (ret)
			broke++;
		else
			served++;
		fuzz_resetup_and_check(_metadata, self, round);
		if (now_ms() > end && !env)
			break;
	}
	TH_LOG("%u rounds: %u broke the queue, %u were served", round - 1,
	       broke, served);
	/* the generator must reach both outcomes */
	ASSERT_LT(0, broke);
	ASSERT_LT(0, served);
}

TEST_HARNESS_MAIN
