// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk under load: long randomized read/write/verify runs against a
 * shadow copy, concurrent submitters on several queues, and control-plane
 * changes (backend swap, memory-table update) while I/O runs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define MAX_SECT	64		/* largest random request: 32 KiB */
#define SLOT_BYTES	(MAX_SECT * VB_SECTOR)
/* VB_L_HDR_DATA puts the header in the 16 bytes before the data */
#define SLOT_STRIDE	(SLOT_BYTES + 4096)

/*
 * One random I/O run on one queue over [first, first + nsect): up to depth
 * requests in flight, never two overlapping while one of them writes, every
 * read checked against the shadow when it completes.
 */
struct run {
	struct vb_vq *vq;
	uint8_t *shadow;	/* whole-disk shadow, shared by all runs */
	uint64_t first, nsect;
	unsigned int depth, ops;
	uint64_t seed;
	bool idempotent;	/* writes rewrite the shadow's own content */
	bool stop;		/* set by another thread: finish early */
	uint64_t data;		/* depth slots of SLOT_STRIDE */
	/* result */
	int ret;
	char msg[160];
	unsigned int done;
};

struct slot {
	struct vb_req r;
	bool busy;
};

static void *run_io(void *arg)
{
	struct run *ru = arg;
	struct vb_mem *m = &ru->vq->dev->mem;
	struct slot *s = calloc(ru->depth, sizeof(*s));
	/* per sector: reads in flight, or 0xffff for a write in flight */
	uint16_t *busy = calloc(ru->nsect, sizeof(*busy));
	uint8_t *tmp = malloc(SLOT_BYTES);
	unsigned int posted = 0, inflight = 0, i;
	int ret;

	ru->ret = -ENOMEM;
	if (!s || !busy || !tmp)
		goto out;
	ru->ret = 0;
	while (ru->done < ru->ops) {
		bool kick = false;

		while (posted < ru->ops && inflight < ru->depth &&
		       ru->vq->nfree && !ru->stop) {
			uint64_t r = vb_rand(&ru->seed);
			uint32_t n = 1 + r % MAX_SECT;
			uint64_t sec = (r >> 8) % (ru->nsect - n + 1), k;
			bool write = (r >> 40) & 1, clash = false;
			struct slot *sl = NULL;

			for (k = sec; k < sec + n; k++)
				if (busy[k] == 0xffff || (write && busy[k]))
					clash = true;
			if (clash)
				break;	/* wait for completions first */
			for (i = 0; i < ru->depth; i++)
				if (!s[i].busy) {
					sl = &s[i];
					break;
				}
			sl->busy = true;
			sl->r = (struct vb_req){
				.type = write ? VIRTIO_BLK_T_OUT :
						VIRTIO_BLK_T_IN,
				.sector = ru->first + sec,
				.data_gpa = ru->data + (sl - s) * SLOT_STRIDE,
				.data_len = n * VB_SECTOR,
				.layout = (r >> 48) & VB_L_ALL,
			};
			if (write) {
				uint8_t *sh = ru->shadow +
					      (ru->first + sec) * VB_SECTOR;

				if (!ru->idempotent)
					vb_pattern(sh, n * VB_SECTOR,
						   ru->first + sec, r >> 32);
				vb_write(m, sl->r.data_gpa, sh, n * VB_SECTOR);
			} else {
				vb_fill(m, sl->r.data_gpa, 0xaa, n * VB_SECTOR);
			}
			for (k = sec; k < sec + n; k++)
				busy[k] = write ? 0xffff : busy[k] + 1;
			ret = vb_req_post(ru->vq, &sl->r);
			if (ret) {
				snprintf(ru->msg, sizeof(ru->msg),
					 "post: %s", strerror(-ret));
				ru->ret = ret;
				goto out;
			}
			posted++;
			inflight++;
			kick = true;
		}
		if (kick)
			vb_vq_kick(ru->vq);
		if (!inflight)
			break;	/* stopped */
		ret = vb_vq_wait(ru->vq, 1, VB_TIMEOUT_MS);
		if (ret) {
			snprintf(ru->msg, sizeof(ru->msg),
				 "wait after %u of %u ops (%u in flight): %s",
				 ru->done, ru->ops, inflight, strerror(-ret));
			ru->ret = ret;
			goto out;
		}
		for (i = 0; i < ru->depth; i++) {
			struct vb_req *r = &s[i].r;
			uint64_t sec = r->sector - ru->first, k;
			uint32_t n = r->data_len / VB_SECTOR;
			bool in = r->type == VIRTIO_BLK_T_IN;

			if (!s[i].busy || !r->done)
				continue;
			s[i].busy = false;
			inflight--;
			ru->done++;
			for (k = sec; k < sec + n; k++)
				busy[k] = in ? busy[k] - 1 : 0;
			if (r->status != VIRTIO_BLK_S_OK ||
			    r->used_len != (in ? r->data_len + 1 : 1)) {
				snprintf(ru->msg, sizeof(ru->msg),
					 "%s sector %llu len %u: status %u used.len %u",
					 in ? "read" : "write",
					 (unsigned long long)r->sector,
					 r->data_len, r->status, r->used_len);
				ru->ret = -EIO;
				goto out;
			}
			if (!in)
				continue;
			vb_read(m, r->data_gpa, tmp, r->data_len);
			if (memcmp(tmp, ru->shadow + r->sector * VB_SECTOR,
				   r->data_len)) {
				snprintf(ru->msg, sizeof(ru->msg),
					 "read sector %llu len %u layout %#x: data differs from shadow",
					 (unsigned long long)r->sector,
					 r->data_len, r->layout);
				ru->ret = -EILSEQ;
				goto out;
			}
		}
	}
out:
	free(s);
	free(busy);
	free(tmp);
	return NULL;
}

FIXTURE(st) {
	struct vb_dev d;
	struct vb_backend b, b2;
	uint8_t *shadow;
};

FIXTURE_VARIANT(st) {
	const char *kind;
};

FIXTURE_VARIANT_ADD(st, tmpfs) { .kind = "tmpfs" };
FIXTURE_VARIANT_ADD(st, nullb) { .kind = "nullb" };

static void st_start(struct __test_metadata *_metadata, FIXTURE_DATA(st) *self,
		     unsigned int nvqs, unsigned int num)
{
	struct vb_opts o = { .nvqs = nvqs, .num = num, .backend = self->b.fd };
	int ret;

	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
}

FIXTURE_SETUP(st)
{
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->b2.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	self->shadow = malloc(DISK_SIZE);
	ASSERT_NE(NULL, self->shadow);
	vb_pattern(self->shadow, DISK_SIZE, 0, 0x5eed);
	ASSERT_EQ(0, vb_backend_write(&self->b, 0, self->shadow, DISK_SIZE));
}

FIXTURE_TEARDOWN(st)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	vb_backend_destroy(&self->b2);
	free(self->shadow);
}

static void run_init(FIXTURE_DATA(st) *self, struct run *ru, unsigned int q,
		     uint64_t first, uint64_t nsect, unsigned int ops,
		     unsigned int depth)
{
	memset(ru, 0, sizeof(*ru));
	ru->vq = &self->d.vq[q];
	ru->shadow = self->shadow;
	ru->first = first;
	ru->nsect = nsect;
	ru->ops = ops;
	ru->depth = depth;
	ru->seed = 0x9e3779b97f4a7c15ULL * (q + 1) + first;
	ru->data = vb_alloc_data(&self->d.mem, depth * SLOT_STRIDE);
}

TEST_F(st, random_read_write_matches_shadow)
{
	struct run ru;

	st_start(_metadata, self, 1, 64);
	run_init(self, &ru, 0, 0, DISK_SIZE / VB_SECTOR, 3000, 32);
	ASSERT_NE(0, ru.data);
	run_io(&ru);
	ASSERT_EQ(0, ru.ret) TH_LOG("%s", ru.msg);
	/* and the backend holds exactly the shadow */
	{
		uint8_t *disk = malloc(DISK_SIZE);

		ASSERT_NE(NULL, disk);
		ASSERT_EQ(0, vb_backend_read(&self->b, 0, disk, DISK_SIZE));
		ASSERT_EQ(0, memcmp(disk, self->shadow, DISK_SIZE));
		free(disk);
	}
}

TEST_F(st, small_queue_random_run_matches_shadow)
{
	struct run ru;

	/* num 4 and depth 4: direct chains run out of descriptors */
	st_start(_metadata, self, 1, 4);
	run_init(self, &ru, 0, 0, 4096, 600, 4);
	run_io(&ru);
	ASSERT_EQ(0, ru.ret) TH_LOG("%s", ru.msg);
}

TEST_F(st, concurrent_submitters_on_4_queues_match_shadow)
{
	const unsigned int nq = 4;
	uint64_t part = DISK_SIZE / VB_SECTOR / nq;
	struct run ru[4];
	pthread_t t[4];
	unsigned int q;

	st_start(_metadata, self, nq, 32);
	for (q = 0; q < nq; q++) {
		run_init(self, &ru[q], q, q * part, part, 600, 16);
		ASSERT_NE(0, ru[q].data);
	}
	for (q = 0; q < nq; q++)
		ASSERT_EQ(0, pthread_create(&t[q], NULL, run_io, &ru[q]));
	for (q = 0; q < nq; q++)
		pthread_join(t[q], NULL);
	for (q = 0; q < nq; q++) {
		if (ru[q].ret)
			TH_LOG("queue %u: %s", q, ru[q].msg);
		EXPECT_EQ(0, ru[q].ret);
	}
}

TEST_F(st, all_16_queues_serve_concurrently)
{
	uint64_t part = DISK_SIZE / VB_SECTOR / 16;
	struct run ru[16];
	pthread_t t[16];
	unsigned int q;

	st_start(_metadata, self, 16, 16);
	for (q = 0; q < 16; q++) {
		run_init(self, &ru[q], q, q * part, part, 100, 4);
		ASSERT_NE(0, ru[q].data);
	}
	for (q = 0; q < 16; q++)
		ASSERT_EQ(0, pthread_create(&t[q], NULL, run_io, &ru[q]));
	for (q = 0; q < 16; q++)
		pthread_join(t[q], NULL);
	for (q = 0; q < 16; q++) {
		if (ru[q].ret)
			TH_LOG("queue %u: %s", q, ru[q].msg);
		EXPECT_EQ(0, ru[q].ret);
	}
}

TEST_F(st, backend_swap_under_io_loses_nothing)
{
	const char *why = "";
	struct run ru;
	pthread_t t;
	int i, ret;

	/* two identical disks; writes rewrite what is there already */
	ret = vb_backend_create(&self->b2, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "second %s: %s", variant->kind, why);
	ASSERT_EQ(0, vb_backend_write(&self->b2, 0, self->shadow, DISK_SIZE));
	st_start(_metadata, self, 1, 64);
	run_init(self, &ru, 0, 0, DISK_SIZE / VB_SECTOR, 1000000, 32);
	ru.idempotent = true;
	ASSERT_EQ(0, pthread_create(&t, NULL, run_io, &ru));
	for (i = 0; i < 40; i++) {
		usleep(20000);
		ret = vb_set_backend(&self->d, i % 2 ? self->b.fd : self->b2.fd);
		if (ret)
			break;
	}
	ru.stop = true;
	pthread_join(t, NULL);
	ASSERT_EQ(0, ret) TH_LOG("SET_BACKEND under I/O: %s", strerror(-ret));
	ASSERT_EQ(0, ru.ret) TH_LOG("%s", ru.msg);
	ASSERT_LT(0, ru.done);
	TH_LOG("%u requests across 40 swaps", ru.done);
}

TEST_F(st, mem_table_update_under_io_loses_nothing)
{
	struct run ru;
	pthread_t t;
	int i, ret = 0;

	st_start(_metadata, self, 1, 64);
	run_init(self, &ru, 0, 0, DISK_SIZE / VB_SECTOR, 1000000, 32);
	ASSERT_EQ(0, pthread_create(&t, NULL, run_io, &ru));
	for (i = 0; i < 40 && !ret; i++) {
		usleep(20000);
		/* alternately drop and re-add an unused extra region */
		if (i % 2 == 0) {
			struct vb_region *x = &self->d.mem.r[3];

			x->size = 1 << 20;
			x->gpa = 0x200000000ULL;
			x->hva = self->d.mem.r[2].hva;	/* alias: allowed */
			self->d.mem.nregions = 4;
		} else {
			self->d.mem.nregions = 3;
		}
		ret = vb_set_mem_table(&self->d);
	}
	self->d.mem.nregions = 3;
	ru.stop = true;
	pthread_join(t, NULL);
	ASSERT_EQ(0, ret) TH_LOG("SET_MEM_TABLE under I/O: %s", strerror(-ret));
	ASSERT_EQ(0, ru.ret) TH_LOG("%s", ru.msg);
	ASSERT_LT(0, ru.done);
}

TEST_F(st, get_vring_base_under_io_then_restart_loses_nothing)
{
	struct run ru;
	pthread_t t;
	unsigned int base, prev = 0;
	int i, ret = 0;

	/* stop and restart the queue under I/O, as live migration does */
	st_start(_metadata, self, 1, 64);
	run_init(self, &ru, 0, 0, DISK_SIZE / VB_SECTOR, 1000000, 32);
	ASSERT_EQ(0, pthread_create(&t, NULL, run_io, &ru));
	for (i = 0; i < 20 && !ret; i++) {
		usleep(30000);
		ret = vb_get_vring_base(&self->d, 0, &base);
		if (ret)
			break;
		/* everything fetched has completed: used == base */
		if ((uint16_t)base != vb_used_idx(&self->d.vq[0])) {
			ret = -EPROTO;
			break;
		}
		ASSERT_LE(prev, base);
		prev = base;
		ret = vb_vq_start(&self->d, &self->d.vq[0], base);
		vb_vq_kick(&self->d.vq[0]);
	}
	ru.stop = true;
	pthread_join(t, NULL);
	ASSERT_EQ(0, ret) TH_LOG("stop/restart %d: %s (base %u, used %u)", i,
				 strerror(-ret), base,
				 vb_used_idx(&self->d.vq[0]));
	ASSERT_EQ(0, ru.ret) TH_LOG("%s", ru.msg);
}

TEST_HARNESS_MAIN
