/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vhost-blk: in-kernel virtio-blk backend.
 *
 * The device is driven with the standard vhost ioctls of <linux/vhost.h>
 * plus the ones below.  One open file of /dev/vhost-blk is one virtio-blk
 * device with up to VHOST_BLK_MAX_QUEUES virtqueues.  The ioctl numbers
 * are ABI-compatible with the vhost-blk of the Virtuozzo kernel.
 */
#ifndef _UAPI_LINUX_VHOST_BLK_H
#define _UAPI_LINUX_VHOST_BLK_H

#include <linux/types.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>

/* Most virtqueues one device serves (VIRTIO_BLK_F_MQ). */
#define VHOST_BLK_MAX_QUEUES		16
/* Largest virtqueue size accepted by VHOST_SET_VRING_NUM (power of two). */
#define VHOST_BLK_MAX_QUEUE_SIZE	1024
/*
 * Data of one request that the device pins and submits at a time.  Larger
 * requests, up to the disk's size (and below 4 GiB), are served in parts of
 * this size (earlier versions failed them with IOERR).
 */
#define VHOST_BLK_MAX_REQUEST_BYTES	(8U << 20)
/* Most segments in one discard or write-zeroes request. */
#define VHOST_BLK_MAX_DISCARD_SEG	16
/*
 * Largest busy-poll budget VHOST_SET_VRING_BUSYLOOP_TIMEOUT accepts, in
 * microseconds; larger values fail with EINVAL.
 */
#define VHOST_BLK_MAX_BUSYLOOP_US	100000

/*
 * Several workers per device: the multi-worker uapi of Linux 6.5, for the
 * older <linux/vhost.h> of a distribution.  Numbers and layouts are
 * upstream's.
 */
#ifndef VHOST_NEW_WORKER
struct vhost_worker_state {
	/*
	 * VHOST_NEW_WORKER: out, the new worker's id.  VHOST_FREE_WORKER:
	 * in, the id of the worker to free.
	 */
	unsigned int worker_id;
};

struct vhost_vring_worker {
	unsigned int index;		/* vring index */
	unsigned int worker_id;		/* from VHOST_NEW_WORKER */
};

/* Create a worker in the caller's cgroups and the owner's mm. */
#define VHOST_NEW_WORKER _IOR(VHOST_VIRTIO, 0x8, struct vhost_worker_state)
/* Free a worker no virtqueue is attached to. */
#define VHOST_FREE_WORKER _IOW(VHOST_VIRTIO, 0x9, struct vhost_worker_state)
/* Make a worker serve a virtqueue, replacing its current one. */
#define VHOST_ATTACH_VRING_WORKER _IOW(VHOST_VIRTIO, 0x15,		\
				       struct vhost_vring_worker)
/* Return the id of a virtqueue's worker. */
#define VHOST_GET_VRING_WORKER _IOWR(VHOST_VIRTIO, 0x16,		\
				     struct vhost_vring_worker)
#endif

/*
 * Attach (or, with fd == -1, detach) the backend serving every virtqueue
 * of the device: an open block device or regular file.  An fd opened
 * without write access makes the device read-only.  The call waits for
 * all in-flight requests of the old backend first.  index is reserved:
 * the backend always serves all queues, and index is ignored.
 */
#define VHOST_BLK_SET_BACKEND	_IOW(VHOST_VIRTIO, 0xFF, struct vhost_vring_file)

/*
 * Set the serial string returned by VIRTIO_BLK_T_GET_ID: exactly
 * VIRTIO_BLK_ID_BYTES bytes, NUL-padded when shorter.
 */
#define VHOST_BLK_SET_SERIAL	_IOW(VHOST_VIRTIO, 0xFE, char[VIRTIO_BLK_ID_BYTES])

/*
 * Set or get the write-cache mode: 1 writeback, 0 writethrough (every
 * completed write is stable).  VHOST_SET_FEATURES resets it to writeback
 * exactly when VIRTIO_BLK_F_FLUSH is acked; with VIRTIO_BLK_F_CONFIG_WCE
 * the VMM sets what the guest writes to the writeback field of the
 * configuration space.  Writeback needs VIRTIO_BLK_F_FLUSH.
 */
#define VHOST_BLK_SET_WRITEBACK	_IOW(VHOST_VIRTIO, 0xFD, __u32)
#define VHOST_BLK_GET_WRITEBACK	_IOR(VHOST_VIRTIO, 0xFC, __u32)

/*
 * Tell the device the seg_max of the configuration space, 1 to
 * VHOST_BLK_MAX_SEG_MAX: a request with more than seg_max + 2 descriptors
 * then fails with VIRTIO_BLK_S_IOERR.  0, the default, sets no limit
 * beyond the ring's own.
 */
#define VHOST_BLK_SET_SEG_MAX	_IOW(VHOST_VIRTIO, 0xFB, __u32)
/* Largest seg_max: an indirect table of 1024 entries, header and status. */
#define VHOST_BLK_MAX_SEG_MAX	1022

/*
 * Tell the device the discard and write-zeroes limits of the configuration
 * space (virtio 1.2, 5.2.4): the most sectors of one segment and the most
 * segments of one request, for each.  A request past a limit then fails
 * with VIRTIO_BLK_S_IOERR before any of it is done.  0 sets no limit
 * beyond the device's own (VHOST_BLK_MAX_DISCARD_SEG segments, and a
 * segment inside the disk); a segment count above VHOST_BLK_MAX_DISCARD_SEG
 * fails with EINVAL.  VHOST_RESET_OWNER returns to 0.
 */
struct vhost_blk_limits {
	__u32 max_discard_sectors;
	__u32 max_discard_seg;
	__u32 max_write_zeroes_sectors;
	__u32 max_write_zeroes_seg;
};

#define VHOST_BLK_SET_LIMITS	_IOW(VHOST_VIRTIO, 0xFA, struct vhost_blk_limits)

#endif /* _UAPI_LINUX_VHOST_BLK_H */
