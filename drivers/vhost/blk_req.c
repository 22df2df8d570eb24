// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk device: the request path.
 *
 * Owns a request's life, from the head the worker takes off the avail ring
 * to the status byte and used entry it writes back: parsing the virtio-blk
 * header, checking it against the backend, pinning the guest's pages,
 * handing the request to a backend (blk_bdev.c, blk_file.c) or to the
 * workqueue, and completing it.  It uses the core (blk_vq.c,
 * blk_worker.c) for the rings.
 */
#include <linux/kthread.h>
#include <linux/moduleparam.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "blk.h"
#include "blk_trace.h"

/* The type of a request whose header could not be read. */
#define VHOST_BLK_T_NONE	U32_MAX

/*
 * Workqueue for requests that may block: buffered file I/O, fsync,
 * fallocate, and discard or write-zeroes of a block device.  Each device
 * uses at most max_blocking of its workers at a time.
 */
struct workqueue_struct *vhost_blk_wq;
/* Every struct vhost_blk_req, accounted to the memcg of the task that allocates. */
struct kmem_cache *vhost_blk_req_cachep;

/*
 * Pages one device may have pinned at a time.  Every descriptor is pinned
 * on its own, so a guest that points many descriptors of many requests at
 * one page would otherwise overflow that page's refcount (each pin adds
 * GUP_PIN_COUNTING_BIAS, and 2^21 pins reach 2^31): a WARN in GUP, and
 * every later pin of the page fails, KVM's too.  A request that does not
 * fit waits in the ring for completions to release pins.
 */
static unsigned int vhost_blk_max_pinned = 32768;

static int vhost_blk_max_pinned_set(const char *val,
				    const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, VHOST_BLK_MIN_PINNED_PAGES,
				     VHOST_BLK_MAX_PINNED_PAGES);
}

static const struct kernel_param_ops vhost_blk_max_pinned_ops = {
	.set	= vhost_blk_max_pinned_set,
	.get	= param_get_uint,
};

module_param_cb(max_pinned_pages, &vhost_blk_max_pinned_ops,
		&vhost_blk_max_pinned, 0644);
MODULE_PARM_DESC(max_pinned_pages,
		 "Guest pages one device may have pinned for I/O at a time, "
		 __stringify(VHOST_BLK_MIN_PINNED_PAGES) " to "
		 __stringify(VHOST_BLK_MAX_PINNED_PAGES) ". Default: 32768");

static bool vhost_blk_pin_try(struct vhost_blk *blk, unsigned int pages)
{
	unsigned int max = READ_ONCE(vhost_blk_max_pinned);
	int old = atomic_read(&blk->pinned);

	do {
		/* Alone, any request fits: the largest part is below max. */
		if (old && (unsigned int)old + pages > max)
			return false;
	} while (!atomic_try_cmpxchg(&blk->pinned, &old, old + pages));
	return true;
}

/*
 * Reserve @pages of the device's pin budget for a request of @vq, or ask
 * to be kicked when pins are released.
 */
static bool vhost_blk_pin_get(struct vhost_blk_vq *vq, unsigned int pages)
{
	struct vhost_blk *blk = vq->blk;

	if (vhost_blk_pin_try(blk, pages))
		return true;
	set_bit(vq->index, &blk->pin_waiters);
	/* Pairs with the barrier in vhost_blk_pin_put(). */
	smp_mb__after_atomic();
	if (!vhost_blk_pin_try(blk, pages))
		return false;
	clear_bit(vq->index, &blk->pin_waiters);
	return true;
}

/* Release a reservation and kick the queues that wait for one. */
static void vhost_blk_pin_put(struct vhost_blk *blk, unsigned int pages)
{
	unsigned int i;

	atomic_sub(pages, &blk->pinned);
	/* Pairs with the barrier in vhost_blk_pin_get(). */
	smp_mb__after_atomic();
	if (likely(!READ_ONCE(blk->pin_waiters)))
		return;
	rcu_read_lock();
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		if (test_and_clear_bit(i, &blk->pin_waiters))
			vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(i));
	rcu_read_unlock();
}

static unsigned int vhost_blk_max_blocking = 8;

static int vhost_blk_max_blocking_set(const char *val,
				      const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, VHOST_BLK_MAX_BLOCKING);
}

static const struct kernel_param_ops vhost_blk_max_blocking_ops = {
	.set	= vhost_blk_max_blocking_set,
	.get	= param_get_uint,
};
module_param_cb(max_blocking, &vhost_blk_max_blocking_ops,
		&vhost_blk_max_blocking, 0644);
MODULE_PARM_DESC(max_blocking,
		 "Most requests that may block one device serves at a time (1-64, default 8; a device keeps what it had at open)");

/**
 * vhost_blk_req_put() - drop a reference to a request
 * @req: the request
 *
 * The last reference hands the finished request back to the worker.
 *
 * Once the request is on vq->done the worker may complete it, the queue
 * drain, and the device be torn down before we wake the worker: the RCU
 * read section keeps the device alive until then (vhost_blk_worker_stop()
 * waits for it with synchronize_rcu()).
 *
 * Context: any.
 */
void vhost_blk_req_put(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *vq = req->vq;

	if (!atomic_dec_and_test(&req->ref))
		return;
	rcu_read_lock();
	if (llist_add(&req->node, &vq->done))
		vhost_blk_wake(vq->blk, VHOST_BLK_DONE_BIT(vq->index));
	rcu_read_unlock();
}

/*
 * A request for @vq: one its worker freed before, or a new one.  Either is
 * zero up to its inline arrays, as kmem_cache_zalloc() would leave it.
 */
static struct vhost_blk_req *vhost_blk_req_alloc(struct vhost_blk_vq *vq)
{
	struct vhost_blk_req *req;

	lockdep_assert_held(&vq->mutex);
	if (!vq->req_cache)
		return kmem_cache_zalloc(vhost_blk_req_cachep,
					 GFP_KERNEL_ACCOUNT);
	req = llist_entry(vq->req_cache, struct vhost_blk_req, node);
	vq->req_cache = req->node.next;
	WRITE_ONCE(vq->nr_req_cache, vq->nr_req_cache - 1);
	memset(req, 0, offsetof(struct vhost_blk_req, inline_pages));
	return req;
}

/* Free what @req allocated, and keep @req for its queue's next request. */
static void vhost_blk_req_free(struct vhost_blk_req *req)
{
	struct vhost_blk_vq *vq = req->vq;

	lockdep_assert_held(&vq->mutex);
	if (req->pin_reserved)
		vhost_blk_pin_put(vq->blk, req->pin_reserved);
	if (req->pages != req->inline_pages)
		kvfree(req->pages);
	if (req->bvec != req->inline_bvec)
		kvfree(req->bvec);
	kvfree(req->dsegs);
	if (req->log != req->inline_log)
		kvfree(req->log);
	kfree(req->segs);
	if (vq->nr_req_cache >= VHOST_BLK_REQ_CACHE) {
		kmem_cache_free(vhost_blk_req_cachep, req);
		return;
	}
	req->node.next = vq->req_cache;
	vq->req_cache = &req->node;
	WRITE_ONCE(vq->nr_req_cache, vq->nr_req_cache + 1);
}

/**
 * vhost_blk_req_cache_free() - free the requests a queue kept
 * @vq: the queue, drained: none of its requests is in flight
 *
 * Context: process; @vq's worker is gone or holds no request of it.
 */
void vhost_blk_req_cache_free(struct vhost_blk_vq *vq)
{
	struct vhost_blk_req *req, *tmp;

	llist_for_each_entry_safe(req, tmp, vq->req_cache, node)
		kmem_cache_free(vhost_blk_req_cachep, req);
	vq->req_cache = NULL;
	vq->nr_req_cache = 0;
}

static void vhost_blk_req_unpin(struct vhost_blk_req *req)
{
	if (req->nr_pages)
		unpin_user_pages_dirty_lock(req->pages, req->nr_pages,
					    req->type == VIRTIO_BLK_T_IN);
	req->nr_pages = 0;
}

/* Remember that [@gpa, @gpa + @len) holds data of IN request @req. */
static void vhost_blk_req_add_log(struct vhost_blk_req *req, u64 gpa, u32 len)
{
	struct vhost_blk_log_range *r;

	if (req->nr_log) {
		r = &req->log[req->nr_log - 1];
		if (r->gpa + r->len == gpa) {
			r->len += len;
			return;
		}
	}
	req->log[req->nr_log].gpa = gpa;
	req->log[req->nr_log].len = len;
	req->nr_log++;
}

/*
 * The most pages one part of the byte range [@skip, @skip + @len) of
 * @segs[0..@nr) spans, parts cut every VHOST_BLK_PART_BYTES of the range.
 */
static unsigned int vhost_blk_part_pages(const struct vhost_blk_seg *segs,
					 unsigned int nr, u64 skip, u32 len)
{
	unsigned int i, pages = 0, most = 0;
	u32 room = VHOST_BLK_PART_BYTES;

	for (i = 0; i < nr && len; i++) {
		unsigned long addr;
		u32 slen;

		if (skip >= segs[i].len) {
			skip -= segs[i].len;
			continue;
		}
		addr = (unsigned long)segs[i].addr + skip;
		slen = min_t(u64, len, segs[i].len - skip);
		skip = 0;
		while (slen) {
			u32 l = min(slen, room);

			pages += DIV_ROUND_UP(offset_in_page(addr) + l,
					      PAGE_SIZE);
			addr += l;
			slen -= l;
			len -= l;
			room -= l;
			if (!room) {
				most = max(most, pages);
				pages = 0;
				room = VHOST_BLK_PART_BYTES;
			}
		}
	}
	return max(most, pages);
}

/*
 * Pin the guest pages of the byte range [@skip, @skip + req->len) of
 * @segs[0..@nr) and describe them in req->bvec, which has room for
 * req->pin_reserved pages.
 */
static int vhost_blk_req_pin(struct vhost_blk_req *req,
			     const struct vhost_blk_seg *segs, unsigned int nr,
			     u64 skip)
{
	unsigned int gup_flags = req->type == VIRTIO_BLK_T_IN ? FOLL_WRITE : 0;
	unsigned int i;
	u64 n = skip;
	u32 left = req->len;

	for (i = 0; i < nr && left; i++) {
		unsigned long addr = (unsigned long)segs[i].addr + n;
		unsigned int off = offset_in_page(addr);
		unsigned int np, p;
		u32 len;
		int got;

		if (n >= segs[i].len) {
			n -= segs[i].len;
			continue;
		}
		len = min_t(u64, left, segs[i].len - n);
		if (req->type == VIRTIO_BLK_T_IN)
			vhost_blk_req_add_log(req, segs[i].gpa + n, len);
		n = 0;
		np = DIV_ROUND_UP(off + len, PAGE_SIZE);
		if (WARN_ON_ONCE(req->nr_pages + np > req->pin_reserved))
			return -EINVAL;
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

/* The worse of two statuses: an I/O error over UNSUPP over OK. */
static u8 vhost_blk_worse(u8 a, u8 b)
{
	if (a == VIRTIO_BLK_S_IOERR || b == VIRTIO_BLK_S_IOERR)
		return VIRTIO_BLK_S_IOERR;
	return a == VIRTIO_BLK_S_OK ? b : a;
}

/*
 * Whether the backend takes the part's buffers as they are: what direct
 * I/O on the device needs, each segment on its DMA alignment and a whole
 * number of its logical blocks (for a file, the device of its file
 * system; 512 bytes where it has none).  The page cache takes any.
 */
static bool vhost_blk_part_aligned(const struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	unsigned int addr_mask = VHOST_BLK_SECTOR_SIZE - 1;
	unsigned int len_mask = VHOST_BLK_SECTOR_SIZE - 1;
	unsigned int i;

	if (!bdev) {
		if (!(req->be->file->f_flags & O_DIRECT))
			return true;
		bdev = file_inode(req->be->file)->i_sb->s_bdev;
	}
	if (bdev) {
		addr_mask = bdev_dma_alignment(bdev);
		len_mask = bdev_logical_block_size(bdev) - 1;
	}
	for (i = 0; i < req->nr_pages; i++)
		if ((req->bvec[i].bv_offset & addr_mask) ||
		    (req->bvec[i].bv_len & len_mask))
			return false;
	return true;
}

/*
 * Serve the part through pages of our own, charged to the owner's memory
 * cgroup (the worker's active memcg): no more of them than the part has
 * pinned, so the device's pin budget bounds them too.  An OUT part's data
 * is copied in now.
 */
static int vhost_blk_req_bounce(struct vhost_blk_req *req)
{
	unsigned int nr = DIV_ROUND_UP(req->len, PAGE_SIZE), i;
	u32 left = req->len;
	struct iov_iter from;

	req->bounce = kvmalloc_array(nr, sizeof(*req->bounce),
				     GFP_KERNEL_ACCOUNT);
	if (!req->bounce)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		struct page *page = alloc_page(GFP_KERNEL_ACCOUNT);

		if (!page)
			return -ENOMEM;
		req->bounce[i].bv_page = page;
		req->bounce[i].bv_offset = 0;
		req->bounce[i].bv_len = min_t(u32, left, PAGE_SIZE);
		left -= req->bounce[i].bv_len;
		req->nr_bounce++;
	}
	if (req->type == VIRTIO_BLK_T_OUT) {
		iov_iter_bvec(&from, WRITE, req->bvec, req->nr_pages,
			      req->len);
		for (i = 0; i < nr; i++) {
			struct bio_vec *bv = &req->bounce[i];

			if (copy_page_from_iter(bv->bv_page, 0, bv->bv_len,
						&from) != bv->bv_len)
				return -EFAULT;
		}
	}
	req->io_bvec = req->bounce;
	req->io_nr = nr;
	vhost_blk_stat_add(&req->vq->stats.bounced, 1);
	return 0;
}

/*
 * The bounced part of @req completed: copy what an IN part read to the
 * guest's pages, and free the bounce pages.  Nothing to do for a part
 * that was not bounced.
 */
static void vhost_blk_req_unbounce(struct vhost_blk_req *req)
{
	struct iov_iter to;
	unsigned int i;

	if (!req->bounce)
		return;
	if (req->type == VIRTIO_BLK_T_IN &&
	    READ_ONCE(req->status) == VIRTIO_BLK_S_OK &&
	    req->io_bvec == req->bounce) {
		iov_iter_bvec(&to, READ, req->bvec, req->nr_pages, req->len);
		for (i = 0; i < req->nr_bounce; i++)
			copy_page_to_iter(req->bounce[i].bv_page, 0,
					  req->bounce[i].bv_len, &to);
	}
	for (i = 0; i < req->nr_bounce; i++)
		__free_page(req->bounce[i].bv_page);
	kvfree(req->bounce);
	req->bounce = NULL;
	req->nr_bounce = 0;
}

/*
 * Hand the pinned part of a read or write to the backend, through bounce
 * pages where its buffers are not as the backend needs them.
 */
static void vhost_blk_req_submit(struct vhost_blk_req *req)
{
	req->io_bvec = req->bvec;
	req->io_nr = req->nr_pages;
	if (!vhost_blk_part_aligned(req) && vhost_blk_req_bounce(req)) {
		/* The completion frees what was allocated. */
		req->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	if (req->be->bdev)
		vhost_blk_bdev_rw(req);
	else
		vhost_blk_file_rw(req);
}

/**
 * vhost_blk_errno_status() - the virtio-blk status for an errno
 * @err: 0 or a negative errno from the backend
 *
 * Return: VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP for -EOPNOTSUPP, or
 * VIRTIO_BLK_S_IOERR.
 */
u8 vhost_blk_errno_status(int err)
{
	if (!err)
		return VIRTIO_BLK_S_OK;
	return err == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR;
}

/* A request that may block, in process context. */
static void vhost_blk_serve_blocking(struct vhost_blk_req *req)
{
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

/**
 * vhost_blk_punt() - serve a request from the workqueue
 * @req: a request that may block: buffered file I/O, fsync, fallocate, a
 *	block device's discard or write-zeroes, or direct I/O that would
 *	have blocked the worker (or failed late for that: req->reissue)
 *
 * Context: the worker.
 */
void vhost_blk_punt(struct vhost_blk_req *req)
{
	struct vhost_blk *blk = req->vq->blk;
	unsigned int idx;

	vhost_blk_stat_add(&req->vq->stats.punted, 1);
	atomic_inc(&req->ref);
	spin_lock(&blk->blocking_lock);
	list_add_tail(&req->blocking, &blk->blocking);
	idx = find_first_bit(blk->blocking_idle, blk->max_blocking);
	if (idx < blk->max_blocking)
		__clear_bit(idx, blk->blocking_idle);
	spin_unlock(&blk->blocking_lock);
	/*
	 * With no idle work item the request waits for one of the busy ones,
	 * which take requests until the list is empty.  A work item that has
	 * just gone idle may still be running: queued again, it runs once
	 * more after that (work items are not reentrant).
	 */
	if (idx < blk->max_blocking)
		queue_work(vhost_blk_wq, &blk->blocking_work[idx].work);
}

/*
 * A work item of one device: serve its blocking requests until none is
 * left, charged to the owner's io and memory cgroups as loop charges its
 * workers to the submitter's (kthread_associate_blkcg(), set_active_memcg()):
 * bios get the owner's blkcg, and page-cache pages and allocations the
 * owner's memcg, whose writeback then goes to the owner's blkcg too.
 */
static void vhost_blk_blocking_work(struct work_struct *work)
{
	struct vhost_blk_blocking *b = container_of(work,
						    struct vhost_blk_blocking,
						    work);
	struct vhost_blk *blk = b->blk;
	struct vhost_blk_req *req;
	struct mem_cgroup *old_memcg;

	old_memcg = set_active_memcg(blk->owner_memcg);
	kthread_associate_blkcg(blk->owner_blkcg);
	for (;;) {
		spin_lock(&blk->blocking_lock);
		req = list_first_entry_or_null(&blk->blocking,
					       struct vhost_blk_req, blocking);
		if (req)
			list_del(&req->blocking);
		else
			__set_bit(b->index, blk->blocking_idle);
		spin_unlock(&blk->blocking_lock);
		if (!req)
			break;
		vhost_blk_serve_blocking(req);
		cond_resched();
	}
	kthread_associate_blkcg(NULL);
	set_active_memcg(old_memcg);
}

/**
 * vhost_blk_blocking_init() - set up a new device's blocking work items
 * @blk: the device, being opened
 *
 * Context: process.
 */
void vhost_blk_blocking_init(struct vhost_blk *blk)
{
	unsigned int i;

	spin_lock_init(&blk->blocking_lock);
	INIT_LIST_HEAD(&blk->blocking);
	blk->max_blocking = READ_ONCE(vhost_blk_max_blocking);
	bitmap_fill(blk->blocking_idle, blk->max_blocking);
	for (i = 0; i < blk->max_blocking; i++) {
		blk->blocking_work[i].blk = blk;
		blk->blocking_work[i].index = i;
		INIT_WORK(&blk->blocking_work[i].work, vhost_blk_blocking_work);
	}
}

/**
 * vhost_blk_blocking_flush() - wait until no work item of the device runs
 * @blk: the device, drained: no request in flight
 *
 * A work item still runs for a moment after its last request completed;
 * the device, and the cgroup references it uses, must outlive that.
 *
 * Context: process.
 */
void vhost_blk_blocking_flush(struct vhost_blk *blk)
{
	unsigned int i;

	for (i = 0; i < blk->max_blocking; i++)
		flush_work(&blk->blocking_work[i].work);
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
	bool discard = req->type == VIRTIO_BLK_T_DISCARD;
	u32 max_seg = discard ? vq->limits.max_discard_seg :
				vq->limits.max_write_zeroes_seg;
	u32 max_sectors = discard ? vq->limits.max_discard_sectors :
				    vq->limits.max_write_zeroes_sectors;
	unsigned int i;

	if (!max_seg)
		max_seg = VHOST_BLK_MAX_DISCARD_SEG;
	if (!payload || payload % sizeof(*req->segs) ||
	    payload > max_seg * sizeof(*req->segs))
		return VIRTIO_BLK_S_IOERR;
	req->bytes = 0;
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
					le32_to_cpu(req->segs[i].num_sectors)) ||
		    (max_sectors &&
		     le32_to_cpu(req->segs[i].num_sectors) > max_sectors))
			return VIRTIO_BLK_S_IOERR;
		req->bytes += (u64)le32_to_cpu(req->segs[i].num_sectors) <<
			      VHOST_BLK_SECTOR_SHIFT;
	}
	return VIRTIO_BLK_S_OK;
}

/* vhost_blk_req_rw(): no pins to spare now; leave the request in the ring. */
#define VHOST_BLK_S_WAIT	U8_MAX

static u8 vhost_blk_req_rw(struct vhost_blk_req *req, u64 rlen, u64 wlen)
{
	struct vhost_blk_vq *vq = req->vq;
	const struct vhost_blk_seg *segs;
	unsigned int nr, pages;
	u64 len, skip;

	if (req->type == VIRTIO_BLK_T_IN) {
		len = wlen - 1;
		segs = vq->segs + vq->nr_readable;
		nr = vq->nr_segs - vq->nr_readable;
		skip = 0;
	} else {
		len = rlen - sizeof(struct virtio_blk_outhdr);
		segs = vq->segs;
		nr = vq->nr_readable;
		skip = sizeof(struct virtio_blk_outhdr);
	}
	if (len % VHOST_BLK_SECTOR_SIZE || len > VHOST_BLK_MAX_DATA_BYTES ||
	    !vhost_blk_range_ok(req->be, req->sector,
				len >> VHOST_BLK_SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	req->data_len = len;
	req->len = min_t(u32, len, VHOST_BLK_PART_BYTES);
	pages = vhost_blk_part_pages(segs, nr, skip, len);
	if (!vhost_blk_pin_get(vq, pages))
		return VHOST_BLK_S_WAIT;
	req->pin_reserved = pages;
	if (pages > VHOST_BLK_INLINE_PAGES) {
		req->pages = kvmalloc_array(pages, sizeof(*req->pages),
					    GFP_KERNEL_ACCOUNT);
		req->bvec = kvmalloc_array(pages, sizeof(*req->bvec),
					   GFP_KERNEL_ACCOUNT);
		if (!req->pages || !req->bvec)
			return VIRTIO_BLK_S_IOERR;
		/* A part's ranges are each at least a page of its own. */
		if (req->type == VIRTIO_BLK_T_IN) {
			req->log = kvmalloc_array(pages, sizeof(*req->log),
						  GFP_KERNEL_ACCOUNT);
			if (!req->log)
				return VIRTIO_BLK_S_IOERR;
		}
	}
	/* vq->segs is the next chain's once this returns: keep a copy. */
	if (req->len < len) {
		req->dsegs = kvmalloc_array(nr, sizeof(*segs),
					    GFP_KERNEL_ACCOUNT);
		if (!req->dsegs)
			return VIRTIO_BLK_S_IOERR;
		memcpy(req->dsegs, segs, nr * sizeof(*segs));
		req->nr_dsegs = nr;
		req->dskip = skip;
	}
	return vhost_blk_req_pin(req, segs, nr, skip) ? VIRTIO_BLK_S_IOERR :
							 VIRTIO_BLK_S_OK;
}

static unsigned int vhost_blk_stat_type(u32 type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return VHOST_BLK_STAT_IN;
	case VIRTIO_BLK_T_OUT:
		return VHOST_BLK_STAT_OUT;
	case VIRTIO_BLK_T_FLUSH:
		return VHOST_BLK_STAT_FLUSH;
	case VIRTIO_BLK_T_GET_ID:
		return VHOST_BLK_STAT_GET_ID;
	case VIRTIO_BLK_T_DISCARD:
		return VHOST_BLK_STAT_DISCARD;
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return VHOST_BLK_STAT_WRITE_ZEROES;
	default:
		return VHOST_BLK_STAT_OTHER;
	}
}

/* Count a request the worker puts on the used ring, and trace it. */
static void vhost_blk_req_account(struct vhost_blk_vq *vq, u16 head,
				  u32 type, u8 status, u64 bytes, u64 start_ns)
{
	struct vhost_blk_vq_stats *st = &vq->stats;
	unsigned int t = vhost_blk_stat_type(type);

	lockdep_assert_held(&vq->mutex);
	vhost_blk_stat_add(&st->reqs[t], 1);
	if (status == VIRTIO_BLK_S_OK)
		vhost_blk_stat_add(&st->bytes[t], bytes);
	else if (status == VIRTIO_BLK_S_UNSUPP)
		vhost_blk_stat_add(&st->unsupp, 1);
	else
		vhost_blk_stat_add(&st->ioerr, 1);
	/* No clock read unless someone listens. */
	if (trace_vhost_blk_req_done_enabled())
		trace_vhost_blk_req_done(vq, head, type, status,
					 start_ns ? ktime_get_ns() - start_ns : 0);
}

/*
 * Log the first @len bytes of @segs, which the device wrote.  Between
 * regions a range of contiguous guest-physical memory may be split.
 */
static void vhost_blk_log_segs(struct vhost_blk_vq *vq,
			       const struct vhost_blk_seg *segs,
			       unsigned int nr, u64 len)
{
	unsigned int i;

	for (i = 0; i < nr && len; i++) {
		u32 chunk = min_t(u64, len, segs[i].len);

		vhost_blk_log_write(vq, segs[i].gpa, chunk);
		len -= chunk;
	}
}

/*
 * Log the data of a completed IN request, decided now: a request taken
 * before VHOST_F_LOG_ALL was set is logged if it completes after.  Its
 * data is logged whatever the status: a failed read may have written
 * part of it.
 */
static void vhost_blk_req_log(struct vhost_blk_req *req)
{
	unsigned int i;

	for (i = 0; i < req->nr_log; i++)
		vhost_blk_log_write(req->vq, req->log[i].gpa, req->log[i].len);
}

/*
 * Serve the request whose chain is in vq->segs: check it, then either
 * complete it at once (errors, GET_ID) or hand it to the backend.
 * Returns false, having done nothing, for a read or write that must wait
 * for pins to be released: the caller leaves it in the ring.
 */
static bool vhost_blk_handle_req(struct vhost_blk_vq *vq, u16 head)
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

	req = vhost_blk_req_alloc(vq);
	if (!req) {
		status = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	req->vq = vq;
	req->be = vq->be;
	req->head = head;
	/* The status byte is the last writable byte; wlen is not 0. */
	req->status_addr = (u8 __user *)st->addr + st->len - 1;
	req->status_gpa = st->gpa + st->len - 1;
	req->pages = req->inline_pages;
	req->bvec = req->inline_bvec;
	req->log = req->inline_log;
	req->type = VHOST_BLK_T_NONE;
	/* The mode a write is acknowledged in is the one it was taken in. */
	req->writethrough = !vq->writeback;
	atomic_set(&req->ref, 1);

	if (rlen < sizeof(hdr) ||
	    vhost_blk_seg_copy(vq->segs, vq->nr_readable, 0, &hdr,
			       sizeof(hdr), false)) {
		status = VIRTIO_BLK_S_IOERR;
		goto complete;
	}
	req->type = vhost_blk32_to_cpu(vq, hdr.type);
	req->sector = vhost_blk64_to_cpu(vq, hdr.sector);
	req->worst = VIRTIO_BLK_S_OK;
	status = VIRTIO_BLK_S_OK;
	/*
	 * More segments than the guest was told it may use: a request the
	 * device fails, as one of a bad length, not a broken ring (QEMU's
	 * virtio-blk breaks the device only past its 1024 descriptors, as
	 * we break the ring).
	 */
	if (vq->seg_max && vq->nr_descs > vq->seg_max + 2) {
		status = VIRTIO_BLK_S_IOERR;
	} else if (req->type == VIRTIO_BLK_T_IN ||
		   req->type == VIRTIO_BLK_T_OUT) {
		if (req->type == VIRTIO_BLK_T_OUT &&
		    vhost_blk_read_only(req->be))
			status = VIRTIO_BLK_S_IOERR;
		else
			status = vhost_blk_req_rw(req, rlen, wlen);
		if (status == VHOST_BLK_S_WAIT) {
			vhost_blk_req_free(req);
			return false;
		}
	}
	/* The data the descriptors carry, without header and status. */
	if (req->type == VIRTIO_BLK_T_IN || req->type == VIRTIO_BLK_T_GET_ID)
		req->bytes = wlen - 1;
	else
		req->bytes = rlen - sizeof(hdr);
	trace_vhost_blk_req_start(vq, head, req->type, req->sector,
				  req->bytes);
	if (trace_vhost_blk_req_done_enabled())
		req->start_ns = ktime_get_ns();
	if (status != VIRTIO_BLK_S_OK)
		goto complete;

	switch (req->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		/* Nothing to move: an empty bio is not for the block layer. */
		if (status != VIRTIO_BLK_S_OK || !req->len)
			break;
		WRITE_ONCE(vq->inflight, vq->inflight + 1);
		vhost_blk_req_submit(req);
		goto submitted;
	case VIRTIO_BLK_T_FLUSH:
		/*
		 * Also when read-only: a block device may have taken writes
		 * before BLKROSET, and the guest was told they are stable
		 * once this completes.  An empty flush passes bio_check_ro().
		 */
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
		/* What was copied, also when the copy faulted part way. */
		vhost_blk_log_segs(vq, vq->segs + vq->nr_readable,
				   vq->nr_segs - vq->nr_readable, i);
		req->bytes = i;
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
	else
		vhost_blk_log_write(vq, st->gpa + st->len - 1, 1);
	vhost_blk_add_used(vq, head, status == VIRTIO_BLK_S_OK ? used_len : 1);
	if (req) {
		vhost_blk_req_account(vq, head, req->type, status, req->bytes,
				      req->start_ns);
		vhost_blk_req_free(req);
	} else {
		vhost_blk_req_account(vq, head, VHOST_BLK_T_NONE, status, 0, 0);
	}
	return true;

submitted:
	/* Drop the building reference: the request may complete now. */
	vhost_blk_req_put(req);
	return true;
}

/*
 * A part of @req completed: start its next one, unless it was the last or
 * a part failed.  Returns false when the request is complete, its worst
 * status in req->status.
 */
static bool vhost_blk_req_next_part(struct vhost_blk_req *req)
{
	req->worst = vhost_blk_worse(req->worst, READ_ONCE(req->status));
	req->status = req->worst;
	req->data_done += req->len;
	if (req->worst != VIRTIO_BLK_S_OK || req->data_done == req->data_len)
		return false;
	req->sector += req->len >> VHOST_BLK_SECTOR_SHIFT;
	req->len = min(req->data_len - req->data_done, VHOST_BLK_PART_BYTES);
	if (vhost_blk_req_pin(req, req->dsegs, req->nr_dsegs,
			      req->dskip + req->data_done)) {
		vhost_blk_req_unpin(req);
		req->status = VIRTIO_BLK_S_IOERR;
		return false;
	}
	atomic_set(&req->ref, 1);
	vhost_blk_req_submit(req);
	vhost_blk_req_put(req);
	return true;
}

/*
 * The IOCB_NOWAIT kiocb of @req's part failed with -EAGAIN once it had
 * started (see vhost_blk_kiocb_complete()): serve the part again from the
 * workqueue, whose submission may block.  The part keeps its pages and its
 * log ranges; its status is still the one it started with.  The guest sees
 * one request: it is traced and counted once, when it completes, but for
 * vqN.punted and vqN.reissued.
 */
static void vhost_blk_req_reissue(struct vhost_blk_req *req)
{
	req->reissue = false;
	vhost_blk_stat_add(&req->vq->stats.reissued, 1);
	atomic_set(&req->ref, 1);
	vhost_blk_punt(req);
	vhost_blk_req_put(req);
}

/* Put the completed requests of @vq on its used ring. */
static void vhost_blk_complete(struct vhost_blk_vq *vq)
{
	struct llist_node *list = llist_reverse_order(llist_del_all(&vq->done));
	struct vhost_blk_req *req, *tmp;

	lockdep_assert_held(&vq->mutex);
	llist_for_each_entry_safe(req, tmp, list, node) {
		u32 len = 1;
		u8 status;

		if (req->reissue) {
			vhost_blk_req_reissue(req);
			continue;
		}
		vhost_blk_req_unbounce(req);
		vhost_blk_req_unpin(req);
		/* Log what the part wrote, then pin the next one. */
		vhost_blk_req_log(req);
		req->nr_log = 0;
		if (req->dsegs && vhost_blk_req_next_part(req))
			continue;
		status = READ_ONCE(req->status);
		if (put_user(status, req->status_addr))
			vq_err(vq, "cannot write status\n");
		else
			vhost_blk_log_write(vq, req->status_gpa, 1);
		if (status == VIRTIO_BLK_S_OK && req->type == VIRTIO_BLK_T_IN)
			len += req->data_len;
		vhost_blk_add_used(vq, req->head, len);
		vhost_blk_req_account(vq, req->head, req->type, status,
				      req->bytes, req->start_ns);
		vhost_blk_req_free(req);
		WRITE_ONCE(vq->inflight, vq->inflight - 1);
	}
}

/**
 * vhost_blk_handle_vq() - serve a queue: the device's handle_kick
 * @vq: the queue
 *
 * Publishes what completed, then takes new requests while the queue runs,
 * the ring has some, and fewer than @vq->num are in flight.
 *
 * Context: the worker.
 */
void vhost_blk_handle_vq(struct vhost_blk_vq *vq)
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
			/* Polling: the worker re-enables notifications. */
			if (vhost_blk_poll_arm(vq))
				break;
			if (unlikely(vhost_blk_enable_notify(vq))) {
				vhost_blk_disable_notify(vq);
				continue;
			}
			break;
		}
		if (head < 0 || vhost_blk_parse_chain(vq, head))
			break;
		vq->last_avail_idx++;
		if (!vhost_blk_handle_req(vq, head)) {
			/* Kicked when pins are released. */
			vq->last_avail_idx--;
			break;
		}
		if (++count >= VHOST_BLK_WEIGHT) {
			/* Let the other queues in; come back to this one. */
			vhost_blk_wake(vq->blk, VHOST_BLK_KICK_BIT(vq->index));
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
