// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk statistics: /proc/<pid>/fdinfo/<fd> of /dev/vhost-blk shows
 * the device, its backend and, per queue, its state and counters.  A known
 * workload must give exactly the counts it implies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define DISK_SECTORS	(DISK_SIZE / VB_SECTOR)

FIXTURE(fdinfo) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf;
	char text[VB_FDINFO_MAX];
};

FIXTURE_SETUP(fdinfo)
{
	struct vb_opts o = { .num = 128 };
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
	self->buf = vb_alloc_data(&self->d.mem, 65536);
	ASSERT_NE(0, self->buf);
}

FIXTURE_TEARDOWN(fdinfo)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

TEST_F(fdinfo, shows_device_backend_and_owner)
{
	char val[256], comm[64], path[64];
	long long worker;

	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_LT(0, vb_fdinfo_get_num(self->text, "vhost_blk_id"));
	ASSERT_EQ(getpid(), vb_fdinfo_get_num(self->text, "owner_pid"));
	ASSERT_EQ(self->d.features, vb_fdinfo_get_num(self->text, "features"));
	ASSERT_EQ(self->d.mem.nregions, vb_fdinfo_get_num(self->text, "mem_regions"));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "backend", val, sizeof(val)));
	ASSERT_STREQ(self->b.path, val);
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "backend_type", val,
				      sizeof(val)));
	ASSERT_STREQ("file", val);
	ASSERT_EQ(0, vb_fdinfo_get_num(self->text, "read_only"));
	/* The worker is the kthread the owner's I/O runs on. */
	worker = vb_fdinfo_get_num(self->text, "worker_pid");
	ASSERT_LT(0, worker);
	snprintf(path, sizeof(path), "/proc/%lld/comm", worker);
	ASSERT_LT(0, vb_read_text(path, comm, sizeof(comm)));
	ASSERT_EQ(0, strncmp(comm, "vhost-blk-", 10)) TH_LOG("comm %s", comm);
}

TEST_F(fdinfo, queue_never_set_up_is_not_shown)
{
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_EQ(-1, vb_fdinfo_get_num(self->text, "vq1.size"));
	ASSERT_EQ(128, vb_fdinfo_get_num(self->text, "vq0.size"));
}

TEST_F(fdinfo, counters_match_a_known_workload)
{
	struct vb_vq *vq = self->vq;
	uint32_t ul;
	long long v;
	int i;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(vq, VIRTIO_BLK_T_OUT, 8 * i, self->buf, 4096,
				0, &ul));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK,
			  vb_io(vq, VIRTIO_BLK_T_IN, 16 * i, self->buf, 8192,
				VB_L_INDIRECT, &ul));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0,
					 &ul));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(vq, VIRTIO_BLK_T_GET_ID, 0,
					 self->buf, VIRTIO_BLK_ID_BYTES, 0,
					 &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_io(vq, VIRTIO_BLK_T_IN, DISK_SECTORS, self->buf, 4096, 0,
			&ul));
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP, vb_io(vq, 0x55, 0, self->buf, 512, 0,
					     &ul));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  vb_discard_wz(vq, VIRTIO_BLK_T_DISCARD, 64, 8, 0, &ul));

	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_EQ(3, vb_fdinfo_get_num(self->text, "vq0.reqs_out"));
	ASSERT_EQ(3 * 4096, vb_fdinfo_get_num(self->text, "vq0.bytes_out"));
	/* The read past the end counts, its bytes do not. */
	ASSERT_EQ(3, vb_fdinfo_get_num(self->text, "vq0.reqs_in"));
	ASSERT_EQ(2 * 8192, vb_fdinfo_get_num(self->text, "vq0.bytes_in"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.reqs_flush"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.reqs_get_id"));
	ASSERT_EQ(VIRTIO_BLK_ID_BYTES,
		  vb_fdinfo_get_num(self->text, "vq0.bytes_get_id"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.reqs_discard"));
	ASSERT_EQ(8 * VB_SECTOR, vb_fdinfo_get_num(self->text, "vq0.bytes_discard"));
	ASSERT_EQ(0, vb_fdinfo_get_num(self->text, "vq0.reqs_write_zeroes"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.reqs_other"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.ioerr"));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "vq0.unsupp"));
	/* Every vb_io() kicked once; each got its interrupt. */
	ASSERT_EQ(10, vb_fdinfo_get_num(self->text, "vq0.kicks"));
	v = vb_fdinfo_get_num(self->text, "vq0.signals");
	ASSERT_LE(1, v);
	ASSERT_GE(10, v);
	/* A page-cache file: reads, writes, flush and discard block. */
	ASSERT_EQ(7, vb_fdinfo_get_num(self->text, "vq0.punted"));
	ASSERT_EQ(10, vb_fdinfo_get_num(self->text, "vq0.last_avail_idx"));
	ASSERT_EQ(10, vb_fdinfo_get_num(self->text, "vq0.last_used_idx"));
	ASSERT_EQ(0, vb_fdinfo_get_num(self->text, "vq0.inflight"));
}

TEST_F(fdinfo, running_stopped_broken_states_are_shown)
{
	struct vb_vq *vq = self->vq;
	char val[128];
	unsigned int base;

	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.state", val, sizeof(val)));
	ASSERT_STREQ("running", val);
	ASSERT_EQ(NULL, vb_fdinfo_get(self->text, "vq0.broken_reason", val,
				      sizeof(val)));

	/* A head out of range breaks the ring, and says why. */
	vb_vq_publish(vq, vq->num);
	vb_vq_kick(vq);
	ASSERT_EQ(1, vb_wait_fd(vq->err, VB_TIMEOUT_MS));
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.state", val, sizeof(val)));
	ASSERT_STREQ("broken", val);
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.broken_reason", val,
				      sizeof(val)));
	ASSERT_NE(NULL, strstr(val, "out of range")) TH_LOG("reason: %s", val);

	/* Set up again, it runs; GET_VRING_BASE stops it. */
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(0, vb_vq_init_ring(&self->d, vq));
	ASSERT_EQ(0, vb_vq_start(&self->d, vq, 0));
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.state", val, sizeof(val)));
	ASSERT_STREQ("running", val);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.state", val, sizeof(val)));
	ASSERT_STREQ("stopped", val);
}

TEST_F(fdinfo, detached_backend_shows_none)
{
	char val[256];

	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "backend", val, sizeof(val)));
	ASSERT_STREQ("none", val);
	ASSERT_EQ(NULL, vb_fdinfo_get(self->text, "backend_type", val,
				      sizeof(val)));
	ASSERT_NE(NULL, vb_fdinfo_get(self->text, "vq0.state", val, sizeof(val)));
	ASSERT_STREQ("setup", val);
}

TEST_F(fdinfo, read_only_backend_is_shown)
{
	int fd = open(self->b.path, O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, vb_set_backend(&self->d, fd));
	close(fd);
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_EQ(1, vb_fdinfo_get_num(self->text, "read_only"));
}

TEST_F(fdinfo, reset_owner_clears_queues_and_counters)
{
	uint32_t ul;

	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, 0,
					 self->buf, 4096, 0, &ul));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER));
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, self->text, VB_FDINFO_MAX));
	ASSERT_EQ(-1, vb_fdinfo_get_num(self->text, "vq0.reqs_out"));
	ASSERT_EQ(0, vb_fdinfo_get_num(self->text, "owner_pid"));
	ASSERT_EQ(0, vb_fdinfo_get_num(self->text, "worker_pid"));
}

TEST_HARNESS_MAIN
