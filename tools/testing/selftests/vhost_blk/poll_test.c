// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk busy polling: VHOST_SET/GET_VRING_BUSYLOOP_TIMEOUT per queue,
 * the poll_us and poll_adaptive module parameters, and requests served
 * correctly while the worker polls, including a budget changed under I/O
 * and a device closed while its worker polls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define DISK_SECTORS	(DISK_SIZE / VB_SECTOR)
#define IO_LEN		8192
#define QD		8
#define PARAM_DIR	"/sys/module/vhost_blk/parameters/"

FIXTURE(poll) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
};

static int set_timeout(int fd, unsigned int idx, unsigned int us)
{
	struct vhost_vring_state s = { .index = idx, .num = us };

	return ioctl(fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s) ? -errno : 0;
}

static int get_timeout(int fd, unsigned int idx, unsigned int *us)
{
	struct vhost_vring_state s = { .index = idx, .num = 0xdead };

	if (ioctl(fd, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, &s))
		return -errno;
	if (s.index != idx)
		return -EPROTO;
	*us = s.num;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Write then read back @n patterned requests, QD at a time, on @vq; with
 * @us_change, alternate the queue's budget between 0 and 1000 us under I/O.
 */
static int rw_verify(struct vb_dev *d, struct vb_vq *vq, uint64_t buf,
		     unsigned int n, uint32_t seed, bool us_change)
{
	static uint8_t want[IO_LEN], got[IO_LEN];
	struct vb_req r[QD];
	unsigned int i, j, pass;
	int ret;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i += QD) {
			for (j = 0; j < QD && i + j < n; j++) {
				uint64_t sector = (i + j) * (IO_LEN / VB_SECTOR) %
						  DISK_SECTORS;
				uint64_t gpa = buf + j * IO_LEN;

				if (!pass) {
					vb_pattern(want, IO_LEN, sector, seed);
					vb_write(&d->mem, gpa, want, IO_LEN);
				} else {
					vb_fill(&d->mem, gpa, 0xa5, IO_LEN);
				}
				r[j] = (struct vb_req){
					.type = pass ? VIRTIO_BLK_T_IN :
						       VIRTIO_BLK_T_OUT,
					.sector = sector, .data_gpa = gpa,
					.data_len = IO_LEN,
				};
				ret = vb_req_post(vq, &r[j]);
				if (ret)
					return ret;
			}
			vb_vq_kick(vq);
			ret = vb_vq_wait(vq, j, VB_TIMEOUT_MS);
			if (ret)
				return ret;
			if (us_change) {
				ret = set_timeout(d->fd, vq->idx,
						  (i / QD) % 2 ? 0 : 1000);
				if (ret)
					return ret;
			}
			for (j = 0; j < QD && i + j < n; j++) {
				if (!r[j].done || r[j].status != VIRTIO_BLK_S_OK)
					return -EIO;
				if (!pass)
					continue;
				vb_pattern(want, IO_LEN, r[j].sector, seed);
				vb_read(&d->mem, r[j].data_gpa, got, IO_LEN);
				if (memcmp(want, got, IO_LEN))
					return -EILSEQ;
			}
		}
	}
	return 0;
}

FIXTURE_SETUP(poll)
{
	struct vb_opts o = { .num = 128, .nvqs = 2 };
	const char *why = "";
	int ret;

	vb_dev_init(&self->d);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, QD * IO_LEN);
	ASSERT_NE(0, self->buf);
}

FIXTURE_TEARDOWN(poll)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

TEST_F(poll, get_returns_what_set_set)
{
	unsigned int us = 0;

	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 50));
	ASSERT_EQ(0, set_timeout(self->d.fd, 1, 7));
	ASSERT_EQ(0, get_timeout(self->d.fd, 0, &us));
	ASSERT_EQ(50, us);
	ASSERT_EQ(0, get_timeout(self->d.fd, 1, &us));
	ASSERT_EQ(7, us);
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 0));
	ASSERT_EQ(0, get_timeout(self->d.fd, 0, &us));
	ASSERT_EQ(0, us);
}

TEST_F(poll, bad_queue_index_fails_with_enobufs)
{
	unsigned int us = 0;

	ASSERT_EQ(-ENOBUFS, set_timeout(self->d.fd, VHOST_BLK_MAX_QUEUES, 1));
	ASSERT_EQ(-ENOBUFS, get_timeout(self->d.fd, VHOST_BLK_MAX_QUEUES, &us));
	ASSERT_EQ(-ENOBUFS, set_timeout(self->d.fd, 0x80000000u, 1));
}

TEST_F(poll, budget_above_max_fails_with_einval)
{
	unsigned int us = 0;

	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 10));
	ASSERT_EQ(-EINVAL, set_timeout(self->d.fd, 0,
				       VHOST_BLK_MAX_BUSYLOOP_US + 1));
	ASSERT_EQ(-EINVAL, set_timeout(self->d.fd, 0, 0xffffffffu));
	ASSERT_EQ(0, get_timeout(self->d.fd, 0, &us));
	ASSERT_EQ(10, us);
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, VHOST_BLK_MAX_BUSYLOOP_US));
	ASSERT_EQ(0, get_timeout(self->d.fd, 0, &us));
	ASSERT_EQ(VHOST_BLK_MAX_BUSYLOOP_US, us);
}

TEST_F(poll, new_queue_starts_with_poll_us_parameter)
{
	char text[32];
	unsigned int us = 0;

	if (vb_read_text(PARAM_DIR "poll_us", text, sizeof(text)) <= 0)
		SKIP(return, "no poll_us parameter");
	ASSERT_EQ(0, get_timeout(self->d.fd, 1, &us));
	ASSERT_EQ(strtoul(text, NULL, 10), us);
}

TEST_F(poll, poll_us_parameter_above_max_is_rejected)
{
	char text[32], saved[32];

	if (vb_read_text(PARAM_DIR "poll_us", saved, sizeof(saved)) <= 0)
		SKIP(return, "no poll_us parameter");
	snprintf(text, sizeof(text), "%u", VHOST_BLK_MAX_BUSYLOOP_US + 1);
	ASSERT_GT(0, vb_write_text(PARAM_DIR "poll_us", text));
	ASSERT_LT(0, vb_read_text(PARAM_DIR "poll_us", text, sizeof(text)));
	ASSERT_STREQ(saved, text);
}

TEST_F(poll, data_reads_back_with_polling_on)
{
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 1000));
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 512, 1, false));
}

TEST_F(poll, data_reads_back_with_budget_changed_while_running)
{
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 512, 2, true));
}

TEST_F(poll, data_reads_back_on_two_polled_queues)
{
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 500));
	ASSERT_EQ(0, set_timeout(self->d.fd, 1, 500));
	ASSERT_EQ(0, rw_verify(&self->d, &self->d.vq[0], self->buf, 128, 3,
			       false));
	ASSERT_EQ(0, rw_verify(&self->d, &self->d.vq[1], self->buf, 128, 4,
			       false));
}

TEST_F(poll, data_reads_back_in_adaptive_mode)
{
	char saved[8];
	int ret;

	if (vb_read_text(PARAM_DIR "poll_adaptive", saved, sizeof(saved)) <= 0)
		SKIP(return, "no poll_adaptive parameter");
	ASSERT_LE(0, vb_write_text(PARAM_DIR "poll_adaptive", "Y"));
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 200));
	ret = rw_verify(&self->d, self->vq, self->buf, 512, 5, false);
	/* An idle gap: the window shrinks, the next requests still land. */
	usleep(20000);
	if (!ret)
		ret = rw_verify(&self->d, self->vq, self->buf, 64, 6, false);
	vb_write_text(PARAM_DIR "poll_adaptive", saved);
	ASSERT_EQ(0, ret);
}

TEST_F(poll, request_after_idle_gap_is_served)
{
	/* The window ends with notifications re-enabled: a kick wakes us. */
	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 1000));
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 8, 7, false));
	usleep(50000);
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 8, 8, false));
}

TEST_F(poll, close_while_polling_is_prompt)
{
	double t;

	ASSERT_EQ(0, set_timeout(self->d.fd, 0, VHOST_BLK_MAX_BUSYLOOP_US));
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 8, 9, false));
	t = now_s();
	vb_dev_teardown(&self->d);
	/* A 100 ms budget, with slack for a loaded machine. */
	ASSERT_GT(2.0, now_s() - t);
}

TEST_F(poll, stopped_queue_restarts_with_polling_on)
{
	unsigned int base;

	ASSERT_EQ(0, set_timeout(self->d.fd, 0, 1000));
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 16, 10, false));
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(0, vb_vq_start(&self->d, self->vq, base));
	ASSERT_EQ(0, rw_verify(&self->d, self->vq, self->buf, 16, 11, false));
}

TEST_HARNESS_MAIN
