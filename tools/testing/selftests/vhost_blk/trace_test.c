// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk tracepoints: with events/vhost_blk/ enabled in a trace
 * instance of our own, known requests must be recorded with the device,
 * queue, type, sector, byte count and status they had.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define DISK_SECTORS	(DISK_SIZE / VB_SECTOR)
#define TRACE_MAX	(1 << 20)
#define MAX_EVENTS	64

/* What TP_printk() of the two request events prints. */
#define START_FMT	"vhost_blk_req_start: dev=%u vq=%u head=%u " \
			"type=%15s sector=%llu bytes=%llu"
#define DONE_FMT	"vhost_blk_req_done: dev=%u vq=%u head=%u " \
			"type=%15s status=%15s latency_ns=%llu"

struct ev_req {
	unsigned int dev, vq, head;
	char type[16];
	char status[16];		/* req_done */
	unsigned long long sector;	/* req_start */
	unsigned long long bytes;	/* req_start */
	unsigned long long latency_ns;	/* req_done */
};

FIXTURE(trace) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
	unsigned int id;
	char inst[256];
	char *text;
	struct ev_req start[MAX_EVENTS], done[MAX_EVENTS];
	int nstart, ndone;
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

static int inst_write(FIXTURE_DATA(trace) *self, const char *file,
		      const char *text)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", self->inst, file);
	return vb_write_text(path, text);
}

/* Read the instance's trace and parse our device's request events. */
static int trace_collect(FIXTURE_DATA(trace) *self)
{
	char path[512];
	char *line, *next;
	int ret;

	snprintf(path, sizeof(path), "%s/trace", self->inst);
	ret = vb_read_text(path, self->text, TRACE_MAX);
	if (ret < 0)
		return ret;
	self->nstart = 0;
	self->ndone = 0;
	for (line = self->text; line && *line; line = next) {
		char *p, *end = strchr(line, '\n');
		struct ev_req e = { 0 };

		/* One line at a time: end it here while we look at it. */
		next = end ? end + 1 : NULL;
		if (end)
			*end = '\0';
		p = strstr(line, "vhost_blk_req_start: ");
		if (p && self->nstart < MAX_EVENTS &&
		    sscanf(p, START_FMT,
			   &e.dev, &e.vq, &e.head, e.type, &e.sector,
			   &e.bytes) == 6 && e.dev == self->id)
			self->start[self->nstart++] = e;
		p = strstr(line, "vhost_blk_req_done: ");
		if (p && self->ndone < MAX_EVENTS &&
		    sscanf(p, DONE_FMT,
			   &e.dev, &e.vq, &e.head, e.type, e.status,
			   &e.latency_ns) == 6 && e.dev == self->id)
			self->done[self->ndone++] = e;
		if (end)
			*end = '\n';
	}
	return 0;
}

/* Lines of event @name for our device, containing @what if not NULL. */
static int trace_count(FIXTURE_DATA(trace) *self, const char *name,
		       const char *what)
{
	char key[128];
	char *line;
	int n = 0;

	snprintf(key, sizeof(key), "%s: dev=%u ", name, self->id);
	for (line = self->text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char *end = strchrnul(line, '\n');
		char *p = strstr(line, key);

		if (!p || p > end)
			continue;
		if (what) {
			char *w = strstr(p, what);

			if (!w || w > end)
				continue;
		}
		n++;
	}
	return n;
}

FIXTURE_SETUP(trace)
{
	struct vb_opts o = { .num = 64 };
	const char *why = "", *tfs;
	char path[512];
	int ret;

	vb_dev_init(&self->d);
	self->inst[0] = '\0';
	self->text = malloc(TRACE_MAX);
	ASSERT_NE(NULL, self->text);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	tfs = tracefs();
	if (!tfs)
		SKIP(return, "no tracefs: not mounted and cannot be mounted");
	snprintf(path, sizeof(path), "%s/events", tfs);
	if (access(path, F_OK))
		SKIP(return, "kernel without trace events (CONFIG_EVENT_TRACING)");
	snprintf(self->inst, sizeof(self->inst), "%s/instances/vhost_blk_%d",
		 tfs, getpid());
	ASSERT_EQ(0, mkdir(self->inst, 0700)) {
		self->inst[0] = '\0';
		TH_LOG("mkdir trace instance: %s", strerror(errno));
	}
	/* The module is loaded: its events must be there. */
	ASSERT_EQ(0, inst_write(self, "events/vhost_blk/enable", "1"))
		TH_LOG("cannot enable events/vhost_blk in %s", self->inst);

	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, 65536);
	ASSERT_NE(0, self->buf);
	ASSERT_LT(0, vb_fdinfo_num(self->d.fd, "vhost_blk_id"));
	self->id = vb_fdinfo_num(self->d.fd, "vhost_blk_id");
}

FIXTURE_TEARDOWN(trace)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	if (self->inst[0]) {
		inst_write(self, "events/vhost_blk/enable", "0");
		rmdir(self->inst);
	}
	free(self->text);
}

TEST_F(trace, requests_are_recorded_with_their_fields)
{
	static const struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
		const char *tname, *status;
	} io[] = {
		{ VIRTIO_BLK_T_OUT, 16, 4096, "OUT", "OK" },
		{ VIRTIO_BLK_T_IN, 32, 8192, "IN", "OK" },
		{ VIRTIO_BLK_T_FLUSH, 0, 0, "FLUSH", "OK" },
		{ VIRTIO_BLK_T_IN, DISK_SECTORS, 4096, "IN", "IOERR" },
		{ 0x55, 0, 512, "0x55", "UNSUPP" },
	};
	const int n = ARRAY_SIZE(io);
	uint16_t heads[ARRAY_SIZE(io)];
	int i;

	for (i = 0; i < n; i++) {
		struct vb_req r = {
			.type = io[i].type, .sector = io[i].sector,
			.data_gpa = io[i].len ? self->buf : 0,
			.data_len = io[i].len,
		};

		ASSERT_EQ(0, vb_req_post(self->vq, &r));
		heads[i] = r.head;
		vb_vq_kick(self->vq);
		while (!r.done)
			ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
	}
	ASSERT_EQ(0, trace_collect(self));
	ASSERT_EQ(n, self->nstart) TH_LOG("trace:\n%s", self->text);
	ASSERT_EQ(n, self->ndone) TH_LOG("trace:\n%s", self->text);
	for (i = 0; i < n; i++) {
		struct ev_req *s = &self->start[i], *d = &self->done[i];

		EXPECT_EQ(0, s->vq);
		EXPECT_EQ(heads[i], s->head);
		EXPECT_STREQ(io[i].tname, s->type);
		EXPECT_EQ(io[i].sector, s->sector);
		EXPECT_EQ(io[i].len, s->bytes);
		EXPECT_EQ(0, d->vq);
		EXPECT_EQ(heads[i], d->head);
		EXPECT_STREQ(io[i].tname, d->type);
		EXPECT_STREQ(io[i].status, d->status);
		EXPECT_LT(0, d->latency_ns);
	}
	/* One kick per request; at least one interrupt. */
	EXPECT_EQ(n, trace_count(self, "vhost_blk_kick", "vq=0 "));
	EXPECT_LE(1, trace_count(self, "vhost_blk_signal", "vq=0 "));
}

TEST_F(trace, backend_attach_and_detach_are_recorded)
{
	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	ASSERT_EQ(0, trace_collect(self));
	EXPECT_EQ(1, trace_count(self, "vhost_blk_backend", "attach file"))
		TH_LOG("trace:\n%s", self->text);
	EXPECT_EQ(1, trace_count(self, "vhost_blk_backend", "detach file"))
		TH_LOG("trace:\n%s", self->text);
}

TEST_F(trace, broken_queue_is_recorded_with_its_reason)
{
	char why[64];

	vb_vq_publish(self->vq, self->vq->num);
	vb_vq_kick(self->vq);
	ASSERT_EQ(1, vb_wait_fd(self->vq->err, VB_TIMEOUT_MS));
	ASSERT_EQ(0, trace_collect(self));
	snprintf(why, sizeof(why), "vq=0 reason=head %u out of range",
		 self->vq->num);
	EXPECT_EQ(1, trace_count(self, "vhost_blk_vq_broken", why))
		TH_LOG("trace:\n%s", self->text);
	/* A guest that keeps kicking a broken queue adds no event. */
	vb_vq_kick(self->vq);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_EQ(0, trace_collect(self));
	EXPECT_EQ(1, trace_count(self, "vhost_blk_vq_broken", NULL));
}

TEST_HARNESS_MAIN
