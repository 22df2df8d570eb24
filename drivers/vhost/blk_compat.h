/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vhost-blk: kernel API differences between the kernels we build against.
 *
 * Every version check of the driver lives here, each next to the upstream
 * change that made it necessary, so that blk.c reads like in-tree code.
 */
#ifndef _VHOST_BLK_COMPAT_H
#define _VHOST_BLK_COMPAT_H

#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/version.h>

/* v6.8, "eventfd: simplify eventfd_signal()": the count argument is gone. */
static inline void vhost_blk_eventfd_signal(struct eventfd_ctx *ctx)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}

/*
 * v6.8, 269aed7014b3 ("fs: move file_start_write() into
 * vfs_iter_write()"): before it the caller of vfs_iter_write() took the
 * freeze protection (loop did), and without it a write goes into a
 * frozen file system.
 */
static inline void vhost_blk_iter_write_start(struct file *file)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
	file_start_write(file);
#endif
}

static inline void vhost_blk_iter_write_end(struct file *file)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 8, 0)
	file_end_write(file);
#endif
}

#endif /* _VHOST_BLK_COMPAT_H */
