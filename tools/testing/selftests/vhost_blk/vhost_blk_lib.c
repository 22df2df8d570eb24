// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the vhost_blk selftests.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vhost_blk_lib.h"

bool vhost_blk_loaded(void)
{
	return access(VHOST_BLK_SYSFS_MODULE, F_OK) == 0;
}

int vhost_blk_open(void)
{
	int fd = open(VHOST_BLK_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int vhost_blk_run_in_child(int (*fn)(int fd), int fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(fd));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}
