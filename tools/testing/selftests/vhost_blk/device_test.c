// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vhost-blk: the device node, and who may drive an open file of it.
 *
 * Ownership works as in vhost-net: VHOST_SET_OWNER binds a file to the
 * caller's mm, only once; any other ioctl from another mm, or before
 * VHOST_SET_OWNER, fails with EPERM.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/vhost_blk.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

/* Neither vhost nor vhost-blk defines this one. */
#define VHOST_BLK_TEST_UNKNOWN_IOCTL	_IO(VHOST_VIRTIO, 0xEE)

/*
 * Detaching the backend needs an owner and nothing else, so its errno
 * tells whether the caller may drive the device.
 */
static int detach_backend(int fd)
{
	struct vhost_vring_file backend = { .index = 0, .fd = -1 };

	return ioctl(fd, VHOST_BLK_SET_BACKEND, &backend) ? errno : 0;
}

static int set_owner(int fd)
{
	return ioctl(fd, VHOST_SET_OWNER) ? errno : 0;
}

static int unknown_ioctl(int fd)
{
	return ioctl(fd, VHOST_BLK_TEST_UNKNOWN_IOCTL) ? errno : 0;
}

TEST(device_node_is_char_device_for_root_only)
{
	struct stat st;

	if (!vb_module_loaded())
		SKIP(return, "vhost_blk is not loaded");
	ASSERT_EQ(0, stat(VB_DEV_PATH, &st))
		TH_LOG("%s: %s", VB_DEV_PATH, strerror(errno));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
}

TEST(open_and_close_succeed)
{
	int fd;

	if (!vb_module_loaded())
		SKIP(return, "vhost_blk is not loaded");
	fd = vb_open();
	ASSERT_LE(0, fd) TH_LOG("open: %s", strerror(-fd));
	EXPECT_EQ(0, close(fd));
}

TEST(each_open_file_is_a_separate_device)
{
	int fd1, fd2;

	if (!vb_module_loaded())
		SKIP(return, "vhost_blk is not loaded");
	fd1 = vb_open();
	ASSERT_LE(0, fd1);
	fd2 = vb_open();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, set_owner(fd1));
	EXPECT_EQ(0, set_owner(fd2));
	close(fd2);
	close(fd1);
}

FIXTURE(vhost_blk) {
	int fd;
};

FIXTURE_SETUP(vhost_blk)
{
	self->fd = -1;
	if (!vb_module_loaded())
		SKIP(return, "vhost_blk is not loaded");
	self->fd = vb_open();
	ASSERT_LE(0, self->fd) TH_LOG("open: %s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(vhost_blk)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(vhost_blk, set_owner_succeeds)
{
	EXPECT_EQ(0, set_owner(self->fd));
}

TEST_F(vhost_blk, set_owner_twice_fails_with_ebusy)
{
	ASSERT_EQ(0, set_owner(self->fd));
	EXPECT_EQ(EBUSY, set_owner(self->fd));
}

TEST_F(vhost_blk, ioctl_before_set_owner_fails_with_eperm)
{
	EXPECT_EQ(EPERM, detach_backend(self->fd));
}

TEST_F(vhost_blk, ioctl_from_forked_child_fails_with_eperm)
{
	ASSERT_EQ(0, set_owner(self->fd));
	EXPECT_EQ(EPERM, vb_run_in_child(detach_backend, self->fd));
}

TEST_F(vhost_blk, set_owner_from_forked_child_fails_with_ebusy)
{
	ASSERT_EQ(0, set_owner(self->fd));
	EXPECT_EQ(EBUSY, vb_run_in_child(set_owner, self->fd));
}

TEST_F(vhost_blk, unknown_ioctl_fails_with_enotty)
{
	ASSERT_EQ(0, set_owner(self->fd));
	EXPECT_EQ(ENOTTY, unknown_ioctl(self->fd));
}

TEST_F(vhost_blk, close_after_set_owner_succeeds)
{
	ASSERT_EQ(0, set_owner(self->fd));
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
}

TEST_HARNESS_MAIN
