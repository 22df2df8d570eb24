/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the vhost_blk selftests; vhost_blk_lib.c is linked into
 * every test program.
 */
#ifndef VHOST_BLK_LIB_H
#define VHOST_BLK_LIB_H

#include <stdbool.h>

#define VHOST_BLK_DEV		"/dev/vhost-blk"
#define VHOST_BLK_SYSFS_MODULE	"/sys/module/vhost_blk"

/* Whether vhost_blk.ko is loaded (or built in). */
bool vhost_blk_loaded(void);

/* Open /dev/vhost-blk read-write: a new device.  Returns the fd or -errno. */
int vhost_blk_open(void);

/*
 * Call fn(fd) in a forked child, which has an mm of its own, and return what
 * it returned (0-255), or -1 when the child did not exit normally.
 */
int vhost_blk_run_in_child(int (*fn)(int fd), int fd);

#endif /* VHOST_BLK_LIB_H */
