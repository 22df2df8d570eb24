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

#endif /* _VHOST_BLK_COMPAT_H */
