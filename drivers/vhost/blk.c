// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk: in-kernel virtio-blk backend.
 *
 * A VMM opens /dev/vhost-blk, hands it a guest's memory table and the
 * split virtqueues of a virtio-blk device with the vhost ioctls of
 * <linux/vhost.h>, and attaches a block device or a raw image file with
 * VHOST_BLK_SET_BACKEND.  One worker kthread per device then reads the
 * rings in the owner's address space, turns requests into bios (block
 * device) or kiocbs (regular file), and completes them into the used ring.
 *
 * The module implements the public vhost uapi itself instead of linking to
 * the vhost core, so that it builds against a distribution's headers.
 * See Documentation/virt/vhost-blk.rst for the ABI and the design.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/cgroup.h>
#include <linux/eventfd.h>
#include <linux/falloc.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kthread.h>
#include <linux/llist.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_context.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uio.h>
#include <linux/virtio_byteorder.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/workqueue.h>
#include <uapi/linux/vhost_blk.h>

#include "blk_compat.h"

#define VHOST_BLK_VERSION	"0.1.0"

/*
 * Requests taken from one queue before the worker moves on to the next:
 * a busy queue must not starve the others of the same device.
 */
#define VHOST_BLK_WEIGHT	256

/*
 * Memory regions in one table.  QEMU uses a handful; the limit bounds the
 * allocation a VMM can make us do and the cost of a lookup.
 */
#define VHOST_BLK_MAX_MEM_REGIONS	64

/*
 * Entries of one indirect descriptor table.  Linux guests use at most
 * seg_max + 2; the bound keeps a hostile table from making us walk 256K
 * entries per request.
 */
#define VHOST_BLK_MAX_INDIRECT	1024

/*
 * Guest memory segments of one request after translation: a descriptor
 * may map to several segments where it spans memory regions.
 */
#define VHOST_BLK_MAX_SEGS	2048

/* Pages described inline in a request; larger requests allocate. */
#define VHOST_BLK_INLINE_PAGES	8

#define VHOST_BLK_SECTOR_SHIFT	9
#define VHOST_BLK_SECTOR_SIZE	BIT(VHOST_BLK_SECTOR_SHIFT)

/* The transport and device features this backend serves. */
#define VHOST_BLK_FEATURES					\
	(BIT_ULL(VIRTIO_F_VERSION_1) |				\
	 BIT_ULL(VIRTIO_F_ANY_LAYOUT) |				\
	 BIT_ULL(VIRTIO_F_NOTIFY_ON_EMPTY) |			\
	 BIT_ULL(VIRTIO_RING_F_INDIRECT_DESC) |			\
	 BIT_ULL(VIRTIO_RING_F_EVENT_IDX) |			\
	 BIT_ULL(VIRTIO_BLK_F_SIZE_MAX) |			\
	 BIT_ULL(VIRTIO_BLK_F_SEG_MAX) |			\
	 BIT_ULL(VIRTIO_BLK_F_GEOMETRY) |			\
	 BIT_ULL(VIRTIO_BLK_F_RO) |				\
	 BIT_ULL(VIRTIO_BLK_F_BLK_SIZE) |			\
	 BIT_ULL(VIRTIO_BLK_F_FLUSH) |				\
	 BIT_ULL(VIRTIO_BLK_F_TOPOLOGY) |			\
	 BIT_ULL(VIRTIO_BLK_F_MQ) |				\
	 BIT_ULL(VIRTIO_BLK_F_DISCARD) |			\
	 BIT_ULL(VIRTIO_BLK_F_WRITE_ZEROES))

/* Bits of vhost_blk.pending: a queue was kicked, or has completions. */
#define VHOST_BLK_KICK_BIT(i)	(i)
#define VHOST_BLK_DONE_BIT(i)	(VHOST_BLK_MAX_QUEUES + (i))

/*
 * Workqueue for requests that may block: buffered file I/O, fsync,
 * fallocate, and discard or write-zeroes of a block device.
 */
static struct workqueue_struct *vhost_blk_wq;

struct vhost_blk_region {
	u64 gpa;		/* first guest-physical address */
	u64 last;		/* last guest-physical address */
	u64 uaddr;		/* owner's address of @gpa */
};

/* An immutable memory table, sorted by guest-physical address. */
struct vhost_blk_mem {
	unsigned int nregions;
	struct vhost_blk_region regions[];
};

/*
 * What a request is served from.  Immutable once attached; queues hold a
 * pointer only while the device holds the reference, and the device drains
 * every queue before it drops the backend.
 */
struct vhost_blk_backend {
	struct file *file;
	struct block_device *bdev;	/* NULL for a regular file */
	bool read_only;
	bool can_nowait;		/* async kiocbs with IOCB_NOWAIT */
};

/* One segment of guest memory in the owner's address space. */
struct vhost_blk_seg {
	void __user *addr;
	u32 len;
};

struct vhost_blk_vq;

/*
 * A request lives from the moment the worker takes its head from the avail
 * ring until the worker puts it on the used ring.  In between it belongs to
 * the backend (bio, kiocb or work item); the backend hands it back with
 * vhost_blk_req_put(), from any context, and only the worker frees it.
 */
struct vhost_blk_req {
	struct llist_node node;		/* on vq->done once completed */
	struct vhost_blk_vq *vq;
	struct vhost_blk_backend *be;
	u16 head;
	u32 type;
	u8 status;
	u8 __user *status_addr;
	u64 sector;
	u32 len;			/* data bytes */
	unsigned int nr_pages;
	struct page **pages;
	struct bio_vec *bvec;
	atomic_t ref;			/* backend operations, + 1 while building */
	struct virtio_blk_discard_write_zeroes *segs;
	unsigned int nr_segs;
	struct kiocb iocb;
	struct work_struct work;
	struct page *inline_pages[VHOST_BLK_INLINE_PAGES];
	struct bio_vec inline_bvec[VHOST_BLK_INLINE_PAGES];
};

struct vhost_blk_poll {
	wait_queue_entry_t wait;
	poll_table table;
	wait_queue_head_t *wqh;
	struct vhost_blk_vq *vq;
};

/*
 * One virtqueue.  Everything below @mutex is protected by it, except where
 * a field says otherwise.  The worker holds it while it serves the queue;
 * ioctls take it (inside vhost_blk.mutex) to change the queue.
 */
struct vhost_blk_vq {
	struct vhost_blk *blk;
	unsigned int index;
	struct mutex mutex;		/* see above */

	/* Ring layout, as set by VHOST_SET_VRING_NUM/ADDR/BASE. */
	unsigned int num;
	struct vring_desc __user *desc;
	struct vring_avail __user *avail;
	struct vring_used __user *used;
	u16 last_avail_idx;		/* next avail entry to serve */
	u16 avail_idx;			/* last avail->idx read */
	u16 last_used_idx;		/* next used entry to fill */
	u16 signalled_used;		/* used index at the last signal */
	bool signalled_used_valid;
	bool initialized;		/* last_used_idx read from the ring */

	u64 features;
	struct vhost_blk_backend *be;	/* NULL: not serving */
	struct vhost_blk_mem *mem;	/* the device's table */
	char serial[VIRTIO_BLK_ID_BYTES];

	struct file *kick;
	struct vhost_blk_poll poll;
	struct eventfd_ctx *call_ctx;
	struct eventfd_ctx *error_ctx;

	/*
	 * stopped: VHOST_GET_VRING_BASE took the queue's state; broken: the
	 * guest broke the ring.  Either keeps the worker from taking new
	 * requests until VHOST_SET_VRING_KICK.  (A backend switch instead
	 * clears @be for as long as it drains.)
	 */
	bool stopped;
	bool broken;

	unsigned int inflight;		/* requests taken, not yet used */
	unsigned int used_pending;	/* used entries not yet published */
	struct llist_head done;		/* lock-free: completed requests */

	struct vhost_blk_seg *segs;	/* scratch for one chain */
	unsigned int nr_segs;
	unsigned int nr_readable;
};

/*
 * The device: one per open file.  @mutex serialises the ioctls and
 * protects the fields below it; it nests outside every vq->mutex, and
 * only a holder of it takes more than one queue mutex at a time.
 */
struct vhost_blk {
	struct mutex mutex;		/* see above */
	struct mm_struct *mm;		/* the owner's, with a user reference */
	struct task_struct *worker;
	struct vhost_blk_backend *be;
	struct vhost_blk_mem *mem;	/* also under every vq->mutex */
	u64 features;

	unsigned long pending;		/* atomic bitops: VHOST_BLK_*_BIT */
	wait_queue_head_t drain_wq;	/* inflight of a queue dropped to 0 */
	struct vhost_blk_vq vqs[VHOST_BLK_MAX_QUEUES];
};

static bool vhost_blk_has_feature(struct vhost_blk_vq *vq, unsigned int bit)
{
	return vq->features & BIT_ULL(bit);
}

static bool vhost_blk_is_le(struct vhost_blk_vq *vq)
{
	return vhost_blk_has_feature(vq, VIRTIO_F_VERSION_1) ||
	       virtio_legacy_is_little_endian();
}

static u16 vhost_blk16_to_cpu(struct vhost_blk_vq *vq, __virtio16 val)
{
	return __virtio16_to_cpu(vhost_blk_is_le(vq), val);
}

static __virtio16 cpu_to_vhost_blk16(struct vhost_blk_vq *vq, u16 val)
{
	return __cpu_to_virtio16(vhost_blk_is_le(vq), val);
}

static u32 vhost_blk32_to_cpu(struct vhost_blk_vq *vq, __virtio32 val)
{
	return __virtio32_to_cpu(vhost_blk_is_le(vq), val);
}

static __virtio32 cpu_to_vhost_blk32(struct vhost_blk_vq *vq, u32 val)
{
	return __cpu_to_virtio32(vhost_blk_is_le(vq), val);
}

static u64 vhost_blk64_to_cpu(struct vhost_blk_vq *vq, __virtio64 val)
{
	return __virtio64_to_cpu(vhost_blk_is_le(vq), val);
}

/* Wake the worker for @bit; callable from any context. */
static void vhost_blk_wake(struct vhost_blk *blk, unsigned int bit)
{
	set_bit(bit, &blk->pending);
	wake_up_process(blk->worker);
}

/*
 * The guest (or the VMM) broke the ring: say so on the queue's error
 * eventfd once, and serve the queue no more until it is set up again.
 * Rate-limited debug only: a guest must not be able to flood the log.
 */
#define vq_err(vq, fmt, ...) do {					\
		struct vhost_blk_vq *__vq = (vq);			\
									\
		pr_debug_ratelimited("vq %u: " fmt, __vq->index,	\
				     ##__VA_ARGS__);			\
		vhost_blk_vq_break(__vq);				\
	} while (0)

static void vhost_blk_vq_break(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->mutex);
	if (vq->broken)
		return;
	vq->broken = true;
	if (vq->error_ctx)
		vhost_blk_eventfd_signal(vq->error_ctx);
}

static bool vhost_blk_vq_running(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->mutex);
	return vq->be && vq->mem && vq->num && vq->desc && vq->kick &&
	       !vq->stopped && !vq->broken;
}

/* Guest memory ----------------------------------------------------------- */

static const struct vhost_blk_region *
vhost_blk_find_region(const struct vhost_blk_mem *mem, u64 gpa)
{
	unsigned int lo = 0, hi = mem->nregions;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct vhost_blk_region *r = &mem->regions[mid];

		if (gpa < r->gpa)
			hi = mid;
		else if (gpa > r->last)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

/*
 * The owner's address of @gpa, in @addr, and how many of the @len bytes
 * from there lie in the same region; -EFAULT outside the table.
 */
static s64 vhost_blk_gpa_chunk(const struct vhost_blk_mem *mem, u64 gpa,
			       u32 len, void __user **addr)
{
	const struct vhost_blk_region *r = vhost_blk_find_region(mem, gpa);

	if (!r)
		return -EFAULT;
	*addr = u64_to_user_ptr(r->uaddr + (gpa - r->gpa));
	return min_t(u64, len, r->last - gpa + 1);
}

/*
 * Translate [gpa, gpa + len) into segments of the owner's address space,
 * appending to vq->segs.  A range may span adjacent regions; a range that
 * leaves the table, wraps around, or needs more segments than we keep is
 * an error.
 */
static int vhost_blk_translate(struct vhost_blk_vq *vq, u64 gpa, u32 len)
{
	if (len && gpa + len - 1 < gpa)
		return -EOVERFLOW;
	while (len) {
		struct vhost_blk_seg *seg = &vq->segs[vq->nr_segs];
		s64 chunk;

		if (vq->nr_segs >= VHOST_BLK_MAX_SEGS)
			return -E2BIG;
		chunk = vhost_blk_gpa_chunk(vq->mem, gpa, len, &seg->addr);
		if (chunk < 0)
			return chunk;
		seg->len = chunk;
		vq->nr_segs++;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/* Copy @len bytes of guest memory at @gpa, which may span regions. */
static int vhost_blk_read_gpa(struct vhost_blk_vq *vq, void *buf, u64 gpa,
			      u32 len)
{
	if (gpa + len - 1 < gpa)
		return -EOVERFLOW;
	while (len) {
		void __user *addr;
		s64 chunk;

		chunk = vhost_blk_gpa_chunk(vq->mem, gpa, len, &addr);
		if (chunk < 0)
			return chunk;
		if (copy_from_user(buf, addr, chunk))
			return -EFAULT;
		buf += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

/*
 * Copy between a kernel buffer and the byte range [@skip, @skip + @len) of
 * the segments @segs[0..@nr).  The caller has checked the range exists.
 */
static int vhost_blk_seg_copy(const struct vhost_blk_seg *segs,
			      unsigned int nr, u64 skip, void *buf, u32 len,
			      bool to_guest)
{
	unsigned int i;

	for (i = 0; i < nr && len; i++) {
		u32 chunk;
		void __user *addr;

		if (skip >= segs[i].len) {
			skip -= segs[i].len;
			continue;
		}
		addr = segs[i].addr + skip;
		chunk = min_t(u64, len, segs[i].len - skip);
		skip = 0;
		if (to_guest ? copy_to_user(addr, buf, chunk) :
			       copy_from_user(buf, addr, chunk))
			return -EFAULT;
		buf += chunk;
		len -= chunk;
	}
	return len ? -EFAULT : 0;
}

/* Ring access ------------------------------------------------------------ */

static int vhost_blk_vq_init_access(struct vhost_blk_vq *vq)
{
	size_t num = vq->num;
	__virtio16 idx;

	lockdep_assert_held(&vq->mutex);
	if (!access_ok(vq->desc, num * sizeof(*vq->desc)) ||
	    !access_ok(vq->avail, struct_size(vq->avail, ring, num) +
			sizeof(__virtio16)) ||
	    !access_ok(vq->used, struct_size(vq->used, ring, num) +
			sizeof(__virtio16)) ||
	    get_user(idx, &vq->used->idx)) {
		vq_err(vq, "rings not accessible\n");
		return -EFAULT;
	}
	vq->last_used_idx = vhost_blk16_to_cpu(vq, idx);
	vq->signalled_used_valid = false;
	vq->used_pending = 0;
	vq->initialized = true;
	return 0;
}

/* Stop the guest from kicking us while the worker is busy anyway. */
static void vhost_blk_disable_notify(struct vhost_blk_vq *vq)
{
	if (vhost_blk_has_feature(vq, VIRTIO_RING_F_EVENT_IDX))
		return;
	if (put_user(cpu_to_vhost_blk16(vq, VRING_USED_F_NO_NOTIFY),
		     &vq->used->flags))
		vq_err(vq, "cannot write used flags\n");
}

/*
 * Ask for kicks again.  Returns true if buffers sneaked in before the
 * guest could see the request, in which case the caller goes on serving.
 */
static bool vhost_blk_enable_notify(struct vhost_blk_vq *vq)
{
	__virtio16 idx;
	int ret;

	if (vhost_blk_has_feature(vq, VIRTIO_RING_F_EVENT_IDX))
		ret = put_user(cpu_to_vhost_blk16(vq, vq->avail_idx),
			       (__virtio16 __user *)&vq->used->ring[vq->num]);
	else
		ret = put_user(0, &vq->used->flags);
	if (ret) {
		vq_err(vq, "cannot write used flags or avail event\n");
		return false;
	}
	/* Pairs with the barrier the guest puts between avail->idx and kick. */
	smp_mb();
	if (get_user(idx, &vq->avail->idx)) {
		vq_err(vq, "cannot read avail index\n");
		return false;
	}
	return vhost_blk16_to_cpu(vq, idx) != vq->avail_idx;
}

/*
 * Take the next head from the avail ring.  Returns it, -EAGAIN when the
 * ring is empty, or another error after breaking the queue.
 */
static int vhost_blk_next_head(struct vhost_blk_vq *vq)
{
	__virtio16 idx, head;
	u16 h;

	if (vq->avail_idx == vq->last_avail_idx) {
		if (get_user(idx, &vq->avail->idx)) {
			vq_err(vq, "cannot read avail index\n");
			return -EFAULT;
		}
		vq->avail_idx = vhost_blk16_to_cpu(vq, idx);
		if ((u16)(vq->avail_idx - vq->last_avail_idx) > vq->num) {
			vq_err(vq, "avail index moved from %u to %u\n",
			       vq->last_avail_idx, vq->avail_idx);
			return -EINVAL;
		}
		if (vq->avail_idx == vq->last_avail_idx)
			return -EAGAIN;
		/* Read the ring entries only after the index: pairs with the
		 * guest's write barrier between filling an entry and idx.
		 */
		smp_rmb();
	}
	if (get_user(head, &vq->avail->ring[vq->last_avail_idx &
					    (vq->num - 1)])) {
		vq_err(vq, "cannot read avail ring\n");
		return -EFAULT;
	}
	h = vhost_blk16_to_cpu(vq, head);
	if (h >= vq->num) {
		vq_err(vq, "head %u out of range\n", h);
		return -EINVAL;
	}
	return h;
}

static int vhost_blk_add_seg(struct vhost_blk_vq *vq, struct vring_desc *d)
{
	u16 flags = vhost_blk16_to_cpu(vq, d->flags);
	bool write = flags & VRING_DESC_F_WRITE;
	int ret;

	if (!write && vq->nr_segs != vq->nr_readable) {
		vq_err(vq, "readable descriptor after a writable one\n");
		return -EINVAL;
	}
	ret = vhost_blk_translate(vq, vhost_blk64_to_cpu(vq, d->addr),
				  vhost_blk32_to_cpu(vq, d->len));
	if (ret) {
		vq_err(vq, "bad descriptor address %#llx len %u: %d\n",
		       vhost_blk64_to_cpu(vq, d->addr),
		       vhost_blk32_to_cpu(vq, d->len), ret);
		return ret;
	}
	if (!write)
		vq->nr_readable = vq->nr_segs;
	return 0;
}

static int vhost_blk_parse_indirect(struct vhost_blk_vq *vq,
				    struct vring_desc *ind)
{
	u64 table = vhost_blk64_to_cpu(vq, ind->addr);
	u32 len = vhost_blk32_to_cpu(vq, ind->len);
	unsigned int n = len / sizeof(struct vring_desc);
	unsigned int i = 0, count = 0;
	struct vring_desc d;
	u16 flags;
	int ret;

	if (!vhost_blk_has_feature(vq, VIRTIO_RING_F_INDIRECT_DESC)) {
		vq_err(vq, "indirect descriptor not negotiated\n");
		return -EINVAL;
	}
	if (!len || len % sizeof(struct vring_desc) ||
	    n > VHOST_BLK_MAX_INDIRECT) {
		vq_err(vq, "bad indirect table length %u\n", len);
		return -EINVAL;
	}
	do {
		if (++count > n) {
			vq_err(vq, "loop in indirect table\n");
			return -ELOOP;
		}
		ret = vhost_blk_read_gpa(vq, &d, table + i * sizeof(d),
					 sizeof(d));
		if (ret) {
			vq_err(vq, "cannot read indirect descriptor: %d\n",
			       ret);
			return ret;
		}
		flags = vhost_blk16_to_cpu(vq, d.flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			vq_err(vq, "nested indirect descriptor\n");
			return -EINVAL;
		}
		ret = vhost_blk_add_seg(vq, &d);
		if (ret)
			return ret;
		i = vhost_blk16_to_cpu(vq, d.next);
		if ((flags & VRING_DESC_F_NEXT) && i >= n) {
			vq_err(vq, "indirect next %u out of range\n", i);
			return -EINVAL;
		}
	} while (flags & VRING_DESC_F_NEXT);
	return 0;
}

/*
 * Walk the chain at @head into vq->segs: readable segments first, then
 * writable ones.  Any error breaks the queue.
 */
static int vhost_blk_parse_chain(struct vhost_blk_vq *vq, u16 head)
{
	unsigned int i = head, count = 0;
	struct vring_desc d;
	u16 flags;
	int ret;

	vq->nr_segs = 0;
	vq->nr_readable = 0;
	do {
		if (++count > vq->num) {
			vq_err(vq, "descriptor loop or chain too long\n");
			return -ELOOP;
		}
		if (copy_from_user(&d, vq->desc + i, sizeof(d))) {
			vq_err(vq, "cannot read descriptor %u\n", i);
			return -EFAULT;
		}
		flags = vhost_blk16_to_cpu(vq, d.flags);
		if (flags & VRING_DESC_F_INDIRECT) {
			if (flags & VRING_DESC_F_NEXT) {
				vq_err(vq, "indirect descriptor with next\n");
				return -EINVAL;
			}
			ret = vhost_blk_parse_indirect(vq, &d);
		} else {
			ret = vhost_blk_add_seg(vq, &d);
		}
		if (ret)
			return ret;
		i = vhost_blk16_to_cpu(vq, d.next);
		if ((flags & VRING_DESC_F_NEXT) && i >= vq->num) {
			vq_err(vq, "next %u out of range\n", i);
			return -EINVAL;
		}
	} while (flags & VRING_DESC_F_NEXT);

	if (vq->nr_segs == vq->nr_readable) {
		vq_err(vq, "request without a status byte\n");
		return -EINVAL;
	}
	return 0;
}

/* Put one entry on the used ring; published by vhost_blk_flush_used(). */
static void vhost_blk_add_used(struct vhost_blk_vq *vq, u16 head, u32 len)
{
	struct vring_used_elem elem = {
		.id = cpu_to_vhost_blk32(vq, head),
		.len = cpu_to_vhost_blk32(vq, len),
	};
	u16 idx = vq->last_used_idx & (vq->num - 1);

	/*
	 * An entry we could not write must not be covered by the used index
	 * we publish later, should the ring become writable again.
	 */
	if (copy_to_user(&vq->used->ring[idx], &elem, sizeof(elem))) {
		vq_err(vq, "cannot write used ring\n");
		return;
	}
	vq->last_used_idx++;
	vq->used_pending++;
}

static bool vhost_blk_need_signal(struct vhost_blk_vq *vq)
{
	__virtio16 flags, event;
	u16 old, new;
	bool valid;

	/* Pairs with the barrier the guest uses when enabling interrupts. */
	smp_mb();
	if (vhost_blk_has_feature(vq, VIRTIO_F_NOTIFY_ON_EMPTY) &&
	    vq->avail_idx == vq->last_avail_idx)
		return true;
	if (!vhost_blk_has_feature(vq, VIRTIO_RING_F_EVENT_IDX)) {
		if (get_user(flags, &vq->avail->flags))
			return true;
		return !(flags & cpu_to_vhost_blk16(vq,
						     VRING_AVAIL_F_NO_INTERRUPT));
	}
	old = vq->signalled_used;
	valid = vq->signalled_used_valid;
	new = vq->last_used_idx;
	vq->signalled_used = new;
	vq->signalled_used_valid = true;
	if (!valid)
		return true;
	if (get_user(event, &vq->avail->ring[vq->num]))
		return true;
	return vring_need_event(vhost_blk16_to_cpu(vq, event), new, old);
}

/* Publish the used entries added since the last call, and signal once. */
static void vhost_blk_flush_used(struct vhost_blk_vq *vq)
{
	if (!vq->used_pending)
		return;
	vq->used_pending = 0;
	/* The entries must be visible before the index that covers them. */
	smp_wmb();
	if (put_user(cpu_to_vhost_blk16(vq, vq->last_used_idx),
		     &vq->used->idx)) {
		vq_err(vq, "cannot write used index\n");
		return;
	}
	if (vq->call_ctx && vhost_blk_need_signal(vq))
		vhost_blk_eventfd_signal(vq->call_ctx);
}

/* Requests --------------------------------------------------------------- */

/*
 * Drop a reference to @req; the last one hands the finished request back
 * to the worker.  Any context.
 *
 * Once the request is on vq->done the worker may complete it, the queue
 * drain, and the device be torn down before we wake the worker: the RCU
 * read section keeps the device alive until then (vhost_blk_reset() waits
 * for it with synchronize_rcu()).
 */
static void vhost_blk_req_put(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *vq = req->vq;

	if (!atomic_dec_and_test(&req->ref))
		return;
	rcu_read_lock();
	if (llist_add(&req->node, &vq->done))
		vhost_blk_wake(vq->blk, VHOST_BLK_DONE_BIT(vq->index));
	rcu_read_unlock();
}

static void vhost_blk_req_free(struct vhost_blk_req *req)
{
	if (req->pages != req->inline_pages)
		kvfree(req->pages);
	if (req->bvec != req->inline_bvec)
		kvfree(req->bvec);
	kfree(req->segs);
	kfree(req);
}

static void vhost_blk_req_unpin(struct vhost_blk_req *req)
{
	if (req->nr_pages)
		unpin_user_pages_dirty_lock(req->pages, req->nr_pages,
					    req->type == VIRTIO_BLK_T_IN);
	req->nr_pages = 0;
}

/*
 * Pin the guest pages of the byte range [@skip, @skip + req->len) of
 * vq->segs[@first..@last) and describe them in req->bvec.
 */
static int vhost_blk_req_pin(struct vhost_blk_req *req, unsigned int first,
			     unsigned int last, u64 skip)
{
	struct vhost_blk_vq *vq = req->vq;
	unsigned int gup_flags = req->type == VIRTIO_BLK_T_IN ? FOLL_WRITE : 0;
	unsigned int i, n, total = 0;
	u32 left = req->len;

	/* Count first, so that one allocation covers the request. */
	for (i = first, n = skip; i < last && left; i++) {
		unsigned long addr = (unsigned long)vq->segs[i].addr + n;
		u32 len;

		if (n >= vq->segs[i].len) {
			n -= vq->segs[i].len;
			continue;
		}
		len = min_t(u32, left, vq->segs[i].len - n);
		total += DIV_ROUND_UP(offset_in_page(addr) + len, PAGE_SIZE);
		left -= len;
		n = 0;
	}
	if (total > VHOST_BLK_INLINE_PAGES) {
		req->pages = kvmalloc_array(total, sizeof(*req->pages),
					    GFP_KERNEL_ACCOUNT);
		req->bvec = kvmalloc_array(total, sizeof(*req->bvec),
					   GFP_KERNEL_ACCOUNT);
		if (!req->pages || !req->bvec)
			return -ENOMEM;
	}

	left = req->len;
	for (i = first, n = skip; i < last && left; i++) {
		unsigned long addr = (unsigned long)vq->segs[i].addr + n;
		unsigned int off = offset_in_page(addr);
		unsigned int np, p;
		u32 len;
		int got;

		if (n >= vq->segs[i].len) {
			n -= vq->segs[i].len;
			continue;
		}
		len = min_t(u32, left, vq->segs[i].len - n);
		n = 0;
		np = DIV_ROUND_UP(off + len, PAGE_SIZE);
		got = pin_user_pages_fast(addr & PAGE_MASK, np, gup_flags,
					  req->pages + req->nr_pages);
		if (got > 0)
			req->nr_pages += got;
		if (got != np)
			return got < 0 ? got : -EFAULT;
		for (p = 0; p < np; p++) {
			struct bio_vec *bv = &req->bvec[req->nr_pages - np + p];
			u32 bl = min_t(u32, len, PAGE_SIZE - off);

			bv->bv_page = req->pages[req->nr_pages - np + p];
			bv->bv_offset = off;
			bv->bv_len = bl;
			len -= bl;
			left -= bl;
			off = 0;
		}
	}
	return 0;
}

static u8 vhost_blk_errno_status(int err)
{
	if (!err)
		return VIRTIO_BLK_S_OK;
	return err == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* Block device backend ----------------------------------------------------- */

static void vhost_blk_bio_end_io(struct bio *bio)
{
	struct vhost_blk_req *req = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(req->status, bio->bi_status == BLK_STS_NOTSUPP ?
			   VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR);
	bio_put(bio);
	vhost_blk_req_put(req);
}

static void vhost_blk_bio_submit(struct vhost_blk_req *req, struct bio *bio)
{
	bio->bi_private = req;
	bio->bi_end_io = vhost_blk_bio_end_io;
	atomic_inc(&req->ref);
	submit_bio(bio);
}

static void vhost_blk_bdev_rw(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	blk_opf_t opf = req->type == VIRTIO_BLK_T_IN ? REQ_OP_READ :
						       REQ_OP_WRITE;
	struct iov_iter iter;
	struct bio *bio;

	iov_iter_bvec(&iter, req->type == VIRTIO_BLK_T_IN ? READ : WRITE,
		      req->bvec, req->nr_pages, req->len);
	/* The block layer needs what direct I/O on the device needs. */
	if (!bdev_iter_is_aligned(bdev, &iter) ||
	    (req->sector << VHOST_BLK_SECTOR_SHIFT) &
	    (bdev_logical_block_size(bdev) - 1)) {
		req->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	bio = bio_alloc(bdev, 0, opf, GFP_NOIO);
	bio->bi_iter.bi_sector = req->sector;
	/* For a bvec iterator this only points the bio at req->bvec. */
	bio_iov_iter_get_pages(bio, &iter);
	vhost_blk_bio_submit(req, bio);
}

static void vhost_blk_bdev_flush(struct vhost_blk_req *req)
{
	vhost_blk_bio_submit(req, bio_alloc(req->be->bdev, 0,
					    REQ_OP_WRITE | REQ_PREFLUSH,
					    GFP_NOIO));
}

/* Regular file backend ------------------------------------------------------ */

static int vhost_blk_file_sync_rw(struct vhost_blk_req *req)
{
	struct file *file = req->be->file;
	loff_t pos = req->sector << VHOST_BLK_SECTOR_SHIFT;
	struct iov_iter iter;
	ssize_t ret;

	if (req->type == VIRTIO_BLK_T_IN) {
		iov_iter_bvec(&iter, READ, req->bvec, req->nr_pages, req->len);
		ret = vfs_iter_read(file, &iter, &pos, 0);
	} else {
		iov_iter_bvec(&iter, WRITE, req->bvec, req->nr_pages,
			      req->len);
		ret = vfs_iter_write(file, &iter, &pos, 0);
	}
	if (ret < 0)
		return ret;
	return ret == req->len ? 0 : -EIO;
}

static int vhost_blk_file_discard(struct vhost_blk_req *req)
{
	struct file *file = req->be->file;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < req->nr_segs && !ret; i++) {
		loff_t pos = le64_to_cpu(req->segs[i].sector) <<
			     VHOST_BLK_SECTOR_SHIFT;
		loff_t len = (loff_t)le32_to_cpu(req->segs[i].num_sectors) <<
			     VHOST_BLK_SECTOR_SHIFT;
		u32 flags = le32_to_cpu(req->segs[i].flags);
		int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

		if (!len)
			continue;
		if (req->type == VIRTIO_BLK_T_DISCARD ||
		    (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)) {
			ret = vfs_fallocate(file, punch, pos, len);
			continue;
		}
		/* Zero without deallocating where the file system can;
		 * a punched hole reads back as zeroes too (tmpfs).
		 */
		ret = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE |
				    FALLOC_FL_KEEP_SIZE, pos, len);
		if (ret == -EOPNOTSUPP)
			ret = vfs_fallocate(file, punch, pos, len);
	}
	return ret;
}

static void vhost_blk_kiocb_complete(struct kiocb *iocb, long ret)
{
	struct vhost_blk_req *req = container_of(iocb, struct vhost_blk_req,
						 iocb);

	if (req->type == VIRTIO_BLK_T_OUT)
		kiocb_end_write(iocb);
	if (ret != req->len)
		req->status = VIRTIO_BLK_S_IOERR;
	vhost_blk_req_put(req);
}

/*
 * Send a direct read or write to the file as an asynchronous kiocb.  With
 * @nowait, returns -EAGAIN (and does nothing) where the file system would
 * block; otherwise the request is the kiocb's until it completes.
 */
static int vhost_blk_file_aio(struct vhost_blk_req *req, bool nowait)
{
	struct file *file = req->be->file;
	struct kiocb *iocb = &req->iocb;
	struct iov_iter iter;
	ssize_t ret;

	atomic_inc(&req->ref);
	init_sync_kiocb(iocb, file);
	iocb->ki_pos = req->sector << VHOST_BLK_SECTOR_SHIFT;
	iocb->ki_complete = vhost_blk_kiocb_complete;
	if (nowait)
		iocb->ki_flags |= IOCB_NOWAIT;
	if (req->type == VIRTIO_BLK_T_IN) {
		iov_iter_bvec(&iter, READ, req->bvec, req->nr_pages, req->len);
		ret = file->f_op->read_iter(iocb, &iter);
	} else {
		iov_iter_bvec(&iter, WRITE, req->bvec, req->nr_pages,
			      req->len);
		iocb->ki_flags |= IOCB_WRITE;
		kiocb_start_write(iocb);
		ret = file->f_op->write_iter(iocb, &iter);
		if (ret == -EAGAIN && nowait)
			kiocb_end_write(iocb);
	}
	if (ret == -EIOCBQUEUED)
		return 0;
	if (ret == -EAGAIN && nowait) {
		atomic_dec(&req->ref);
		return -EAGAIN;
	}
	vhost_blk_kiocb_complete(iocb, ret);
	return 0;
}

/*
 * Discard or zero a block device range synchronously, from the workqueue:
 * blkdev_issue_zeroout() falls back to writing zero pages where the device
 * turns write-zeroes down (a loop device over tmpfs does), and a large range
 * does not hold up the worker.
 */
static int vhost_blk_bdev_discard(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < req->nr_segs && !ret; i++) {
		u64 sector = le64_to_cpu(req->segs[i].sector);
		u32 nr = le32_to_cpu(req->segs[i].num_sectors);
		u32 flags = le32_to_cpu(req->segs[i].flags);
		unsigned int zflags = BLKDEV_ZERO_NOUNMAP;

		if (!nr)
			continue;
		if (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			zflags = 0;
		if (req->type == VIRTIO_BLK_T_DISCARD)
			ret = blkdev_issue_discard(bdev, sector, nr, GFP_KERNEL);
		else
			ret = blkdev_issue_zeroout(bdev, sector, nr, GFP_KERNEL,
						   zflags);
	}
	return ret;
}

/* Work item: a request that may block, in process context. */
static void vhost_blk_work(struct work_struct *work)
{
	struct vhost_blk_req *req = container_of(work, struct vhost_blk_req,
						 work);
	int ret;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		/*
		 * Direct I/O that would have blocked the worker: block here
		 * only as long as submitting it takes (an extent to
		 * allocate), and let it complete asynchronously.
		 */
		if (req->be->file->f_flags & O_DIRECT) {
			vhost_blk_file_aio(req, false);
			vhost_blk_req_put(req);
			return;
		}
		ret = vhost_blk_file_sync_rw(req);
		break;
	case VIRTIO_BLK_T_FLUSH:
		ret = vfs_fsync(req->be->file, 0);
		break;
	default:
		if (req->be->bdev)
			ret = vhost_blk_bdev_discard(req);
		else
			ret = vhost_blk_file_discard(req);
		break;
	}
	req->status = vhost_blk_errno_status(ret);
	vhost_blk_req_put(req);
}

static void vhost_blk_punt(struct vhost_blk_req *req)
{
	atomic_inc(&req->ref);
	INIT_WORK(&req->work, vhost_blk_work);
	queue_work(vhost_blk_wq, &req->work);
}

/*
 * Direct I/O goes out as an asynchronous kiocb from the worker.  It is
 * tried with IOCB_NOWAIT where the file supports it: when it would block
 * (a lock, an allocating write), the request goes to the workqueue
 * instead of stalling every queue of the device.  Buffered I/O always
 * goes there.
 */
static void vhost_blk_file_rw(struct vhost_blk_req *req)
{
	if (!(req->be->file->f_flags & O_DIRECT) || !req->be->can_nowait ||
	    vhost_blk_file_aio(req, true) == -EAGAIN)
		vhost_blk_punt(req);
}

/* Request dispatch --------------------------------------------------------- */

/*
 * A block device can be made read-only (BLKROSET) after it was attached:
 * ask it for every request that would change it.
 */
static bool vhost_blk_read_only(struct vhost_blk_backend *be)
{
	return be->read_only || (be->bdev && bdev_read_only(be->bdev));
}

static sector_t vhost_blk_capacity(struct vhost_blk_backend *be)
{
	if (be->bdev)
		return bdev_nr_sectors(be->bdev);
	return i_size_read(file_inode(be->file)) >> VHOST_BLK_SECTOR_SHIFT;
}

static bool vhost_blk_range_ok(struct vhost_blk_backend *be, u64 sector,
			       u64 nr_sectors)
{
	u64 cap = vhost_blk_capacity(be);

	return sector <= cap && nr_sectors <= cap - sector;
}

/* Read and check the segments of a discard or write-zeroes request. */
static u8 vhost_blk_req_get_segs(struct vhost_blk_req *req, u64 payload)
{
	struct vhost_blk_vq *vq = req->vq;
	unsigned int i;

	if (!payload || payload % sizeof(*req->segs) ||
	    payload > VHOST_BLK_MAX_DISCARD_SEG * sizeof(*req->segs))
		return VIRTIO_BLK_S_IOERR;
	req->nr_segs = payload / sizeof(*req->segs);
	req->segs = kmalloc_array(req->nr_segs, sizeof(*req->segs),
				  GFP_KERNEL_ACCOUNT);
	if (!req->segs ||
	    vhost_blk_seg_copy(vq->segs, vq->nr_readable,
			       sizeof(struct virtio_blk_outhdr), req->segs,
			       payload, false))
		return VIRTIO_BLK_S_IOERR;
	for (i = 0; i < req->nr_segs; i++) {
		u32 flags = le32_to_cpu(req->segs[i].flags);

		if (req->type == VIRTIO_BLK_T_DISCARD ? flags :
		    flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP)
			return VIRTIO_BLK_S_UNSUPP;
		if (!vhost_blk_range_ok(req->be,
					le64_to_cpu(req->segs[i].sector),
					le32_to_cpu(req->segs[i].num_sectors)))
			return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static u8 vhost_blk_req_rw(struct vhost_blk_req *req, u64 rlen, u64 wlen)
{
	struct vhost_blk_vq *vq = req->vq;
	u64 len;
	int ret;

	if (req->type == VIRTIO_BLK_T_IN)
		len = wlen - 1;
	else
		len = rlen - sizeof(struct virtio_blk_outhdr);
	if (len % VHOST_BLK_SECTOR_SIZE || len > VHOST_BLK_MAX_REQUEST_BYTES ||
	    !vhost_blk_range_ok(req->be, req->sector,
				len >> VHOST_BLK_SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	req->len = len;
	if (req->type == VIRTIO_BLK_T_IN)
		ret = vhost_blk_req_pin(req, vq->nr_readable, vq->nr_segs, 0);
	else
		ret = vhost_blk_req_pin(req, 0, vq->nr_readable,
					sizeof(struct virtio_blk_outhdr));
	return ret ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/*
 * Serve the request whose chain is in vq->segs: check it, then either
 * complete it at once (errors, GET_ID) or hand it to the backend.
 */
static void vhost_blk_handle_req(struct vhost_blk_vq *vq, u16 head)
{
	struct vhost_blk_seg *st = &vq->segs[vq->nr_segs - 1];
	struct virtio_blk_outhdr hdr;
	struct vhost_blk_req *req;
	u64 rlen = 0, wlen = 0;
	u32 used_len = 1;
	unsigned int i;
	u8 status;

	for (i = 0; i < vq->nr_segs; i++) {
		if (i < vq->nr_readable)
			rlen += vq->segs[i].len;
		else
			wlen += vq->segs[i].len;
	}

	req = kzalloc(sizeof(*req), GFP_KERNEL_ACCOUNT);
	if (!req) {
		status = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	req->vq = vq;
	req->be = vq->be;
	req->head = head;
	/* The status byte is the last writable byte; wlen is not 0. */
	req->status_addr = (u8 __user *)st->addr + st->len - 1;
	req->pages = req->inline_pages;
	req->bvec = req->inline_bvec;
	atomic_set(&req->ref, 1);

	if (rlen < sizeof(hdr) ||
	    vhost_blk_seg_copy(vq->segs, vq->nr_readable, 0, &hdr,
			       sizeof(hdr), false)) {
		status = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	req->type = vhost_blk32_to_cpu(vq, hdr.type);
	req->sector = vhost_blk64_to_cpu(vq, hdr.sector);

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (req->type == VIRTIO_BLK_T_OUT &&
		    vhost_blk_read_only(req->be)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = vhost_blk_req_rw(req, rlen, wlen);
		/* Nothing to move: an empty bio is not for the block layer. */
		if (status != VIRTIO_BLK_S_OK || !req->len)
			break;
		WRITE_ONCE(vq->inflight, vq->inflight + 1);
		if (req->be->bdev)
			vhost_blk_bdev_rw(req);
		else
			vhost_blk_file_rw(req);
		goto submitted;
	case VIRTIO_BLK_T_FLUSH:
		status = VIRTIO_BLK_S_OK;
		if (vhost_blk_read_only(req->be))
			break;
		WRITE_ONCE(vq->inflight, vq->inflight + 1);
		if (req->be->bdev)
			vhost_blk_bdev_flush(req);
		else
			vhost_blk_punt(req);
		goto submitted;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (vhost_blk_read_only(req->be)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		status = vhost_blk_req_get_segs(req, rlen - sizeof(hdr));
		if (status != VIRTIO_BLK_S_OK)
			break;
		if (req->type == VIRTIO_BLK_T_DISCARD && req->be->bdev &&
		    !bdev_max_discard_sectors(req->be->bdev)) {
			status = VIRTIO_BLK_S_UNSUPP;
			break;
		}
		WRITE_ONCE(vq->inflight, vq->inflight + 1);
		vhost_blk_punt(req);
		goto submitted;
	case VIRTIO_BLK_T_GET_ID:
		i = min_t(u64, wlen - 1, VIRTIO_BLK_ID_BYTES);
		status = VIRTIO_BLK_S_OK;
		if (vhost_blk_seg_copy(vq->segs + vq->nr_readable,
				       vq->nr_segs - vq->nr_readable, 0,
				       vq->serial, i, true))
			status = VIRTIO_BLK_S_IOERR;
		else
			used_len += i;
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}

complete:
	if (req)
		vhost_blk_req_unpin(req);
	if (put_user(status, (u8 __user *)st->addr + st->len - 1))
		vq_err(vq, "cannot write status\n");
	vhost_blk_add_used(vq, head, status == VIRTIO_BLK_S_OK ? used_len : 1);
	if (req)
		vhost_blk_req_free(req);
	return;

submitted:
	/* Drop the building reference: the request may complete now. */
	vhost_blk_req_put(req);
}

/* Put the completed requests of @vq on its used ring. */
static void vhost_blk_complete(struct vhost_blk_vq *vq)
{
	struct llist_node *list = llist_reverse_order(llist_del_all(&vq->done));
	struct vhost_blk_req *req, *tmp;

	lockdep_assert_held(&vq->mutex);
	llist_for_each_entry_safe(req, tmp, list, node) {
		u8 status = READ_ONCE(req->status);
		u32 len = 1;

		vhost_blk_req_unpin(req);
		if (put_user(status, req->status_addr))
			vq_err(vq, "cannot write status\n");
		if (status == VIRTIO_BLK_S_OK && req->type == VIRTIO_BLK_T_IN)
			len += req->len;
		vhost_blk_add_used(vq, req->head, len);
		vhost_blk_req_free(req);
		WRITE_ONCE(vq->inflight, vq->inflight - 1);
	}
}

/*
 * Serve @vq: publish what completed, then take new requests while the
 * queue runs, the ring has some, and fewer than vq->num are in flight.
 */
static void vhost_blk_handle_vq(struct vhost_blk_vq *vq)
{
	struct blk_plug plug;
	int count = 0;
	int head;

	mutex_lock(&vq->mutex);
	vhost_blk_complete(vq);
	if (!vhost_blk_vq_running(vq))
		goto out;
	if (!vq->initialized && vhost_blk_vq_init_access(vq))
		goto out;

	vhost_blk_disable_notify(vq);
	blk_start_plug(&plug);
	while (vq->inflight < vq->num && !vq->broken) {
		head = vhost_blk_next_head(vq);
		if (head == -EAGAIN) {
			if (unlikely(vhost_blk_enable_notify(vq))) {
				vhost_blk_disable_notify(vq);
				continue;
			}
			break;
		}
		if (head < 0 || vhost_blk_parse_chain(vq, head))
			break;
		vq->last_avail_idx++;
		vhost_blk_handle_req(vq, head);
		if (++count >= VHOST_BLK_WEIGHT) {
			/* Let the other queues in; come back to this one. */
			set_bit(VHOST_BLK_KICK_BIT(vq->index),
				&vq->blk->pending);
			break;
		}
	}
	blk_finish_plug(&plug);
out:
	vhost_blk_flush_used(vq);
	/* wq_has_sleeper() orders the inflight update before the check. */
	if (!vq->inflight && wq_has_sleeper(&vq->blk->drain_wq))
		wake_up_all(&vq->blk->drain_wq);
	mutex_unlock(&vq->mutex);
}

static int vhost_blk_worker(void *data)
{
	struct vhost_blk *blk = data;

	kthread_use_mm(blk->mm);
	for (;;) {
		unsigned long pending;
		unsigned int i;

		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			break;
		}
		pending = xchg(&blk->pending, 0);
		if (!pending) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
			if (pending & (BIT(VHOST_BLK_KICK_BIT(i)) |
				       BIT(VHOST_BLK_DONE_BIT(i))))
				vhost_blk_handle_vq(&blk->vqs[i]);
		cond_resched();
	}
	kthread_unuse_mm(blk->mm);
	return 0;
}

/* Kick polling ---------------------------------------------------------- */

static int vhost_blk_poll_wakeup(wait_queue_entry_t *wait, unsigned int mode,
				 int sync, void *key)
{
	struct vhost_blk_poll *poll = container_of(wait, struct vhost_blk_poll,
						   wait);

	if (key_to_poll(key) & EPOLLIN)
		vhost_blk_wake(poll->vq->blk,
			       VHOST_BLK_KICK_BIT(poll->vq->index));
	return 0;
}

static void vhost_blk_poll_queue(struct file *file, wait_queue_head_t *wqh,
				 poll_table *pt)
{
	struct vhost_blk_poll *poll = container_of(pt, struct vhost_blk_poll,
						   table);

	poll->wqh = wqh;
	add_wait_queue(wqh, &poll->wait);
}

static void vhost_blk_poll_start(struct vhost_blk_vq *vq)
{
	struct vhost_blk_poll *poll = &vq->poll;

	poll->vq = vq;
	init_waitqueue_func_entry(&poll->wait, vhost_blk_poll_wakeup);
	init_poll_funcptr(&poll->table, vhost_blk_poll_queue);
	if (vfs_poll(vq->kick, &poll->table) & EPOLLIN)
		vhost_blk_wake(vq->blk, VHOST_BLK_KICK_BIT(vq->index));
}

static void vhost_blk_poll_stop(struct vhost_blk_vq *vq)
{
	if (vq->poll.wqh) {
		remove_wait_queue(vq->poll.wqh, &vq->poll.wait);
		vq->poll.wqh = NULL;
	}
}

/* Control path -------------------------------------------------------------- */

/*
 * Take every queue mutex.  They are all taken under vhost_blk.mutex, which
 * is what makes the order safe; lockdep has too few subclasses to tell
 * 16 queues apart.
 */
static void vhost_blk_lock_vqs(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		mutex_lock_nest_lock(&blk->vqs[i].mutex, &blk->mutex);
}

static void vhost_blk_unlock_vqs(struct vhost_blk *blk)
{
	int i;

	for (i = VHOST_BLK_MAX_QUEUES - 1; i >= 0; i--)
		mutex_unlock(&blk->vqs[i].mutex);
}

/*
 * Wait until @vq has no request in flight.  The caller has already made
 * sure the worker takes no new ones (queue stopped, broken or without
 * backend); the worker keeps completing the old ones meanwhile.
 */
static void vhost_blk_vq_drain(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->blk->mutex);
	if (vq->blk->worker)
		wait_event(vq->blk->drain_wq, !READ_ONCE(vq->inflight));
}

/*
 * Make @vq quiet for a change of its ring: fail with -EBUSY while it runs,
 * otherwise wait for requests left in flight by a broken ring.  Returns
 * with vq->mutex held on success.
 */
static int vhost_blk_vq_quiesce(struct vhost_blk_vq *vq)
{
	mutex_lock(&vq->mutex);
	if (vhost_blk_vq_running(vq)) {
		mutex_unlock(&vq->mutex);
		return -EBUSY;
	}
	if (vq->inflight) {
		mutex_unlock(&vq->mutex);
		vhost_blk_vq_drain(vq);
		mutex_lock(&vq->mutex);
	}
	return 0;
}

static void vhost_blk_backend_put(struct vhost_blk_backend *be)
{
	if (!be)
		return;
	fput(be->file);
	kfree(be);
}

/*
 * Point every queue at @be (NULL: none), after the requests of the
 * previous backend completed.  Consumes @be; drops the old one.
 */
static void vhost_blk_switch_backend(struct vhost_blk *blk,
				     struct vhost_blk_backend *be)
{
	struct vhost_blk_backend *old = blk->be;
	int i;

	lockdep_assert_held(&blk->mutex);
	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].be = NULL;
	vhost_blk_unlock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_drain(&blk->vqs[i]);

	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].be = be;
	vhost_blk_unlock_vqs(blk);
	blk->be = be;
	vhost_blk_backend_put(old);
	if (be && blk->worker)
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
			vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(i));
}

static long vhost_blk_set_backend(struct vhost_blk *blk,
				  struct vhost_vring_file __user *argp)
{
	struct vhost_blk_backend *be = NULL;
	struct vhost_vring_file f;
	struct inode *inode;
	struct file *file;
	int ret;

	if (copy_from_user(&f, argp, sizeof(f)))
		return -EFAULT;
	if (f.fd == -1) {
		vhost_blk_switch_backend(blk, NULL);
		return 0;
	}
	file = fget(f.fd);
	if (!file)
		return -EBADF;
	inode = file_inode(file);
	ret = -EINVAL;
	if (!(file->f_mode & FMODE_READ))
		goto err_fput;
	if (!S_ISBLK(inode->i_mode) &&
	    !(S_ISREG(inode->i_mode) && file->f_op->read_iter &&
	      file->f_op->write_iter))
		goto err_fput;

	ret = -ENOMEM;
	be = kzalloc(sizeof(*be), GFP_KERNEL_ACCOUNT);
	if (!be)
		goto err_fput;
	be->file = file;
	be->read_only = !(file->f_mode & FMODE_WRITE);
	if (S_ISBLK(inode->i_mode))
		be->bdev = I_BDEV(file->f_mapping->host);
	else
		be->can_nowait = file->f_mode & FMODE_NOWAIT;
	vhost_blk_switch_backend(blk, be);
	return 0;

err_fput:
	fput(file);
	return ret;
}

static int vhost_blk_region_cmp(const void *a, const void *b)
{
	const struct vhost_blk_region *ra = a, *rb = b;

	if (ra->gpa < rb->gpa)
		return -1;
	return ra->gpa > rb->gpa;
}

static long vhost_blk_set_mem_table(struct vhost_blk *blk,
				    struct vhost_memory __user *argp)
{
	struct vhost_memory_region reg;
	struct vhost_memory hdr;
	struct vhost_blk_mem *mem, *old;
	unsigned int i;
	long ret = -EFAULT;

	if (copy_from_user(&hdr, argp, sizeof(hdr)))
		return -EFAULT;
	if (hdr.nregions > VHOST_BLK_MAX_MEM_REGIONS)
		return -E2BIG;
	mem = kvzalloc(struct_size(mem, regions, hdr.nregions),
		       GFP_KERNEL_ACCOUNT);
	if (!mem)
		return -ENOMEM;
	mem->nregions = hdr.nregions;
	for (i = 0; i < hdr.nregions; i++) {
		if (copy_from_user(&reg, &argp->regions[i], sizeof(reg))) {
			ret = -EFAULT;
			goto err;
		}
		ret = -EINVAL;
		if (!reg.memory_size || reg.flags_padding ||
		    reg.guest_phys_addr + reg.memory_size - 1 <
		    reg.guest_phys_addr)
			goto err;
		ret = -EFAULT;
		if (reg.userspace_addr + reg.memory_size - 1 <
		    reg.userspace_addr ||
		    (unsigned long)reg.userspace_addr != reg.userspace_addr ||
		    !access_ok(u64_to_user_ptr(reg.userspace_addr),
			       reg.memory_size))
			goto err;
		mem->regions[i].gpa = reg.guest_phys_addr;
		mem->regions[i].last = reg.guest_phys_addr +
				       reg.memory_size - 1;
		mem->regions[i].uaddr = reg.userspace_addr;
	}
	sort(mem->regions, mem->nregions, sizeof(mem->regions[0]),
	     vhost_blk_region_cmp, NULL);
	for (i = 1; i < mem->nregions; i++) {
		if (mem->regions[i].gpa <= mem->regions[i - 1].last) {
			ret = -EINVAL;
			goto err;
		}
	}

	/* Requests in flight keep their pinned pages; new ones see @mem. */
	vhost_blk_lock_vqs(blk);
	old = blk->mem;
	blk->mem = mem;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].mem = mem;
	vhost_blk_unlock_vqs(blk);
	kvfree(old);
	for (i = 0; blk->worker && i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(i));
	return 0;

err:
	kvfree(mem);
	return ret;
}

static long vhost_blk_set_features(struct vhost_blk *blk, u64 __user *argp)
{
	u64 features;
	int i;

	if (copy_from_user(&features, argp, sizeof(features)))
		return -EFAULT;
	if (features & ~VHOST_BLK_FEATURES)
		return -EOPNOTSUPP;
	vhost_blk_lock_vqs(blk);
	blk->features = features;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].features = features;
	vhost_blk_unlock_vqs(blk);
	return 0;
}

static long vhost_blk_set_serial(struct vhost_blk *blk, void __user *argp)
{
	char serial[VIRTIO_BLK_ID_BYTES];
	int i;

	if (copy_from_user(serial, argp, sizeof(serial)))
		return -EFAULT;
	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		memcpy(blk->vqs[i].serial, serial, sizeof(serial));
	vhost_blk_unlock_vqs(blk);
	return 0;
}

/* Take an eventfd context for VHOST_SET_VRING_CALL/ERR; -1 clears. */
static struct eventfd_ctx *vhost_blk_get_ctx(int fd)
{
	if (fd == -1)
		return NULL;
	return eventfd_ctx_fdget(fd);
}

static long vhost_blk_vring_ioctl(struct vhost_blk *blk, unsigned int ioctl,
				  void __user *argp)
{
	struct vhost_vring_state s;
	struct vhost_vring_addr a;
	struct vhost_vring_file f;
	struct vhost_blk_vq *vq;
	struct eventfd_ctx *ctx;
	struct file *kick;
	long ret = 0;
	u32 idx;

	/* Every vring ioctl argument starts with the queue index. */
	if (get_user(idx, (u32 __user *)argp))
		return -EFAULT;
	if (idx >= VHOST_BLK_MAX_QUEUES)
		return -ENOBUFS;
	idx = array_index_nospec(idx, VHOST_BLK_MAX_QUEUES);
	vq = &blk->vqs[idx];

	switch (ioctl) {
	case VHOST_SET_VRING_NUM:
		if (copy_from_user(&s, argp, sizeof(s)))
			return -EFAULT;
		if (!s.num || s.num > VHOST_BLK_MAX_QUEUE_SIZE ||
		    !is_power_of_2(s.num))
			return -EINVAL;
		ret = vhost_blk_vq_quiesce(vq);
		if (ret)
			return ret;
		if (!vq->segs) {
			vq->segs = kvmalloc_array(VHOST_BLK_MAX_SEGS,
						  sizeof(*vq->segs),
						  GFP_KERNEL_ACCOUNT);
			if (!vq->segs) {
				ret = -ENOMEM;
				break;
			}
		}
		vq->num = s.num;
		vq->initialized = false;
		break;
	case VHOST_SET_VRING_BASE:
		if (copy_from_user(&s, argp, sizeof(s)))
			return -EFAULT;
		if (s.num > 0xffff)
			return -EINVAL;
		ret = vhost_blk_vq_quiesce(vq);
		if (ret)
			return ret;
		vq->last_avail_idx = s.num;
		vq->avail_idx = s.num;
		vq->initialized = false;
		break;
	case VHOST_GET_VRING_BASE:
		mutex_lock(&vq->mutex);
		vq->stopped = true;
		mutex_unlock(&vq->mutex);
		vhost_blk_vq_drain(vq);
		mutex_lock(&vq->mutex);
		s.index = idx;
		s.num = vq->last_avail_idx;
		vq->initialized = false;
		if (copy_to_user(argp, &s, sizeof(s)))
			ret = -EFAULT;
		break;
	case VHOST_SET_VRING_ADDR:
		if (copy_from_user(&a, argp, sizeof(a)))
			return -EFAULT;
		if (a.flags)
			return -EOPNOTSUPP;
		if ((a.desc_user_addr & (16 - 1)) ||
		    (a.avail_user_addr & (2 - 1)) ||
		    (a.used_user_addr & (4 - 1)))
			return -EINVAL;
		if ((unsigned long)a.desc_user_addr != a.desc_user_addr ||
		    (unsigned long)a.avail_user_addr != a.avail_user_addr ||
		    (unsigned long)a.used_user_addr != a.used_user_addr)
			return -EFAULT;
		ret = vhost_blk_vq_quiesce(vq);
		if (ret)
			return ret;
		vq->desc = u64_to_user_ptr(a.desc_user_addr);
		vq->avail = u64_to_user_ptr(a.avail_user_addr);
		vq->used = u64_to_user_ptr(a.used_user_addr);
		vq->initialized = false;
		break;
	case VHOST_SET_VRING_KICK:
		if (copy_from_user(&f, argp, sizeof(f)))
			return -EFAULT;
		kick = f.fd == -1 ? NULL : eventfd_fget(f.fd);
		if (IS_ERR(kick))
			return PTR_ERR(kick);
		mutex_lock(&vq->mutex);
		if (vq->stopped || vq->broken) {
			/* A restarted queue reads its used index again, once
			 * what it had in flight is on the used ring.
			 */
			if (vq->inflight) {
				mutex_unlock(&vq->mutex);
				vhost_blk_vq_drain(vq);
				mutex_lock(&vq->mutex);
			}
			vq->initialized = false;
		}
		vhost_blk_poll_stop(vq);
		if (vq->kick)
			fput(vq->kick);
		vq->kick = kick;
		vq->stopped = false;
		vq->broken = false;
		if (kick)
			vhost_blk_poll_start(vq);
		break;
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
		if (copy_from_user(&f, argp, sizeof(f)))
			return -EFAULT;
		ctx = vhost_blk_get_ctx(f.fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
		mutex_lock(&vq->mutex);
		if (ioctl == VHOST_SET_VRING_CALL)
			swap(ctx, vq->call_ctx);
		else
			swap(ctx, vq->error_ctx);
		if (ctx)
			eventfd_ctx_put(ctx);
		break;
	default:
		return -ENOIOCTLCMD;
	}
	mutex_unlock(&vq->mutex);
	/* The queue may be able to run now. */
	vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(idx));
	return ret;
}

/* Put @vq in the state of a freshly opened device. */
static void vhost_blk_vq_init(struct vhost_blk_vq *vq)
{
	vq->num = 0;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail_idx = 0;
	vq->avail_idx = 0;
	vq->last_used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_used_valid = false;
	vq->initialized = false;
	vq->features = 0;
	vq->be = NULL;
	vq->mem = NULL;
	memset(vq->serial, 0, sizeof(vq->serial));
	vq->kick = NULL;
	vq->poll.wqh = NULL;
	vq->call_ctx = NULL;
	vq->error_ctx = NULL;
	vq->stopped = false;
	vq->broken = false;
	vq->inflight = 0;
	vq->used_pending = 0;
	init_llist_head(&vq->done);
	vq->segs = NULL;
	vq->nr_segs = 0;
	vq->nr_readable = 0;
}

/*
 * Tear the device down to the state of a freshly opened file: stop
 * listening to kicks, detach the backend (draining every queue), stop the
 * worker, and drop every reference the owner gave us.
 */
static void vhost_blk_reset(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		mutex_lock(&blk->vqs[i].mutex);
		vhost_blk_poll_stop(&blk->vqs[i]);
		mutex_unlock(&blk->vqs[i].mutex);
	}
	vhost_blk_switch_backend(blk, NULL);
	/* Completers may still be waking the worker: see vhost_blk_req_put(). */
	synchronize_rcu();
	if (blk->worker) {
		kthread_stop(blk->worker);
		blk->worker = NULL;
	}
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_blk_vq *vq = &blk->vqs[i];

		if (vq->kick)
			fput(vq->kick);
		if (vq->call_ctx)
			eventfd_ctx_put(vq->call_ctx);
		if (vq->error_ctx)
			eventfd_ctx_put(vq->error_ctx);
		kvfree(vq->segs);
		vhost_blk_vq_init(vq);
	}
	kvfree(blk->mem);
	blk->mem = NULL;
	blk->features = 0;
	blk->pending = 0;
	if (blk->mm) {
		mmput(blk->mm);
		blk->mm = NULL;
	}
}

static long vhost_blk_set_owner(struct vhost_blk *blk)
{
	struct task_struct *worker;
	struct mm_struct *mm;
	int ret;

	if (blk->mm)
		return -EBUSY;
	mm = get_task_mm(current);
	if (!mm)
		return -EINVAL;
	worker = kthread_create(vhost_blk_worker, blk, "vhost-blk-%d",
				current->pid);
	if (IS_ERR(worker)) {
		ret = PTR_ERR(worker);
		goto err_mm;
	}
	/* The guest's I/O is charged to the owner's cgroups (io.max...). */
	ret = cgroup_attach_task_all(current, worker);
	if (ret)
		goto err_worker;
	blk->mm = mm;
	blk->worker = worker;
	wake_up_process(worker);
	return 0;

err_worker:
	kthread_stop(worker);
err_mm:
	mmput(mm);
	return ret;
}

static long vhost_blk_ioctl(struct file *f, unsigned int ioctl,
			    unsigned long arg)
{
	struct vhost_blk *blk = f->private_data;
	void __user *argp = (void __user *)arg;
	u64 features;
	long ret;

	switch (ioctl) {
	case VHOST_GET_FEATURES:
		features = VHOST_BLK_FEATURES;
		return copy_to_user(argp, &features, sizeof(features)) ?
		       -EFAULT : 0;
	case VHOST_GET_BACKEND_FEATURES:
		features = 0;
		return copy_to_user(argp, &features, sizeof(features)) ?
		       -EFAULT : 0;
	}

	mutex_lock(&blk->mutex);
	if (ioctl == VHOST_SET_OWNER) {
		ret = vhost_blk_set_owner(blk);
		goto out;
	}
	/* Only the owner's address space may drive the device. */
	if (!blk->mm || blk->mm != current->mm) {
		ret = -EPERM;
		goto out;
	}
	switch (ioctl) {
	case VHOST_RESET_OWNER:
		vhost_blk_reset(blk);
		ret = 0;
		break;
	case VHOST_SET_FEATURES:
		ret = vhost_blk_set_features(blk, argp);
		break;
	case VHOST_SET_BACKEND_FEATURES:
		if (copy_from_user(&features, argp, sizeof(features)))
			ret = -EFAULT;
		else
			ret = features ? -EOPNOTSUPP : 0;
		break;
	case VHOST_SET_MEM_TABLE:
		ret = vhost_blk_set_mem_table(blk, argp);
		break;
	case VHOST_BLK_SET_BACKEND:
		ret = vhost_blk_set_backend(blk, argp);
		break;
	case VHOST_BLK_SET_SERIAL:
		ret = vhost_blk_set_serial(blk, argp);
		break;
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
	case VHOST_GET_VRING_BASE:
	case VHOST_SET_VRING_ADDR:
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
		ret = vhost_blk_vring_ioctl(blk, ioctl, argp);
		break;
	default:
		ret = -ENOIOCTLCMD;
		break;
	}
out:
	mutex_unlock(&blk->mutex);
	return ret;
}

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk;
	int i;

	blk = kvzalloc(sizeof(*blk), GFP_KERNEL_ACCOUNT);
	if (!blk)
		return -ENOMEM;
	mutex_init(&blk->mutex);
	init_waitqueue_head(&blk->drain_wq);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_blk_vq *vq = &blk->vqs[i];

		vq->blk = blk;
		vq->index = i;
		mutex_init(&vq->mutex);
		vhost_blk_vq_init(vq);
	}
	f->private_data = blk;
	return 0;
}

static int vhost_blk_release(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = f->private_data;
	int i;

	mutex_lock(&blk->mutex);
	vhost_blk_reset(blk);
	mutex_unlock(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		mutex_destroy(&blk->vqs[i].mutex);
	mutex_destroy(&blk->mutex);
	kvfree(blk);
	return 0;
}

static const struct file_operations vhost_blk_fops = {
	.owner		= THIS_MODULE,
	.open		= vhost_blk_open,
	.release	= vhost_blk_release,
	.unlocked_ioctl	= vhost_blk_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice vhost_blk_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vhost-blk",
	.fops	= &vhost_blk_fops,
	.mode	= 0600,
};

static int __init vhost_blk_init(void)
{
	int ret;

	vhost_blk_wq = alloc_workqueue("vhost-blk", WQ_UNBOUND, 0);
	if (!vhost_blk_wq)
		return -ENOMEM;
	ret = misc_register(&vhost_blk_misc);
	if (ret)
		destroy_workqueue(vhost_blk_wq);
	return ret;
}
module_init(vhost_blk_init);

static void __exit vhost_blk_exit(void)
{
	misc_deregister(&vhost_blk_misc);
	destroy_workqueue(vhost_blk_wq);
}
module_exit(vhost_blk_exit);

MODULE_VERSION(VHOST_BLK_VERSION);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("The vhost-blk developers");
MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
