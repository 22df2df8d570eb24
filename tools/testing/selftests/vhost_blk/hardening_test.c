// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk hardening: what the VMM may attach.  Backends the module must
 * refuse (O_APPEND).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define LEN		(16 * 1024)
#define TRACE_MAX	(1 << 20)

/* Write the pattern of (@sector, @seed) at @sector through the device. */
static int dev_write(struct vb_vq *vq, uint64_t gpa, uint64_t sector,
		     uint32_t len, uint32_t seed)
{
	uint8_t *p = malloc(len);

	if (!p)
		return -ENOMEM;
	vb_pattern(p, len, sector, seed);
	vb_write(&vq->dev->mem, gpa, p, len);
	free(p);
	return vb_io(vq, VIRTIO_BLK_T_OUT, sector, gpa, len, 0, NULL);
}

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
	ASSERT_EQ(VIRTIO_BLK_S_OK, dev_write(&self->d.vq[0], buf, 8, LEN, 3));
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

TEST_HARNESS_MAIN
