// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk hardening: what reaches the block layer and what the VMM may
 * attach.  Backends the module must refuse (O_APPEND); the flags the
 * device's bios carry, watched with the block:block_bio_queue tracepoint
 * in a trace instance of our own (its RWBS field shows F for a preflush
 * or FUA, S for REQ_SYNC); and a VMM killed while an ioctl waits for a
 * backend that does not complete.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define LEN		(16 * 1024)
#define TRACE_MAX	(1 << 20)

/* ------------------------------------------------------ O_APPEND backends */

FIXTURE(append) {
	struct vb_dev d;
	struct vb_backend b;
};

FIXTURE_SETUP(append)
{
	struct vb_opts o = { .num = 16, .backend = -1 };
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(append)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

static void append_expect_refused(struct __test_metadata *_metadata,
				  FIXTURE_DATA(append) *self, const char *kind)
{
	struct vb_backend good;
	uint64_t buf = vb_alloc_data(&self->d.mem, LEN);
	uint8_t *want = malloc(LEN), *got = malloc(LEN);
	const char *why = "";
	int fd, ret;

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	ret = vb_backend_create(&self->b, kind, DISK_SIZE, O_APPEND, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", kind, why, strerror(-ret));
	ASSERT_NE(0, fcntl(self->b.fd, F_GETFL) & O_APPEND);
	ASSERT_EQ(-EINVAL, vb_set_backend(&self->d, self->b.fd));

	/* Refused also in place of a backend that works, which stays. */
	ret = vb_backend_create(&good, "tmpfs", DISK_SIZE, 0, &why);
	ASSERT_LE(0, ret) TH_LOG("tmpfs: %s", why);
	fd = good.fd;
	ASSERT_EQ(0, vb_set_backend(&self->d, fd));
	ASSERT_EQ(-EINVAL, vb_set_backend(&self->d, self->b.fd));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(&self->d.vq[0], buf, 8, LEN, 3, NULL));
	vb_pattern(want, LEN, 8, 3);
	ASSERT_EQ(0, vb_backend_read(&good, 8 * VB_SECTOR, got, LEN));
	EXPECT_EQ(0, memcmp(want, got, LEN))
		TH_LOG("the write did not land at its sector of the old backend");
	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	vb_backend_destroy(&good);
	free(want);
	free(got);
}

TEST_F(append, o_append_file_fails_with_einval)
{
	append_expect_refused(_metadata, self, "tmpfs");
}

TEST_F(append, o_append_block_device_fails_with_einval)
{
	append_expect_refused(_metadata, self, "brd");
}

/* --------------------------------------------- what the block layer sees */

/* One block:block_bio_queue event. */
struct bio_ev {
	unsigned int major, minor;
	char rwbs[16];
	unsigned long long sector;
	unsigned int nr;
};

#define MAX_BIO_EVS	256

/* A trace instance recording the bios of one block device. */
struct bio_trace {
	unsigned int major, minor;
	char inst[256];
	struct bio_ev ev[MAX_BIO_EVS];
	int nev;
};

FIXTURE(bio) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
	bool ro_set;
	struct bio_trace t;
};

/* tracefs, mounted if it is not yet; NULL where there is none. */
static const char *tracefs(void)
{
	if (!access("/sys/kernel/tracing/instances", F_OK))
		return "/sys/kernel/tracing";
	if (!mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) &&
	    !access("/sys/kernel/tracing/instances", F_OK))
		return "/sys/kernel/tracing";
	if (!access("/sys/kernel/debug/tracing/instances", F_OK))
		return "/sys/kernel/debug/tracing";
	return NULL;
}

static int inst_write(struct bio_trace *t, const char *file,
		      const char *text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", t->inst, file);
	return vb_write_text(path, text);
}

/* Start recording: an empty buffer, block_bio_queue on. */
static int bio_trace_start(struct bio_trace *t)
{
	int ret;

	ret = inst_write(t, "tracing_on", "0");
	ret = ret ?: inst_write(t, "trace", "");
	ret = ret ?: inst_write(t, "events/block/block_bio_queue/enable",
				"1");
	return ret ?: inst_write(t, "tracing_on", "1");
}

/* Stop recording and parse the events of our block device. */
static int bio_trace_collect(struct bio_trace *t)
{
	char path[512], *text, *line, *next;
	int ret;

	inst_write(t, "tracing_on", "0");
	text = malloc(TRACE_MAX);
	if (!text)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/trace", t->inst);
	ret = vb_read_text(path, text, TRACE_MAX);
	if (ret < 0) {
		free(text);
		return ret;
	}
	t->nev = 0;
	for (line = text; line && *line; line = next) {
		struct bio_ev *e = &t->ev[t->nev];
		char *p;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		p = strstr(line, "block_bio_queue: ");
		if (!p || t->nev == MAX_BIO_EVS)
			continue;
		if (sscanf(p, "block_bio_queue: %u,%u %15s %llu + %u",
			   &e->major, &e->minor, e->rwbs, &e->sector,
			   &e->nr) == 5 &&
		    e->major == t->major && e->minor == t->minor)
			t->nev++;
	}
	free(text);
	return 0;
}

/* Count the events at @sector (any: ~0ULL) whose RWBS matches @pred. */
static int bio_count(struct bio_trace *t, unsigned long long sector,
		     bool (*pred)(const char *rwbs))
{
	int i, n = 0;

	for (i = 0; i < t->nev; i++)
		if ((sector == ~0ULL || t->ev[i].sector == sector) &&
		    pred(t->ev[i].rwbs))
			n++;
	return n;
}

static void bio_dump(struct __test_metadata *_metadata, struct bio_trace *t)
{
	int i;

	for (i = 0; i < t->nev; i++)
		TH_LOG("bio %s %llu + %u", t->ev[i].rwbs,
		       t->ev[i].sector, t->ev[i].nr);
}

/* An empty preflush: "F" first (then W, S...), no data. */
static bool is_preflush(const char *rwbs)
{
	return rwbs[0] == 'F';
}

/* A write: W after an optional preflush F. */
static bool is_write(const char *rwbs)
{
	return rwbs[rwbs[0] == 'F'] == 'W';
}

static bool is_sync_write(const char *rwbs)
{
	return is_write(rwbs) && strchr(rwbs, 'S');
}

/* A FUA write: F after the W. */
static bool is_fua_write(const char *rwbs)
{
	return is_write(rwbs) && strchr(strchr(rwbs, 'W'), 'F');
}

/*
 * Make @t's trace instance for the block device at @path: 0, or -1 with
 * *why set when the kernel cannot trace bios.
 */
static int bio_trace_open(struct bio_trace *t, const char *path,
			  const char **why)
{
	const char *tfs = tracefs();
	struct stat st;

	t->inst[0] = '\0';
	if (stat(path, &st) || !S_ISBLK(st.st_mode)) {
		*why = "no block device to trace";
		return -1;
	}
	t->major = major(st.st_rdev);
	t->minor = minor(st.st_rdev);
	if (!tfs) {
		*why = "no tracefs: not mounted and cannot be mounted";
		return -1;
	}
	snprintf(t->inst, sizeof(t->inst), "%s/instances/vbhard%d", tfs,
		 getpid());
	if (mkdir(t->inst, 0755) && errno != EEXIST) {
		t->inst[0] = '\0';
		*why = "cannot make a trace instance";
		return -1;
	}
	if (inst_write(t, "events/block/block_bio_queue/enable", "0")) {
		*why = "no block:block_bio_queue event";
		return -1;
	}
	return 0;
}

static void bio_trace_close(struct bio_trace *t)
{
	if (!t->inst[0])
		return;
	inst_write(t, "tracing_on", "0");
	inst_write(t, "events/block/block_bio_queue/enable", "0");
	rmdir(t->inst);
	t->inst[0] = '\0';
}

FIXTURE_SETUP(bio)
{
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	self->t.inst[0] = '\0';
	self->ro_set = false;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	/*
	 * A loop device over a tmpfs file has a volatile write cache (the
	 * file has fsync), so preflushes reach its queue and the event.
	 */
	ret = vb_backend_create(&self->b, "loop", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "loop: %s (%s)", why, strerror(-ret));
	if (bio_trace_open(&self->t, self->b.path, &why))
		SKIP(return, "%s", why);
}

FIXTURE_TEARDOWN(bio)
{
	int zero = 0;

	vb_dev_teardown(&self->d);
	bio_trace_close(&self->t);
	if (self->ro_set)
		ioctl(self->b.fd, BLKROSET, &zero);
	vb_backend_destroy(&self->b);
}

static void bio_start(struct __test_metadata *_metadata,
		      FIXTURE_DATA(bio) *self, uint64_t features)
{
	struct vb_opts o = { .num = 16, .backend = self->b.fd,
			     .features = features };
	int ret;

	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, LEN);
	ASSERT_NE(0, self->buf);
}

/*
 * Writes that completed before BLKROSET are only stable after a flush:
 * the read-only device must still send the guest's flush down.
 */
TEST_F(bio, flush_of_a_read_only_block_device_reaches_it)
{
	uint32_t ul = 0;
	int one = 1;

	bio_start(_metadata, self, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(self->vq, self->buf, 64, LEN, 1, NULL));
	ASSERT_EQ(0, ioctl(self->b.fd, BLKROSET, &one));
	self->ro_set = true;
	ASSERT_EQ(0, bio_trace_start(&self->t));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(0, bio_trace_collect(&self->t));
	EXPECT_EQ(1, bio_count(&self->t, ~0ULL, is_preflush)) bio_dump(_metadata, &self->t);
	/* ...and writes still fail. */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io_write_pattern(self->vq, self->buf, 64, LEN, 2, NULL));
}

/* Guest writes are waited for: REQ_SYNC, as O_DIRECT's are. */
TEST_F(bio, writes_to_a_block_device_are_sync)
{
	bio_start(_metadata, self, 0);
	ASSERT_EQ(0, bio_trace_start(&self->t));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(self->vq, self->buf, 128, LEN, 1, NULL));
	ASSERT_EQ(0, bio_trace_collect(&self->t));
	ASSERT_EQ(1, bio_count(&self->t, 128, is_write)) bio_dump(_metadata, &self->t);
	EXPECT_EQ(1, bio_count(&self->t, 128, is_sync_write))
		bio_dump(_metadata, &self->t);
}

/* ------------------------------------- a block device's page cache */

/*
 * The device's bios bypass the page cache of a block device; another fd
 * of the same device goes through it.  Attaching must write back what it
 * left dirty and drop what it cached, as O_DIRECT does.
 */
FIXTURE(pagecache) {
	struct vb_dev d;
	struct vb_backend b;
	int bfd;		/* buffered fd of the same block device */
	uint64_t buf;
	uint8_t *a, *bb, *got;
};

FIXTURE_SETUP(pagecache)
{
	struct vb_opts o = { .num = 16, .backend = -1 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	self->bfd = -1;
	self->a = malloc(LEN);
	self->bb = malloc(LEN);
	self->got = malloc(LEN);
	ASSERT_NE(NULL, self->a);
	ASSERT_NE(NULL, self->bb);
	ASSERT_NE(NULL, self->got);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "loop", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "loop: %s (%s)", why, strerror(-ret));
	self->bfd = open(self->b.path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->bfd);
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->buf = vb_alloc_data(&self->d.mem, LEN);
	vb_pattern(self->a, LEN, 32, 1);
	vb_pattern(self->bb, LEN, 32, 2);
}

FIXTURE_TEARDOWN(pagecache)
{
	vb_dev_teardown(&self->d);
	if (self->bfd >= 0)
		close(self->bfd);
	vb_backend_destroy(&self->b);
	free(self->a);
	free(self->bb);
	free(self->got);
}

TEST_F(pagecache, data_left_dirty_by_another_fd_is_read_and_never_lands_later)
{
	struct vb_vq *vq = &self->d.vq[0];

	/* A dirty page-cache copy of sector 32, never synced. */
	ASSERT_EQ(LEN, pwrite(self->bfd, self->a, LEN, 32 * VB_SECTOR));
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));

	vb_fill(&self->d.mem, self->buf, 0xaa, LEN);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_IN, 32, self->buf,
					 LEN, 0, NULL));
	vb_read(&self->d.mem, self->buf, self->got, LEN);
	EXPECT_EQ(0, memcmp(self->a, self->got, LEN))
		TH_LOG("the guest did not read what the host wrote before");

	/* The guest's write must survive the other fd's writeback. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(vq, self->buf, 32, LEN, 2, NULL));
	ASSERT_EQ(0, fsync(self->bfd));
	ASSERT_EQ(0, vb_backend_read(&self->b, 32 * VB_SECTOR, self->got,
				     LEN));
	EXPECT_EQ(0, memcmp(self->bb, self->got, LEN))
		TH_LOG("host pages dirty before the attach overwrote the guest");
}

TEST_F(pagecache, buffered_readers_see_the_guest_writes_after_a_switch)
{
	struct vb_vq *vq = &self->d.vq[0];

	/* Cache sector 32 through the buffered fd. */
	ASSERT_EQ(0, vb_backend_write(&self->b, 32 * VB_SECTOR, self->a, LEN));
	ASSERT_EQ(LEN, pread(self->bfd, self->got, LEN, 32 * VB_SECTOR));
	ASSERT_EQ(0, memcmp(self->a, self->got, LEN));

	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	/* ...and again while attached: the detach must drop it too. */
	ASSERT_EQ(LEN, pread(self->bfd, self->got, LEN, 32 * VB_SECTOR));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(vq, self->buf, 32, LEN, 2, NULL));
	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	ASSERT_EQ(LEN, pread(self->bfd, self->got, LEN, 32 * VB_SECTOR));
	EXPECT_EQ(0, memcmp(self->bb, self->got, LEN))
		TH_LOG("a buffered reader sees data from before the guest wrote");
}

/* ------------------------------------------------ write-cache mode */

#define F_NO_FLUSH	(VB_F_TRANSPORT | \
			 (VB_F_BLK & ~(1ULL << VIRTIO_BLK_F_FLUSH)))
#define F_WCE		(VB_F_TRANSPORT | VB_F_BLK | \
			 (1ULL << VIRTIO_BLK_F_CONFIG_WCE))

/* Write at @sector and count the bios there: all, and those with FUA. */
static void bio_write_count(struct __test_metadata *_metadata,
			    FIXTURE_DATA(bio) *self, uint64_t sector,
			    int *writes, int *fua)
{
	ASSERT_EQ(0, bio_trace_start(&self->t));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(self->vq, self->buf, sector, LEN, 1,
				      NULL));
	ASSERT_EQ(0, bio_trace_collect(&self->t));
	*writes = bio_count(&self->t, sector, is_write);
	*fua = bio_count(&self->t, sector, is_fua_write);
	if (*writes != 1)
		bio_dump(_metadata, &self->t);
}

static int get_writeback(FIXTURE_DATA(bio) *self, uint32_t *wb)
{
	return ioctl(self->d.fd, VHOST_BLK_GET_WRITEBACK, wb) ? -errno : 0;
}

static int set_writeback(FIXTURE_DATA(bio) *self, uint32_t wb)
{
	return ioctl(self->d.fd, VHOST_BLK_SET_WRITEBACK, &wb) ? -errno : 0;
}

/* virtio 5.2.6.1: a driver that cannot flush gets a writethrough cache. */
TEST_F(bio, writes_are_fua_when_flush_is_not_negotiated)
{
	uint32_t wb = 7;
	int writes, fua;

	bio_start(_metadata, self, F_NO_FLUSH);
	bio_write_count(_metadata, self, 256, &writes, &fua);
	ASSERT_EQ(1, writes);
	EXPECT_EQ(1, fua) TH_LOG("a writethrough write went out without FUA");
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(0, wb);
}

TEST_F(bio, writes_are_not_fua_in_writeback_mode)
{
	uint32_t wb = 7;
	int writes, fua;

	bio_start(_metadata, self, 0);
	ASSERT_NE(0, self->d.features & (1ULL << VIRTIO_BLK_F_FLUSH));
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(1, wb);
	bio_write_count(_metadata, self, 256, &writes, &fua);
	ASSERT_EQ(1, writes);
	EXPECT_EQ(0, fua);
}

/* CONFIG_WCE: the VMM passes on what the guest writes to "writeback". */
TEST_F(bio, config_wce_writethrough_set_by_the_vmm_makes_writes_fua)
{
	uint32_t wb = 7;
	int writes, fua;

	bio_start(_metadata, self, F_WCE);
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(1, wb);
	ASSERT_EQ(0, set_writeback(self, 0));
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(0, wb);
	bio_write_count(_metadata, self, 256, &writes, &fua);
	ASSERT_EQ(1, writes);
	EXPECT_EQ(1, fua);
	ASSERT_EQ(0, set_writeback(self, 1));
	bio_write_count(_metadata, self, 512, &writes, &fua);
	ASSERT_EQ(1, writes);
	EXPECT_EQ(0, fua);
}

TEST_F(bio, set_writeback_without_flush_or_above_1_fails_with_einval)
{
	uint32_t wb = 7;

	bio_start(_metadata, self, F_NO_FLUSH);
	ASSERT_EQ(-EINVAL, set_writeback(self, 1));
	ASSERT_EQ(0, set_writeback(self, 0));
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(0, wb);
	ASSERT_EQ(-EINVAL, set_writeback(self, 2));
	/* SET_FEATURES derives the mode again. */
	self->d.features = F_WCE;
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_FEATURES, &self->d.features));
	ASSERT_EQ(0, get_writeback(self, &wb));
	ASSERT_EQ(1, wb);
	ASSERT_EQ(-EINVAL, set_writeback(self, 2));
}

/*
 * A file on ext4 on a loop device: in writethrough mode a completed write
 * must have sent its data and the file system's metadata down with a
 * flush or FUA, which the loop device below shows.
 */
FIXTURE(wtfile) {
	struct vb_dev d;
	struct vb_backend b;
	struct bio_trace t;
};

FIXTURE_VARIANT(wtfile) {
	int oflags;
};

FIXTURE_VARIANT_ADD(wtfile, buffered) { .oflags = 0 };
FIXTURE_VARIANT_ADD(wtfile, direct) { .oflags = O_DIRECT };

FIXTURE_SETUP(wtfile)
{
	struct vb_opts o = { .num = 16, .features = F_NO_FLUSH };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	self->t.inst[0] = '\0';
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "ext4", DISK_SIZE, variant->oflags,
				&why);
	if (ret < 0)
		SKIP(return, "ext4: %s (%s)", why, strerror(-ret));
	if (bio_trace_open(&self->t, self->b.loopdev, &why))
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
}

FIXTURE_TEARDOWN(wtfile)
{
	vb_dev_teardown(&self->d);
	bio_trace_close(&self->t);
	vb_backend_destroy(&self->b);
}

static bool is_stable(const char *rwbs)
{
	return strchr(rwbs, 'F');
}

TEST_F(wtfile, writethrough_write_is_flushed_to_the_disk_below)
{
	uint64_t buf = vb_alloc_data(&self->d.mem, LEN);
	uint8_t *want = malloc(LEN), *got = malloc(LEN);

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, bio_trace_start(&self->t));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(&self->d.vq[0], buf, 64, LEN, 5, NULL));
	ASSERT_EQ(0, bio_trace_collect(&self->t));
	EXPECT_LE(1, bio_count(&self->t, ~0ULL, is_stable))
		bio_dump(_metadata, &self->t);
	vb_pattern(want, LEN, 64, 5);
	ASSERT_EQ(0, vb_backend_read(&self->b, 64 * VB_SECTOR, got, LEN));
	EXPECT_EQ(0, memcmp(want, got, LEN));
	free(want);
	free(got);
}

/* --------------------------------------------- a frozen file system */

/*
 * An image file on an ext4 that gets frozen (FIFREEZE, what fsfreeze
 * does) under the guest's writes: a write must wait for the thaw, and
 * must not hold up the other requests of the device meanwhile.
 */
FIXTURE(frozen) {
	struct vb_dev d;
	struct vb_backend b;
	int mnt;		/* the mount point, for FIFREEZE/FITHAW */
	bool frozen;
	uint64_t wbuf, rbuf;
};

FIXTURE_VARIANT(frozen) {
	int oflags;
};

FIXTURE_VARIANT_ADD(frozen, buffered) { .oflags = 0 };
FIXTURE_VARIANT_ADD(frozen, direct) { .oflags = O_DIRECT };

FIXTURE_SETUP(frozen)
{
	struct vb_opts o = { .num = 16 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	self->b.kind = NULL;
	self->mnt = -1;
	self->frozen = false;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "ext4", DISK_SIZE, variant->oflags,
				&why);
	if (ret < 0)
		SKIP(return, "ext4: %s (%s)", why, strerror(-ret));
	self->mnt = open(self->b.aux, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, self->mnt);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->wbuf = vb_alloc_data(&self->d.mem, LEN);
	self->rbuf = vb_alloc_data(&self->d.mem, LEN);
	/* Allocated blocks: the direct write then needs no allocation. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_io_write_pattern(&self->d.vq[0], self->wbuf, 64, LEN, 1,
				      NULL));
	ASSERT_EQ(0, fsync(self->b.fd));
}

FIXTURE_TEARDOWN(frozen)
{
	if (self->frozen)
		ioctl(self->mnt, FITHAW, 0);
	vb_dev_teardown(&self->d);
	if (self->mnt >= 0)
		close(self->mnt);
	vb_backend_destroy(&self->b);
}

TEST_F(frozen, write_waits_for_the_thaw_and_reads_go_on)
{
	struct vb_vq *vq = &self->d.vq[0];
	uint8_t *want = malloc(LEN), *got = malloc(LEN);
	struct vb_req w = { .type = VIRTIO_BLK_T_OUT, .sector = 64,
			    .data_gpa = self->wbuf, .data_len = LEN };

	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	ASSERT_EQ(0, ioctl(self->mnt, FIFREEZE, 0))
		TH_LOG("FIFREEZE: %s", strerror(errno));
	self->frozen = true;

	vb_pattern(want, LEN, 64, 2);
	vb_write(&self->d.mem, self->wbuf, want, LEN);
	ASSERT_EQ(0, vb_req_post(vq, &w));
	vb_vq_kick(vq);
	/* A read behind it is served while the write waits. */
	EXPECT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_IN, 128, self->rbuf,
					 LEN, 0, NULL))
		TH_LOG("a write to a frozen file system stalled the device");
	usleep(VB_QUIET_MS * 1000);
	ASSERT_LE(0, vb_vq_collect(vq));
	EXPECT_FALSE(w.done) TH_LOG("a write went into a frozen file system");

	ASSERT_EQ(0, ioctl(self->mnt, FITHAW, 0));
	self->frozen = false;
	while (!w.done)
		ASSERT_EQ(0, vb_vq_wait(vq, 1, VB_TIMEOUT_MS));
	ASSERT_EQ(VIRTIO_BLK_S_OK, w.status);
	ASSERT_EQ(0, vb_backend_read(&self->b, 64 * VB_SECTOR, got, LEN));
	EXPECT_EQ(0, memcmp(want, got, LEN));
	free(want);
	free(got);
}

/* ------------------------------------------- a VMM killed in a drain */

/*
 * dm-delay holding every bio for HUNG_MS stands for a hung backend (a
 * bio-based target has no request timeout, unlike a slow null_blk).  A
 * child process is the VMM: it owns the device and blocks in an ioctl
 * that drains; the parent holds the same open file (so that the child's
 * exit does not release the device), kills the child, and expects it
 * gone long before the request completes.
 */
#define HUNG_MS		8000
#define KILLED_MS	3000

enum hung_ioctl { HUNG_GET_VRING_BASE, HUNG_SET_BACKEND, HUNG_SET_KICK };

FIXTURE(hung) {
	struct vb_delay dl;
	struct vb_backend other;
	int fd;
	pid_t child;
	char *text;
};

FIXTURE_SETUP(hung)
{
	const char *why = "";
	int ret;

	vb_delay_init(&self->dl);
	self->other.kind = NULL;
	self->fd = -1;
	self->child = 0;
	self->text = malloc(VB_FDINFO_MAX);
	ASSERT_NE(NULL, self->text);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_delay_create(&self->dl, "vbt-delay", DISK_SIZE, NULL, HUNG_MS,
			      &why);
	if (ret < 0)
		SKIP(return, "dm-delay over null_blk: %s (%s)", why,
		     strerror(-ret));
	ret = vb_backend_create(&self->other, "tmpfs", DISK_SIZE, 0, &why);
	ASSERT_LE(0, ret) TH_LOG("tmpfs: %s", why);
	self->fd = vb_open();
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(hung)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	/* Release waits for the hung request, as it must. */
	if (self->fd >= 0)
		close(self->fd);
	vb_backend_destroy(&self->other);
	vb_delay_destroy(&self->dl);
	free(self->text);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* The child: set the device up on @fd, get a request stuck, then block. */
static int hung_child(int fd, int backend, int other, enum hung_ioctl what)
{
	struct vb_opts o = { .num = 16, .backend = backend };
	struct vhost_vring_file f = { .index = 0 };
	struct vb_req r;
	struct vb_dev d;
	struct vb_vq *vq;
	int i;

	vb_dev_init(&d);
	if (vb_mem_init(&d.mem))
		return 10;
	d.fd = fd;
	if (vb_dev_sequence(&d, &o))
		return 11;
	vq = &d.vq[0];
	r = (struct vb_req){ .type = VIRTIO_BLK_T_IN, .sector = 0,
			     .data_gpa = vb_alloc_data(&d.mem, 4096),
			     .data_len = 4096 };
	if (vb_req_post(vq, &r))
		return 12;
	vb_vq_kick(vq);
	/* The worker took it: the drain has something to wait for. */
	for (i = 0; i < VB_TIMEOUT_MS / 10; i++) {
		if (vb_fdinfo_num(fd, "vq0.inflight") == 1)
			break;
		usleep(10000);
	}
	switch (what) {
	case HUNG_GET_VRING_BASE:
		return vb_get_vring_base(&d, 0, NULL) ? 13 : 0;
	case HUNG_SET_BACKEND:
		return vb_set_backend(&d, other) ? 14 : 0;
	case HUNG_SET_KICK:
		/* Break the ring behind the stuck request, then restart it. */
		vb_vq_publish(vq, vq->num);
		vb_vq_kick(vq);
		if (vb_wait_fd(vq->err, VB_TIMEOUT_MS) != 1)
			return 15;
		f.fd = vq->kick;
		return ioctl(fd, VHOST_SET_VRING_KICK, &f) ? 16 : 0;
	}
	return 17;
}

static void hung_kill_in(struct __test_metadata *_metadata,
			 FIXTURE_DATA(hung) *self, enum hung_ioctl what,
			 const char *state)
{
	int64_t end, killed;
	char val[256];
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(hung_child(self->fd, self->dl.dm.fd, self->other.fd, what));
	self->child = pid;

	/* In the ioctl (it holds the device) with the request stuck. */
	end = now_ms() + VB_TIMEOUT_MS;
	while (!(vb_fdinfo_num(self->fd, "busy") == 1 &&
		 vb_fdinfo_num(self->fd, "vq0.inflight") == 1)) {
		ASSERT_EQ(0, waitpid(pid, &status, WNOHANG))
			TH_LOG("the child exited early: %d", status);
		ASSERT_GT(end, now_ms()) TH_LOG("the child never blocked");
		usleep(10000);
	}
	usleep(200000);

	ASSERT_EQ(0, kill(pid, SIGKILL));
	killed = now_ms();
	end = killed + KILLED_MS;
	while (waitpid(pid, &status, WNOHANG) != pid) {
		ASSERT_GT(end, now_ms())
			TH_LOG("a killed VMM still waits for the hung backend");
		usleep(10000);
	}
	self->child = 0;
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_GT(HUNG_MS - 1000, now_ms() - killed);

	/* The device is free again, consistent, and still has the request. */
	ASSERT_LT(0, vb_fdinfo_read(self->fd, self->text, VB_FDINFO_MAX));
	EXPECT_EQ(NULL, vb_fdinfo_get(self->text, "busy", val, sizeof(val)));
	EXPECT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.inflight"))
		TH_LOG("%s", self->text);
	EXPECT_STREQ(state, vb_fdinfo_get(self->text, "vq0.state", val,
					  sizeof(val)) ?: "")
		TH_LOG("%s", self->text);
	EXPECT_NE(NULL, strstr(vb_fdinfo_get(self->text, "backend", val,
					     sizeof(val)) ?: "",
			       self->dl.dm.path))
		TH_LOG("the old backend is not attached: %s", self->text);

	/* ...which completes when the backend does. */
	end = now_ms() + HUNG_MS + VB_TIMEOUT_MS;
	while (vb_fdinfo_read(self->fd, self->text, VB_FDINFO_MAX) <= 0 ||
	       vb_fdinfo_get_num(self->text, "vq0.inflight")) {
		ASSERT_GT(end, now_ms()) TH_LOG("%s", self->text);
		usleep(50000);
	}
	EXPECT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.reqs_in"));
}

TEST_F(hung, killed_in_get_vring_base_exits_and_leaves_the_queue_stopped)
{
	hung_kill_in(_metadata, self, HUNG_GET_VRING_BASE,
		     "stopped");
}

TEST_F(hung, killed_in_set_backend_exits_and_keeps_the_old_backend)
{
	hung_kill_in(_metadata, self, HUNG_SET_BACKEND,
		     "running");
}

TEST_F(hung, killed_in_set_vring_kick_exits_and_leaves_the_queue_broken)
{
	hung_kill_in(_metadata, self, HUNG_SET_KICK, "broken");
}

/* --------------------------- one device's blocking work and another's */

/*
 * Device A floods its four queues with write-zeroes, which a block device
 * serves from the workqueue (blkdev_issue_zeroout() sleeps), on a dm-delay
 * holding every bio for ISO_DELAY_MS: more such requests than the 256
 * workers the module's workqueue had in all.  Device B's flush, also
 * served from the workqueue, must not wait for them: each device may use
 * only a few workers (max_blocking).  A's requests are then let go (the
 * delay table is swapped for a linear one) and must all succeed.
 */
#define ISO_DELAY_MS	20000
#define ISO_QUEUES	4
#define ISO_PER_QUEUE	250

FIXTURE(iso) {
	struct vb_delay dl;
	struct vb_backend other;
	struct vb_dev a, b;
};

FIXTURE_SETUP(iso)
{
	const char *why = "";
	int ret;

	vb_delay_init(&self->dl);
	self->other.kind = NULL;
	vb_dev_init(&self->a);
	vb_dev_init(&self->b);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_delay_create(&self->dl, "vbt-iso", DISK_SIZE, NULL,
			      ISO_DELAY_MS, &why);
	if (ret < 0)
		SKIP(return, "dm-delay over null_blk: %s (%s)", why,
		     strerror(-ret));
	ret = vb_backend_create(&self->other, "tmpfs", DISK_SIZE, 0, &why);
	ASSERT_LE(0, ret) TH_LOG("tmpfs: %s", why);
}

FIXTURE_TEARDOWN(iso)
{
	/* Whatever is still delayed must go, for A's release to drain. */
	if (self->dl.dm.name[0] && vb_delay_release(&self->dl))
		fprintf(stderr, "# dmsetup could not let %s go\n",
			self->dl.dm.name);
	vb_dev_teardown(&self->a);
	vb_dev_teardown(&self->b);
	vb_backend_destroy(&self->other);
	vb_delay_destroy(&self->dl);
}

TEST_F(iso, a_flood_of_blocking_requests_does_not_delay_another_devices_flush)
{
	struct vb_opts oa = { .nvqs = ISO_QUEUES, .num = 256,
			      .backend = self->dl.dm.fd };
	struct vb_opts ob = { .num = 16, .backend = self->other.fd };
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = 0, .num_sectors = htole32(8),
	};
	static struct vb_req r[ISO_QUEUES][ISO_PER_QUEUE];
	unsigned int q, i, total = ISO_QUEUES * ISO_PER_QUEUE;
	int64_t t0, ms;
	uint64_t seg_gpa;
	int ret;

	ret = vb_dev_setup(&self->a, &oa);
	ASSERT_EQ(0, ret) TH_LOG("device A: %s", strerror(-ret));
	ret = vb_dev_setup(&self->b, &ob);
	ASSERT_EQ(0, ret) TH_LOG("device B: %s", strerror(-ret));
	seg_gpa = vb_alloc_data(&self->a.mem, sizeof(seg));
	ASSERT_NE(0, seg_gpa);
	ASSERT_EQ(0, vb_write(&self->a.mem, seg_gpa, &seg, sizeof(seg)));
	for (q = 0; q < ISO_QUEUES; q++) {
		for (i = 0; i < ISO_PER_QUEUE; i++) {
			r[q][i] = (struct vb_req){
				.type = VIRTIO_BLK_T_WRITE_ZEROES,
				.data_gpa = seg_gpa, .data_len = sizeof(seg),
				.layout = VB_L_INDIRECT,
			};
			ASSERT_EQ(0, vb_req_post(&self->a.vq[q], &r[q][i]))
				TH_LOG("queue %u request %u", q, i);
		}
		vb_vq_kick(&self->a.vq[q]);
	}
	/* Every one of them handed to the workqueue. */
	for (i = 0; i < VB_TIMEOUT_MS / 10; i++) {
		if (vb_fdinfo_vq_sum(self->a.fd, "punted") >= total)
			break;
		usleep(10000);
	}
	ASSERT_EQ(total, vb_fdinfo_vq_sum(self->a.fd, "punted"));
	ASSERT_EQ(total, vb_fdinfo_vq_sum(self->a.fd, "inflight"));

	t0 = now_ms();
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(&self->b.vq[0], VIRTIO_BLK_T_FLUSH,
					 0, 0, 0, 0, NULL));
	ms = now_ms() - t0;
	TH_LOG("B's flush took %lld ms behind %u blocked requests of A",
	       (long long)ms, total);
	ASSERT_GT(ISO_DELAY_MS / 4, ms);

	/* A's requests all complete once the delay is gone. */
	ASSERT_EQ(0, vb_delay_release(&self->dl));
	for (q = 0; q < ISO_QUEUES; q++) {
		ASSERT_EQ(0, vb_vq_wait(&self->a.vq[q], ISO_PER_QUEUE,
					6 * VB_TIMEOUT_MS)) TH_LOG("queue %u", q);
		for (i = 0; i < ISO_PER_QUEUE; i++)
			ASSERT_EQ(VIRTIO_BLK_S_OK, r[q][i].status);
	}
}

/* ------------------------------------------- pins of one page, flooded */

/*
 * Every descriptor is pinned on its own, and each pin of a page adds 1024
 * to its refcount: 3 queues x 1024 requests x 1022 descriptors on one
 * page are 2^21.6 pins, past the 2^31 the count holds (a WARN in GUP,
 * which fails the VM run, and every later pin of the page fails).  The
 * device's pin budget must hold the requests back instead, and serve
 * them all.  dm-delay keeps them in flight long enough for the worker to
 * take them all where nothing holds it back.  The budget is raised to its
 * most for the test, so that the flood needs few rounds of the delay.
 */
#define FLOOD_QUEUES	3
#define FLOOD_NUM	1024
#define FLOOD_DESCS	1024		/* header, 1022 data, status */
#define FLOOD_TABLE	(FLOOD_DESCS * 16 + 64)	/* table, then the status */
#define FLOOD_DELAY_MS	4000
#define FLOOD_PARAM	"/sys/module/vhost_blk/parameters/max_pinned_pages"

FIXTURE(flood) {
	struct vb_delay dl;
	struct vb_dev d;
	char old_max[32];
};

FIXTURE_SETUP(flood)
{
	struct vb_opts o = { .nvqs = FLOOD_QUEUES, .num = FLOOD_NUM,
			     .data_mem = 64ULL << 20 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	vb_delay_init(&self->dl);
	self->old_max[0] = '\0';
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_delay_create(&self->dl, "vbt-flood", DISK_SIZE, NULL,
			      FLOOD_DELAY_MS, &why);
	if (ret < 0)
		SKIP(return, "dm-delay over null_blk: %s (%s)", why,
		     strerror(-ret));
	/* A module without the parameter has no budget: the test shows it. */
	if (vb_read_text(FLOOD_PARAM, self->old_max,
			 sizeof(self->old_max)) > 0)
		ASSERT_EQ(0, vb_write_text(FLOOD_PARAM, "524288"));
	o.backend = self->dl.dm.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	/*
	 * Small pages: a huge page counts pins apart from its refcount.  A
	 * kernel without transparent huge pages (PREEMPT_RT, the sanitizer
	 * kernel) has only small ones, and refuses the advice with EINVAL.
	 */
	ret = madvise(self->d.mem.r[2].hva, self->d.mem.r[2].size,
		      MADV_NOHUGEPAGE);
	ASSERT_TRUE(!ret || errno == EINVAL) TH_LOG("madvise: %s",
						    strerror(errno));
}

FIXTURE_TEARDOWN(flood)
{
	vb_dev_teardown(&self->d);
	if (self->old_max[0])
		vb_write_text(FLOOD_PARAM, self->old_max);
	vb_delay_destroy(&self->dl);
}

TEST_F_TIMEOUT(flood, requests_pinning_one_page_2m_times_all_complete, 240)
{
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_OUT };
	uint64_t page, tables;
	unsigned int q, i, k;
	uint8_t st;

	page = vb_alloc_data(&self->d.mem, 4096);
	tables = vb_alloc_data(&self->d.mem, FLOOD_QUEUES * FLOOD_NUM *
					     FLOOD_TABLE);
	ASSERT_NE(0, page);
	ASSERT_NE(0, tables);
	vb_fill(&self->d.mem, page, 0x5a, 4096);
	vb_write(&self->d.mem, page, &h, sizeof(h));
	for (q = 0; q < FLOOD_QUEUES; q++) {
		struct vb_vq *vq = &self->d.vq[q];

		for (i = 0; i < FLOOD_NUM; i++) {
			uint64_t t = tables + (uint64_t)(q * FLOOD_NUM + i) *
					      FLOOD_TABLE;
			struct vring_desc *d = vb_hva(&self->d.mem, t,
						      FLOOD_TABLE);
			struct vb_seg s = { page, 1, true };
			uint16_t head;

			d[0] = (struct vring_desc){ page, sizeof(h),
						    VRING_DESC_F_NEXT, 1 };
			for (k = 1; k < FLOOD_DESCS - 1; k++)
				d[k] = (struct vring_desc){
					page + 512, 512, VRING_DESC_F_NEXT,
					k + 1 };
			d[k] = (struct vring_desc){ t + FLOOD_DESCS * 16, 1,
						    VRING_DESC_F_WRITE, 0 };
			*((uint8_t *)d + FLOOD_DESCS * 16) = 0xff;
			/* Take a head, then point it at the big table. */
			ASSERT_EQ(0, vb_vq_add(vq, &s, 1, true, &head));
			vq->desc[head].addr = t;
			vq->desc[head].len = FLOOD_DESCS * 16;
			vb_vq_publish(vq, head);
		}
	}
	for (q = 0; q < FLOOD_QUEUES; q++)
		vb_vq_kick(&self->d.vq[q]);
	for (q = 0; q < FLOOD_QUEUES; q++)
		ASSERT_EQ(0, vb_vq_poll_used(&self->d.vq[q], FLOOD_NUM,
					     200 * 1000)) TH_LOG("queue %u", q);
	for (i = 0; i < FLOOD_QUEUES * FLOOD_NUM; i++) {
		vb_read(&self->d.mem, tables + (uint64_t)i * FLOOD_TABLE +
				      FLOOD_DESCS * 16, &st, 1);
		ASSERT_EQ(VIRTIO_BLK_S_OK, st) TH_LOG("request %u", i);
	}
	for (q = 0; q < FLOOD_QUEUES; q++)
		ASSERT_FALSE(vb_fd_signalled(self->d.vq[q].err));
	/* The page can still be pinned, for a read into it. */
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(&self->d.vq[0], VIRTIO_BLK_T_IN, 0,
					 page, 4096, 0, NULL));
}

TEST_HARNESS_MAIN
