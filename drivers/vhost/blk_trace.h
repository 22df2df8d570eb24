/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vhost-blk tracepoints: events/vhost_blk/ in tracefs.
 *
 * Every event names the device by the id that its fdinfo shows, and a
 * queue by its index.  Nothing here reaches the kernel log: a guest can
 * make a queue break as often as it likes, and the trace is where that
 * shows, not dmesg.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vhost_blk

#if !defined(_VHOST_BLK_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VHOST_BLK_TRACE_H

#include <linux/tracepoint.h>

#include "blk.h"

#define vhost_blk_show_type(type)					\
	__print_symbolic(type,						\
			 { VIRTIO_BLK_T_IN, "IN" },			\
			 { VIRTIO_BLK_T_OUT, "OUT" },			\
			 { VIRTIO_BLK_T_FLUSH, "FLUSH" },		\
			 { VIRTIO_BLK_T_GET_ID, "GET_ID" },		\
			 { VIRTIO_BLK_T_DISCARD, "DISCARD" },		\
			 { VIRTIO_BLK_T_WRITE_ZEROES, "WRITE_ZEROES" })

#define vhost_blk_show_status(status)					\
	__print_symbolic(status,					\
			 { VIRTIO_BLK_S_OK, "OK" },			\
			 { VIRTIO_BLK_S_IOERR, "IOERR" },		\
			 { VIRTIO_BLK_S_UNSUPP, "UNSUPP" })

/* The worker took a request off the avail ring and read its header. */
TRACE_EVENT(vhost_blk_req_start,
	TP_PROTO(struct vhost_blk_vq *vq, u16 chain, u32 type, u64 sector,
		 u64 bytes),
	TP_ARGS(vq, chain, type, sector, bytes),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned int, vq)
		__field(unsigned short, head)
		__field(unsigned int, type)
		__field(unsigned long long, sector)
		__field(unsigned long long, bytes)
	),
	TP_fast_assign(
		__entry->dev = vq->blk->id;
		__entry->vq = vq->index;
		__entry->head = chain;
		__entry->type = type;
		__entry->sector = sector;
		__entry->bytes = bytes;
	),
	TP_printk("dev=%u vq=%u head=%u type=%s sector=%llu bytes=%llu",
		  __entry->dev, __entry->vq, __entry->head,
		  vhost_blk_show_type(__entry->type), __entry->sector,
		  __entry->bytes)
);

/*
 * The worker put a request on the used ring.  latency_ns runs from
 * vhost_blk_req_start; it is 0 for a request taken before the event was
 * enabled.
 */
TRACE_EVENT(vhost_blk_req_done,
	TP_PROTO(struct vhost_blk_vq *vq, u16 chain, u32 type, u8 status,
		 u64 latency_ns),
	TP_ARGS(vq, chain, type, status, latency_ns),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned int, vq)
		__field(unsigned short, head)
		__field(unsigned int, type)
		__field(unsigned char, status)
		__field(unsigned long long, latency_ns)
	),
	TP_fast_assign(
		__entry->dev = vq->blk->id;
		__entry->vq = vq->index;
		__entry->head = chain;
		__entry->type = type;
		__entry->status = status;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("dev=%u vq=%u head=%u type=%s status=%s latency_ns=%llu",
		  __entry->dev, __entry->vq, __entry->head,
		  vhost_blk_show_type(__entry->type),
		  vhost_blk_show_status(__entry->status), __entry->latency_ns)
);

DECLARE_EVENT_CLASS(vhost_blk_vq_event,
	TP_PROTO(struct vhost_blk_vq *vq),
	TP_ARGS(vq),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned int, vq)
		__field(unsigned short, last_avail_idx)
		__field(unsigned short, last_used_idx)
	),
	TP_fast_assign(
		__entry->dev = vq->blk->id;
		__entry->vq = vq->index;
		__entry->last_avail_idx = vq->last_avail_idx;
		__entry->last_used_idx = vq->last_used_idx;
	),
	TP_printk("dev=%u vq=%u last_avail_idx=%u last_used_idx=%u",
		  __entry->dev, __entry->vq, __entry->last_avail_idx,
		  __entry->last_used_idx)
);

/* The guest kicked a queue (its kick eventfd woke us). */
DEFINE_EVENT(vhost_blk_vq_event, vhost_blk_kick,
	TP_PROTO(struct vhost_blk_vq *vq),
	TP_ARGS(vq)
);

/* The worker signalled a queue's call eventfd. */
DEFINE_EVENT(vhost_blk_vq_event, vhost_blk_signal,
	TP_PROTO(struct vhost_blk_vq *vq),
	TP_ARGS(vq)
);

/* The guest or the VMM broke a queue; the worker serves it no more. */
TRACE_EVENT(vhost_blk_vq_broken,
	TP_PROTO(struct vhost_blk_vq *vq),
	TP_ARGS(vq),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned int, vq)
		__array(char, reason, VHOST_BLK_REASON_LEN)
	),
	TP_fast_assign(
		__entry->dev = vq->blk->id;
		__entry->vq = vq->index;
		memcpy(__entry->reason, vq->broken_reason,
		       VHOST_BLK_REASON_LEN);
	),
	TP_printk("dev=%u vq=%u reason=%s", __entry->dev, __entry->vq,
		  __entry->reason)
);

/*
 * A write to the dirty log faulted: the bits of the guest-physical range
 * [gpa, gpa + len) could not be set.  The request completes regardless;
 * fdinfo counts these in vqN.log_faults.
 */
TRACE_EVENT(vhost_blk_log_fault,
	TP_PROTO(struct vhost_blk_vq *vq, u64 gpa, u64 len, int err),
	TP_ARGS(vq, gpa, len, err),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned int, vq)
		__field(unsigned long long, gpa)
		__field(unsigned long long, len)
		__field(int, err)
	),
	TP_fast_assign(
		__entry->dev = vq->blk->id;
		__entry->vq = vq->index;
		__entry->gpa = gpa;
		__entry->len = len;
		__entry->err = err;
	),
	TP_printk("dev=%u vq=%u gpa=%#llx len=%llu err=%d", __entry->dev,
		  __entry->vq, __entry->gpa, __entry->len, __entry->err)
);

/*
 * A backend was attached (@attach) or detached.  @devt is the block
 * device's, or the file system's for a file; @ino is 0 for a block device.
 */
TRACE_EVENT(vhost_blk_backend,
	TP_PROTO(struct vhost_blk *blk, struct vhost_blk_backend *be,
		 bool attach),
	TP_ARGS(blk, be, attach),
	TP_STRUCT__entry(
		__field(unsigned int, dev)
		__field(unsigned char, attach)
		__field(unsigned char, bdev)
		__field(unsigned char, read_only)
		__field(unsigned int, devt)
		__field(unsigned long, ino)
	),
	TP_fast_assign(
		__entry->dev = blk->id;
		__entry->attach = attach;
		__entry->bdev = !!be->bdev;
		__entry->read_only = be->read_only;
		__entry->devt = be->bdev ? be->bdev->bd_dev :
				file_inode(be->file)->i_sb->s_dev;
		__entry->ino = be->bdev ? 0 : file_inode(be->file)->i_ino;
	),
	TP_printk("dev=%u %s %s %d:%d ino=%lu%s", __entry->dev,
		  __entry->attach ? "attach" : "detach",
		  __entry->bdev ? "bdev" : "file",
		  MAJOR(__entry->devt), MINOR(__entry->devt), __entry->ino,
		  __entry->read_only ? " read-only" : "")
);

#endif /* _VHOST_BLK_TRACE_H */

/* Out of tree, the header is next to us, not in include/trace/events/. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE blk_trace
#include <trace/define_trace.h>
