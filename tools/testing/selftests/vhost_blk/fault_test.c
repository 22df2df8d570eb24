// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk under the kernel's fault injection (CONFIG_FAULT_INJECTION and
 * friends: the debug kernel of tools/testing/vhost_blk/debug-kernel).
 *
 * io:    backend I/O fails at random under a randomized read/write/flush
 *        load - fail_make_request on the backing disk, null_blk's fake
 *        timeouts - and exactly as many requests as the injector failed
 *        come back VIRTIO_BLK_S_IOERR; every other one completes with the
 *        right data.  null_blk's requeue injection must fail nothing.
 * alloc: every allocation of the setup sequence is failed in turn
 *        (/proc/thread-self/fail-nth), then many at random (failslab and
 *        fail_page_alloc filtered to this task by make-it-fail): each
 *        ioctl fails cleanly or absorbs the failure, and the same file can
 *        then be reset, set up again and used, or closed.
 *
 * Each of these reads the injector's own count of injected faults, so a
 * request failed without a fault, or a fault that never reached the guest,
 * fails the test.  Leaks and lock or memory errors are for the runner to
 * find in the kernel log (kmemleak, KASAN, lockdep).  Skips where the
 * kernel has no such knob.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DEBUGFS		"/sys/kernel/debug"
#define DISK_SIZE	(16ULL << 20)
/* The part of the disk the load runs on. */
#define AREA_SECT	(8 * 1024 * 1024 / VB_SECTOR)
/*
 * The area is cut into chunks; a round has DEPTH requests in flight, each
 * within its own chunk and off its last sector, so that no two in flight
 * overlap or touch: the block layer cannot merge them, and one injected
 * fault fails one request.  A request (at most 32 KiB) is one bio.
 */
#define CHUNK_SECT	128
#define CHUNK_BYTES	(CHUNK_SECT * VB_SECTOR)
#define MAX_SECT	64
#define NCHUNKS		(AREA_SECT / CHUNK_SECT)
#define DEPTH		8
/* Bigger than any number of faults a test injects: "times" counts down. */
#define TIMES		1000000

/* ------------------------------------------------------------- knobs */

static int fi_writef(const char *dir, const char *attr, const char *val)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	return vb_write_text(path, val);
}

static int fi_read(const char *dir, const char *attr, char *buf, size_t len)
{
	char path[PATH_MAX];
	int n;

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	n = vb_read_text(path, buf, len);
	if (n < 0)
		return n;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static long fi_read_long(const char *dir, const char *attr)
{
	char buf[64];

	return fi_read(dir, attr, buf, sizeof(buf)) ? LONG_MIN :
						      strtol(buf, NULL, 0);
}

/*
 * The knobs a test changes, with their values before, put back in the
 * teardown: fault injection is global, the next test must find it off.
 */
#define MAX_SAVED	32

struct fi_saved {
	int n;
	struct {
		char path[PATH_MAX];
		char val[64];
	} v[MAX_SAVED];
};

static int fi_set(struct fi_saved *s, const char *dir, const char *attr,
		  const char *val)
{
	int ret;

	if (s->n == MAX_SAVED)
		return -ENOSPC;
	snprintf(s->v[s->n].path, sizeof(s->v[0].path), "%s/%s", dir, attr);
	ret = fi_read(dir, attr, s->v[s->n].val, sizeof(s->v[0].val));
	if (ret)
		return ret;
	s->n++;
	return fi_writef(dir, attr, val);
}

static void fi_restore(struct fi_saved *s)
{
	while (s->n > 0) {
		s->n--;
		vb_write_text(s->v[s->n].path, s->v[s->n].val);
	}
}

/* The fault_attr knobs of one injector, quiet (no stack dump per fault). */
static int fi_attr_setup(struct fi_saved *s, const char *dir,
			 unsigned int probability, long times, bool task_filter)
{
	char p[16], t[24];
	int ret;

	snprintf(p, sizeof(p), "%u", probability);
	snprintf(t, sizeof(t), "%ld", times);
	ret = fi_set(s, dir, "verbose", "0");
	ret = ret ?: fi_set(s, dir, "interval", "1");
	ret = ret ?: fi_set(s, dir, "space", "0");
	ret = ret ?: fi_set(s, dir, "times", t);
	ret = ret ?: fi_set(s, dir, "task-filter", task_filter ? "Y" : "N");
	/* last: the injector starts failing with this write */
	ret = ret ?: fi_set(s, dir, "probability", p);
	return ret;
}

/* /sys/block/<disk> of a block device node. */
static void fi_sysfs_disk(const char *dev, char *buf, size_t len)
{
	char real[PATH_MAX];

	if (!realpath(dev, real))
		snprintf(real, sizeof(real), "%s", dev);
	snprintf(buf, len, "/sys/block/%s", basename(real));
}

/* ---------------------------------------------------------------- io */

enum fi_injector {
	FI_FAIL_MAKE_REQUEST,	/* fail_make_request on the backing disk */
	FI_NULLB_TIMEOUT,	/* null_blk never completes, blk-mq times out */
	FI_NULLB_REQUEUE,	/* null_blk requeues; must not fail anything */
};

FIXTURE(io) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	struct fi_saved saved;
	char knobs[320];	/* the injector's fault_attr directory */
	char disk[320];	/* /sys/block/<disk> */
	uint8_t *shadow;	/* what the area should hold */
	bool *known;		/* per sector: the shadow is the content */
	uint64_t slot[DEPTH];	/* data buffers, one chunk each */
	uint8_t *tmp;
	uint64_t seed;
};

FIXTURE_VARIANT(io) {
	const char *kind;
	enum fi_injector inj;
	unsigned int probability;
	long times;		/* most faults to inject */
	unsigned int rounds;	/* of DEPTH requests */
};

FIXTURE_VARIANT_ADD(io, nullb_fail_make_request) {
	.kind = "nullb", .inj = FI_FAIL_MAKE_REQUEST,
	.probability = 10, .times = TIMES, .rounds = 80,
};

FIXTURE_VARIANT_ADD(io, brd_fail_make_request) {
	.kind = "brd", .inj = FI_FAIL_MAKE_REQUEST,
	.probability = 10, .times = TIMES, .rounds = 80,
};

/* Each fake timeout costs the block layer's timer, about 2 s: few. */
FIXTURE_VARIANT_ADD(io, nullb_timeout_inject) {
	.kind = "nullb", .inj = FI_NULLB_TIMEOUT,
	.probability = 5, .times = 3, .rounds = 30,
};

FIXTURE_VARIANT_ADD(io, nullb_requeue_inject) {
	.kind = "nullb", .inj = FI_NULLB_REQUEUE,
	.probability = 20, .times = TIMES, .rounds = 40,
};

FIXTURE_SETUP(io)
{
	struct vb_opts o = { 0 };
	const char *why = "";
	unsigned int i;
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->seed = 0x5eed0000ULL + variant->inj;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (variant->inj == FI_FAIL_MAKE_REQUEST &&
	    access(DEBUGFS "/fail_make_request", F_OK))
		SKIP(return, "no %s/fail_make_request: %s", DEBUGFS,
		     "CONFIG_FAIL_MAKE_REQUEST, CONFIG_FAULT_INJECTION_DEBUG_FS");
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	ASSERT_LE(AREA_SECT * VB_SECTOR, self->b.size);
	fi_sysfs_disk(self->b.path, self->disk, sizeof(self->disk));

	switch (variant->inj) {
	case FI_FAIL_MAKE_REQUEST:
		snprintf(self->knobs, sizeof(self->knobs),
			 DEBUGFS "/fail_make_request");
		break;
	case FI_NULLB_TIMEOUT:
		snprintf(self->knobs, sizeof(self->knobs), "%s/timeout_inject",
			 self->b.aux);
		break;
	case FI_NULLB_REQUEUE:
		snprintf(self->knobs, sizeof(self->knobs), "%s/requeue_inject",
			 self->b.aux);
		break;
	}
	if (access(self->knobs, F_OK))
		SKIP(return, "no %s (CONFIG_BLK_DEV_NULL_BLK_FAULT_INJECTION)",
		     self->knobs);

	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	for (i = 0; i < DEPTH; i++) {
		self->slot[i] = vb_alloc_data(&self->d.mem, CHUNK_BYTES);
		ASSERT_NE(0, self->slot[i]);
	}

	/* A known pattern over the whole area, written before any fault. */
	self->shadow = malloc(AREA_SECT * VB_SECTOR);
	self->known = calloc(AREA_SECT, sizeof(*self->known));
	self->tmp = malloc(CHUNK_BYTES);
	ASSERT_TRUE(self->shadow && self->known && self->tmp);
	vb_pattern(self->shadow, AREA_SECT * VB_SECTOR, 0, 1);
	ASSERT_EQ(0, vb_backend_write(&self->b, 0, self->shadow,
				      AREA_SECT * VB_SECTOR));
	memset(self->known, true, AREA_SECT * sizeof(*self->known));
}

FIXTURE_TEARDOWN(io)
{
	fi_restore(&self->saved);
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->shadow);
	free(self->known);
	free(self->tmp);
}

/* Start failing; "times" is the injector's count of faults still to go. */
static int io_arm(FIXTURE_DATA(io) *self, const FIXTURE_VARIANT(io) *variant)
{
	int ret = 0;

	/* fake timeouts end after io_timeout (ms) instead of 30 s */
	if (variant->inj == FI_NULLB_TIMEOUT)
		ret = fi_set(&self->saved, self->disk, "queue/io_timeout",
			     "1000");
	if (!ret && variant->inj == FI_FAIL_MAKE_REQUEST)
		ret = fi_set(&self->saved, self->disk, "make-it-fail", "1");
	return ret ?: fi_attr_setup(&self->saved, self->knobs,
				    variant->probability, variant->times,
				    false);
}

struct io_stats {
	unsigned int ok, ioerr, reads_checked;
};

/*
 * One round: DEPTH random reads, writes and flushes in distinct chunks,
 * all in flight together.  Reads that succeed are checked against the
 * shadow where it is known; a failed write makes its sectors unknown.
 */
static int io_round(FIXTURE_DATA(io) *self, struct io_stats *st, char *msg,
		    size_t len)
{
	struct vb_mem *m = &self->d.mem;
	struct vb_req r[DEPTH];
	uint8_t *wbuf[DEPTH];
	bool taken[NCHUNKS] = { false };
	unsigned int i, done = 0;
	int ret;

	for (i = 0; i < DEPTH; i++) {
		uint64_t x = vb_rand(&self->seed), chunk, off, n;
		uint32_t type;

		do {
			chunk = vb_rand(&self->seed) % NCHUNKS;
		} while (taken[chunk]);
		taken[chunk] = true;
		n = 1 + x % MAX_SECT;
		off = (x >> 8) % (CHUNK_SECT - 1 - n + 1);
		type = (x >> 16) % 16 == 0 ? VIRTIO_BLK_T_FLUSH :
		       (x >> 20) & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		r[i] = (struct vb_req){
			.type = type,
			.sector = chunk * CHUNK_SECT + off,
			.data_gpa = self->slot[i],
			.data_len = n * VB_SECTOR,
			.layout = (x >> 24) & VB_L_ALL,
		};
		/* a request split per sector could take the whole ring */
		if (r[i].layout & VB_L_DATA_SPLIT)
			r[i].layout |= VB_L_INDIRECT;
		wbuf[i] = NULL;
		if (type == VIRTIO_BLK_T_FLUSH) {
			r[i].sector = 0;
			r[i].data_len = 0;
			r[i].layout = 0;
		} else if (type == VIRTIO_BLK_T_OUT) {
			wbuf[i] = malloc(r[i].data_len);
			if (!wbuf[i])
				return -ENOMEM;
			vb_pattern(wbuf[i], r[i].data_len, r[i].sector,
				   x >> 32);
			vb_write(m, r[i].data_gpa, wbuf[i], r[i].data_len);
		} else {
			vb_fill(m, r[i].data_gpa, 0xaa, r[i].data_len);
		}
		ret = vb_req_post(self->vq, &r[i]);
		if (ret) {
			snprintf(msg, len, "post: %s", strerror(-ret));
			return ret;
		}
	}
	vb_vq_kick(self->vq);
	while (done < DEPTH) {
		ret = vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS);
		if (ret) {
			snprintf(msg, len, "%u of %u requests not completed: %s",
				 DEPTH - done, DEPTH, strerror(-ret));
			return ret;
		}
		for (done = 0, i = 0; i < DEPTH; i++)
			done += r[i].done;
	}

	ret = 0;
	for (i = 0; i < DEPTH; i++) {
		uint64_t s, sec = r[i].sector, n = r[i].data_len / VB_SECTOR;
		bool in = r[i].type == VIRTIO_BLK_T_IN;

		if (r[i].status == VIRTIO_BLK_S_IOERR) {
			st->ioerr++;
			if (wbuf[i])
				memset(&self->known[sec], false,
				       n * sizeof(*self->known));
			continue;
		}
		if (r[i].status != VIRTIO_BLK_S_OK) {
			snprintf(msg, len, "type %u sector %llu: status %u",
				 r[i].type, (unsigned long long)sec,
				 r[i].status);
			ret = -EPROTO;
			break;
		}
		st->ok++;
		if (r[i].used_len != (in ? r[i].data_len + 1 : 1)) {
			snprintf(msg, len, "type %u: used len %u", r[i].type,
				 r[i].used_len);
			ret = -EPROTO;
			break;
		}
		if (wbuf[i]) {
			memcpy(self->shadow + sec * VB_SECTOR, wbuf[i],
			       r[i].data_len);
			memset(&self->known[sec], true,
			       n * sizeof(*self->known));
		} else if (in) {
			vb_read(m, r[i].data_gpa, self->tmp, r[i].data_len);
			for (s = 0; s < n; s++) {
				if (!self->known[sec + s])
					continue;
				st->reads_checked++;
				if (memcmp(self->tmp + s * VB_SECTOR,
					   self->shadow + (sec + s) * VB_SECTOR,
					   VB_SECTOR)) {
					snprintf(msg, len,
						 "read OK but sector %llu differs",
						 (unsigned long long)(sec + s));
					ret = -EIO;
					break;
				}
			}
		}
	}
	for (i = 0; i < DEPTH; i++)
		free(wbuf[i]);
	return ret;
}

TEST_F_TIMEOUT(io, ioerr_for_exactly_the_failed_requests, 600)
{
	struct io_stats st = { 0 };
	long before, after, injected;
	char msg[160] = "";
	unsigned int i;
	uint64_t c, s;
	int ret;

	ASSERT_EQ(0, io_arm(self, variant)) TH_LOG("cannot set up %s", self->knobs);
	before = fi_read_long(self->knobs, "times");
	for (i = 0; i < variant->rounds; i++) {
		ret = io_round(self, &st, msg, sizeof(msg));
		if (ret)
			break;
	}
	after = fi_read_long(self->knobs, "times");
	/* stop failing before checking, and before the teardown */
	fi_restore(&self->saved);
	ASSERT_EQ(0, ret) TH_LOG("round %u: %s", i, msg);
	injected = before - after;
	TH_LOG("%s: %u requests OK, %u IOERR, %ld faults injected, %u sectors read back",
	       self->knobs, st.ok, st.ioerr, injected, st.reads_checked);
	ASSERT_LT(0, injected) TH_LOG("the injector never fired");
	ASSERT_LT(0, st.ok);
	/* a requeue is not an error; any other fault is one IOERR */
	ASSERT_EQ(variant->inj == FI_NULLB_REQUEUE ? 0 : injected, st.ioerr);

	/* Without faults the whole area reads back as the shadow says. */
	for (c = 0; c < NCHUNKS; c++) {
		ret = vb_io(self->vq, VIRTIO_BLK_T_IN, c * CHUNK_SECT,
			    self->slot[0], CHUNK_BYTES, 0, NULL);
		ASSERT_EQ(VIRTIO_BLK_S_OK, ret) TH_LOG("chunk %llu",
						       (unsigned long long)c);
		vb_read(&self->d.mem, self->slot[0], self->tmp, CHUNK_BYTES);
		for (s = 0; s < CHUNK_SECT; s++) {
			uint64_t sec = c * CHUNK_SECT + s;

			if (!self->known[sec])
				continue;
			ASSERT_EQ(0, memcmp(self->tmp + s * VB_SECTOR,
					    self->shadow + sec * VB_SECTOR,
					    VB_SECTOR))
				TH_LOG("sector %llu", (unsigned long long)sec);
		}
	}
}

/* Closing with failing requests in flight drains them, and that is all. */
TEST_F_TIMEOUT(io, close_with_failing_requests_in_flight, 120)
{
	struct vb_opts o = { .backend = self->b.fd };
	struct vb_req r[DEPTH];
	unsigned int i;
	int ret;

	ASSERT_EQ(0, io_arm(self, variant));
	for (i = 0; i < DEPTH; i++) {
		r[i] = (struct vb_req){
			.type = i & 1 ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
			.sector = i * CHUNK_SECT,
			.data_gpa = self->slot[i],
			.data_len = MAX_SECT * VB_SECTOR,
		};
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	vb_dev_teardown(&self->d);
	fi_restore(&self->saved);

	/* The module still serves a new device on the same backend. */
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->slot[0] = vb_alloc_data(&self->d.mem, CHUNK_BYTES);
	ret = vb_io(&self->d.vq[0], VIRTIO_BLK_T_IN, 0, self->slot[0],
		    CHUNK_BYTES, 0, NULL);
	ASSERT_EQ(VIRTIO_BLK_S_OK, ret);
}

/* ------------------------------------------------------------- alloc */

/* Above the number of allocations one setup sequence makes. */
#define MAX_NTH		3000

FIXTURE(alloc) {
	struct vb_backend b;
	struct fi_saved saved;
	int nth;		/* /proc/thread-self/fail-nth */
	int make_it_fail;	/* /proc/thread-self/make-it-fail */
};

FIXTURE_VARIANT(alloc) {
	const char *kind;
};

FIXTURE_VARIANT_ADD(alloc, nullb) { .kind = "nullb" };
FIXTURE_VARIANT_ADD(alloc, tmpfs) { .kind = "tmpfs" };

FIXTURE_SETUP(alloc)
{
	const char *why = "";
	int ret;

	self->b.kind = NULL;
	self->nth = -1;
	self->make_it_fail = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (access(DEBUGFS "/failslab", F_OK) ||
	    access(DEBUGFS "/fail_page_alloc", F_OK))
		SKIP(return, "no failslab or fail_page_alloc in %s: %s",
		     DEBUGFS, "CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC");
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	self->make_it_fail = open("/proc/thread-self/make-it-fail",
				  O_RDWR | O_CLOEXEC);
	if (self->nth < 0 || self->make_it_fail < 0)
		SKIP(return, "no /proc/thread-self/fail-nth or make-it-fail");
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));

	/* Sleeping allocations (GFP_KERNEL) too, and single pages. */
	ret = fi_set(&self->saved, DEBUGFS "/failslab", "ignore-gfp-wait", "N");
	ret = ret ?: fi_set(&self->saved, DEBUGFS "/failslab", "verbose", "0");
	ret = ret ?: fi_set(&self->saved, DEBUGFS "/fail_page_alloc",
			    "ignore-gfp-wait", "N");
	ret = ret ?: fi_set(&self->saved, DEBUGFS "/fail_page_alloc",
			    "min-order", "0");
	ret = ret ?: fi_set(&self->saved, DEBUGFS "/fail_page_alloc",
			    "verbose", "0");
	ASSERT_EQ(0, ret) TH_LOG("cannot configure failslab/fail_page_alloc");
}

FIXTURE_TEARDOWN(alloc)
{
	fi_restore(&self->saved);
	if (self->nth >= 0)
		close(self->nth);
	if (self->make_it_fail >= 0)
		close(self->make_it_fail);
	vb_backend_destroy(&self->b);
}

/* A fresh vb_dev with its guest memory faulted in and the device open. */
static int alloc_dev_open(struct vb_dev *d)
{
	int i, ret;

	vb_dev_init(d);
	ret = vb_mem_init(&d->mem);
	if (ret)
		return ret;
	/* no page faults on the rings while allocations fail */
	for (i = 0; i < 2; i++)
		memset(d->mem.r[i].hva, 0, d->mem.r[i].size);
	d->fd = vb_open();
	return d->fd < 0 ? d->fd : 0;
}

/* The errors an allocation failure may turn into. */
static bool alloc_clean_error(int ret)
{
	return ret == -ENOMEM || ret == -EFAULT || ret == -EAGAIN ||
	       ret == -EINTR;
}

/* One write and read back of 16 sectors: the device works. */
static int alloc_roundtrip(struct vb_dev *d)
{
	uint8_t in[16 * VB_SECTOR], out[16 * VB_SECTOR];
	uint64_t buf = vb_alloc_data(&d->mem, sizeof(in));
	int ret;

	if (!buf)
		return -ENOMEM;
	vb_pattern(out, sizeof(out), 8, getpid());
	vb_write(&d->mem, buf, out, sizeof(out));
	ret = vb_io(&d->vq[0], VIRTIO_BLK_T_OUT, 8, buf, sizeof(out), 0, NULL);
	if (ret)
		return ret < 0 ? ret : -EIO;
	vb_fill(&d->mem, buf, 0, sizeof(in));
	ret = vb_io(&d->vq[0], VIRTIO_BLK_T_IN, 8, buf, sizeof(in), 0, NULL);
	if (ret)
		return ret < 0 ? ret : -EIO;
	vb_read(&d->mem, buf, in, sizeof(in));
	return memcmp(in, out, sizeof(in)) ? -EILSEQ : 0;
}

/*
 * After a setup that failed part-way, the same file is reset and set up
 * again, without faults, and must then work.
 */
static int alloc_recover(struct vb_dev *d, const struct vb_opts *o)
{
	int ret;

	if (ioctl(d->fd, VHOST_RESET_OWNER) && errno != EPERM)
		return -errno;
	ret = vb_dev_sequence(d, o);
	return ret ?: alloc_roundtrip(d);
}

static int fi_put(int fd, unsigned int val)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u", val);

	return pwrite(fd, buf, n, 0) == n ? 0 : -errno;
}

static long fi_get(int fd)
{
	char buf[16] = "";

	return pread(fd, buf, sizeof(buf) - 1, 0) > 0 ? strtol(buf, NULL, 0) :
							-errno;
}

TEST_F_TIMEOUT(alloc, each_failed_allocation_fails_cleanly, 900)
{
	struct vb_opts o = { .num = 64, .backend = self->b.fd };
	unsigned int n, failed = 0, absorbed = 0;
	struct vb_dev d;
	long left;
	int ret;

	for (n = 1; n < MAX_NTH; n++) {
		ASSERT_EQ(0, alloc_dev_open(&d));
		/* the n-th allocation of this thread from here on fails */
		ASSERT_EQ(0, fi_put(self->nth, n));
		ret = vb_dev_sequence(&d, &o);
		left = fi_get(self->nth);
		ASSERT_EQ(0, fi_put(self->nth, 0));
		if (left > 0) {
			/* fewer than n allocations: all are covered */
			ASSERT_EQ(0, ret) TH_LOG("setup: %s", strerror(-ret));
			ASSERT_EQ(0, alloc_roundtrip(&d));
			vb_dev_teardown(&d);
			break;
		}
		if (ret) {
			ASSERT_TRUE(alloc_clean_error(ret))
				TH_LOG("allocation %u failed: setup returned %s",
				       n, strerror(-ret));
			failed++;
			ret = alloc_recover(&d, &o);
			ASSERT_EQ(0, ret)
				TH_LOG("allocation %u failed: recovery: %s", n,
				       strerror(-ret));
		} else {
			absorbed++;
			ret = alloc_roundtrip(&d);
			ASSERT_EQ(0, ret)
				TH_LOG("allocation %u failed, setup succeeded, I/O: %s",
				       n, strerror(-ret));
		}
		vb_dev_teardown(&d);
	}
	ASSERT_LT(n, MAX_NTH) TH_LOG("setup makes more than %d allocations",
				     MAX_NTH);
	TH_LOG("%u allocations in setup: %u made it fail, %u were absorbed",
	       n - 1, failed, absorbed);
}

TEST_F_TIMEOUT(alloc, random_failures_in_setup_and_release, 900)
{
	struct vb_opts o = { .num = 64, .backend = self->b.fd };
	unsigned int i, failed = 0;
	struct vb_dev d;
	int ret;

	/* Only this task fails, and only while make-it-fail is 1. */
	ASSERT_EQ(0, fi_attr_setup(&self->saved, DEBUGFS "/failslab", 10, -1,
				   true));
	ASSERT_EQ(0, fi_attr_setup(&self->saved, DEBUGFS "/fail_page_alloc",
				   3, -1, true));
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(0, alloc_dev_open(&d));
		ASSERT_EQ(0, fi_put(self->make_it_fail, 1));
		ret = vb_dev_sequence(&d, &o);
		ASSERT_EQ(0, fi_put(self->make_it_fail, 0));
		if (ret) {
			ASSERT_TRUE(alloc_clean_error(ret))
				TH_LOG("setup returned %s", strerror(-ret));
			failed++;
			/* every other time: close the half set-up device */
			if (i & 1) {
				ret = alloc_recover(&d, &o);
				ASSERT_EQ(0, ret) TH_LOG("recovery: %s",
							 strerror(-ret));
			}
		} else {
			ASSERT_EQ(0, alloc_roundtrip(&d));
		}
		/* release may not fail, whatever its allocations do */
		ASSERT_EQ(0, fi_put(self->make_it_fail, 1));
		close(d.fd);
		ASSERT_EQ(0, fi_put(self->make_it_fail, 0));
		d.fd = -1;
		vb_dev_teardown(&d);
	}
	TH_LOG("%u of %u setups failed", failed, i);
	ASSERT_LT(0, failed) TH_LOG("no allocation ever failed");

	/* And afterwards the module works as before. */
	fi_restore(&self->saved);
	ASSERT_EQ(0, alloc_dev_open(&d));
	ASSERT_EQ(0, vb_dev_sequence(&d, &o));
	ASSERT_EQ(0, alloc_roundtrip(&d));
	vb_dev_teardown(&d);
}

TEST_HARNESS_MAIN
