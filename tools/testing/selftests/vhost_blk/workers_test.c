// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk's multi-worker uapi (upstream's, Linux 6.5): VHOST_NEW_WORKER,
 * VHOST_FREE_WORKER, VHOST_ATTACH_VRING_WORKER, VHOST_GET_VRING_WORKER.
 * Errors as upstream's (ENOBUFS for a bad queue, ENODEV for a worker that
 * does not exist, EBUSY for freeing one still attached), the threads they
 * make, and data served right with a worker per queue, also while a queue
 * moves between workers under I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define NQ		4
#define IO_LEN		8192
#define QD		8
/* Each queue writes its own quarter of the disk. */
#define AREA_SECTORS	(DISK_SIZE / VB_SECTOR / NQ)

FIXTURE(wk) {
	struct vb_dev d;
	struct vb_backend b;
	uint64_t buf[NQ];
};

static int new_worker(int fd, unsigned int *id)
{
	struct vhost_worker_state s = { .worker_id = 0xdead };

	if (ioctl(fd, VHOST_NEW_WORKER, &s))
		return -errno;
	*id = s.worker_id;
	return 0;
}

static int free_worker(int fd, unsigned int id)
{
	struct vhost_worker_state s = { .worker_id = id };

	return ioctl(fd, VHOST_FREE_WORKER, &s) ? -errno : 0;
}

static int attach(int fd, unsigned int idx, unsigned int id)
{
	struct vhost_vring_worker w = { .index = idx, .worker_id = id };

	return ioctl(fd, VHOST_ATTACH_VRING_WORKER, &w) ? -errno : 0;
}

static int get_worker(int fd, unsigned int idx, unsigned int *id)
{
	struct vhost_vring_worker w = { .index = idx, .worker_id = 0xdead };

	if (ioctl(fd, VHOST_GET_VRING_WORKER, &w))
		return -errno;
	if (w.index != idx)
		return -EPROTO;
	*id = w.worker_id;
	return 0;
}

/* Threads named like our workers: vhost-blk-<pid>, cut to 15 bytes. */
static int count_workers(void)
{
	char name[32];

	vb_worker_name(name, sizeof(name), getpid());
	return vb_count_threads(name, NULL);
}

/* A count that must fall: read until it has, as the thread is reaped. */
static int workers_after_exit(int want)
{
	char name[32];

	vb_worker_name(name, sizeof(name), getpid());
	return vb_wait_threads(name, want, NULL);
}

struct verify {
	struct vb_dev *d;
	struct vb_vq *vq;
	uint64_t buf;
	unsigned int n;
	uint32_t seed;
	int ret;
};

/* Write then read back v->n patterned requests in the queue's area. */
static void *rw_verify(void *arg)
{
	struct verify *v = arg;
	uint8_t *want = malloc(IO_LEN), *got = malloc(IO_LEN);
	uint64_t base = v->vq->idx * AREA_SECTORS;
	struct vb_req r[QD];
	unsigned int i, j, pass;
	int ret = 0;

	for (pass = 0; pass < 2 && !ret; pass++) {
		for (i = 0; i < v->n && !ret; i += QD) {
			for (j = 0; j < QD && i + j < v->n && !ret; j++) {
				uint64_t sector = base + (i + j) *
					(IO_LEN / VB_SECTOR) % AREA_SECTORS;
				uint64_t gpa = v->buf + j * IO_LEN;

				if (!pass) {
					vb_pattern(want, IO_LEN, sector, v->seed);
					vb_write(&v->d->mem, gpa, want, IO_LEN);
				} else {
					vb_fill(&v->d->mem, gpa, 0xa5, IO_LEN);
				}
				r[j] = (struct vb_req){
					.type = pass ? VIRTIO_BLK_T_IN :
						       VIRTIO_BLK_T_OUT,
					.sector = sector, .data_gpa = gpa,
					.data_len = IO_LEN,
				};
				ret = vb_req_post(v->vq, &r[j]);
			}
			if (ret)
				break;
			vb_vq_kick(v->vq);
			ret = vb_vq_wait(v->vq, j, VB_TIMEOUT_MS);
			for (j = 0; !ret && j < QD && i + j < v->n; j++) {
				if (!r[j].done || r[j].status != VIRTIO_BLK_S_OK) {
					ret = -EIO;
					break;
				}
				if (!pass)
					continue;
				vb_pattern(want, IO_LEN, r[j].sector, v->seed);
				vb_read(&v->d->mem, r[j].data_gpa, got, IO_LEN);
				if (memcmp(want, got, IO_LEN))
					ret = -EILSEQ;
			}
		}
	}
	free(want);
	free(got);
	v->ret = ret;
	return NULL;
}

/* rw_verify on every queue at once, a thread each. */
static int verify_all(struct _test_data_wk *self, unsigned int n, uint32_t seed)
{
	struct verify v[NQ];
	pthread_t t[NQ];
	int i, ret = 0;

	for (i = 0; i < NQ; i++) {
		v[i] = (struct verify){ &self->d, &self->d.vq[i], self->buf[i],
					n, seed + i, 0 };
		pthread_create(&t[i], NULL, rw_verify, &v[i]);
	}
	for (i = 0; i < NQ; i++) {
		pthread_join(t[i], NULL);
		if (v[i].ret && !ret)
			ret = v[i].ret;
	}
	return ret;
}

FIXTURE_SETUP(wk)
{
	struct vb_opts o = { .num = 128, .nvqs = NQ };
	const char *why = "";
	int ret, i;

	vb_dev_init(&self->d);
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	for (i = 0; i < NQ; i++) {
		self->buf[i] = vb_alloc_data(&self->d.mem, QD * IO_LEN);
		ASSERT_NE(0, self->buf[i]);
	}
}

FIXTURE_TEARDOWN(wk)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

TEST_F(wk, every_queue_starts_on_worker_0)
{
	unsigned int id = 1, i;

	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		ASSERT_EQ(0, get_worker(self->d.fd, i, &id));
		ASSERT_EQ(0, id);
	}
}

TEST_F(wk, new_worker_is_a_thread_of_its_own)
{
	unsigned int a = 0, b = 0;

	ASSERT_EQ(1, count_workers());
	ASSERT_EQ(0, new_worker(self->d.fd, &a));
	ASSERT_EQ(0, new_worker(self->d.fd, &b));
	ASSERT_NE(0, a);
	ASSERT_NE(a, b);
	ASSERT_EQ(3, count_workers());
	ASSERT_EQ(0, free_worker(self->d.fd, a));
	ASSERT_EQ(0, free_worker(self->d.fd, b));
	ASSERT_EQ(1, workers_after_exit(1));
}

TEST_F(wk, attach_then_get_returns_it)
{
	unsigned int id = 0, got = 0;

	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(0, attach(self->d.fd, 2, id));
	ASSERT_EQ(0, get_worker(self->d.fd, 2, &got));
	ASSERT_EQ(id, got);
	ASSERT_EQ(0, get_worker(self->d.fd, 1, &got));
	ASSERT_EQ(0, got);
}

TEST_F(wk, bad_queue_index_fails_with_enobufs)
{
	unsigned int id = 0;

	ASSERT_EQ(-ENOBUFS, attach(self->d.fd, VHOST_BLK_MAX_QUEUES, 0));
	ASSERT_EQ(-ENOBUFS, get_worker(self->d.fd, VHOST_BLK_MAX_QUEUES, &id));
	ASSERT_EQ(-ENOBUFS, attach(self->d.fd, 0xffffffffu, 0));
}

TEST_F(wk, missing_worker_fails_with_enodev)
{
	unsigned int id = 0;

	ASSERT_EQ(-ENODEV, attach(self->d.fd, 0, 1));
	ASSERT_EQ(-ENODEV, attach(self->d.fd, 0, 0xffffffffu));
	ASSERT_EQ(-ENODEV, free_worker(self->d.fd, 1));
	ASSERT_EQ(-ENODEV, free_worker(self->d.fd, 0xffffffffu));
	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(0, free_worker(self->d.fd, id));
	ASSERT_EQ(-ENODEV, free_worker(self->d.fd, id));
	ASSERT_EQ(-ENODEV, attach(self->d.fd, 0, id));
}

TEST_F(wk, freeing_an_attached_worker_fails_with_ebusy)
{
	unsigned int id = 0, i;

	ASSERT_EQ(-EBUSY, free_worker(self->d.fd, 0));
	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(0, attach(self->d.fd, 3, id));
	ASSERT_EQ(-EBUSY, free_worker(self->d.fd, id));
	ASSERT_EQ(0, attach(self->d.fd, 3, 0));
	ASSERT_EQ(0, free_worker(self->d.fd, id));
	/* Worker 0 too, once every queue has moved off it. */
	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		ASSERT_EQ(0, attach(self->d.fd, i, id));
	ASSERT_EQ(0, free_worker(self->d.fd, 0));
	ASSERT_EQ(0, verify_all(self, 64, 1));
}

TEST_F(wk, non_owner_fails_with_eperm)
{
	struct vhost_worker_state s = { 0 };
	int fd = vb_open();

	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, ioctl(fd, VHOST_NEW_WORKER, &s));
	ASSERT_EQ(EPERM, errno);
	close(fd);
}

TEST_F(wk, data_reads_back_with_a_worker_per_queue)
{
	unsigned int id = 0, i;

	for (i = 1; i < NQ; i++) {
		ASSERT_EQ(0, new_worker(self->d.fd, &id));
		ASSERT_EQ(0, attach(self->d.fd, i, id));
	}
	ASSERT_EQ(NQ, count_workers());
	ASSERT_EQ(0, verify_all(self, 256, 2));
}

TEST_F(wk, data_reads_back_with_a_polling_worker_per_queue)
{
	struct vhost_vring_state s = { .num = 200 };
	unsigned int id = 0, i;

	for (i = 0; i < NQ; i++) {
		s.index = i;
		ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s));
		if (!i)
			continue;
		ASSERT_EQ(0, new_worker(self->d.fd, &id));
		ASSERT_EQ(0, attach(self->d.fd, i, id));
	}
	ASSERT_EQ(0, verify_all(self, 256, 3));
}

struct mover {
	int fd;
	unsigned int ids[2];
	bool stop;
	int ret;
};

static void *move_queues(void *arg)
{
	struct mover *m = arg;
	unsigned int k = 0, i;

	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED) && !m->ret) {
		for (i = 0; i < NQ && !m->ret; i++)
			m->ret = attach(m->fd, i, m->ids[(k + i) % 2]);
		k++;
		usleep(500);
	}
	return NULL;
}

TEST_F(wk, queues_moving_between_workers_under_io_lose_nothing)
{
	struct mover m = { .fd = self->d.fd };
	pthread_t t;
	int ret;

	ASSERT_EQ(0, new_worker(self->d.fd, &m.ids[1]));
	pthread_create(&t, NULL, move_queues, &m);
	ret = verify_all(self, 512, 4);
	__atomic_store_n(&m.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	ASSERT_EQ(0, m.ret);
	ASSERT_EQ(0, ret);
}

TEST_F(wk, close_frees_every_worker)
{
	unsigned int id = 0;

	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(0, attach(self->d.fd, 1, id));
	ASSERT_EQ(0, verify_all(self, 16, 5));
	ASSERT_EQ(3, count_workers());
	vb_dev_teardown(&self->d);
	ASSERT_EQ(0, workers_after_exit(0));
}

TEST_F(wk, reset_owner_frees_every_worker)
{
	unsigned int id = 0;

	ASSERT_EQ(0, new_worker(self->d.fd, &id));
	ASSERT_EQ(2, count_workers());
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER, NULL));
	ASSERT_EQ(0, workers_after_exit(0));
}

TEST_HARNESS_MAIN
