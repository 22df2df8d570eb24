// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk core: guest memory and the split virtqueues.
 *
 * Owns the memory table (VHOST_SET_MEM_TABLE) and the translation of guest
 * addresses into the owner's, the reading of the avail ring and of
 * descriptor chains, the writing of the used ring and the decision to
 * signal, the dirty log (VHOST_SET_LOG_BASE/FD), and the vring ioctls
 * with the drain that stops a queue.  It
 * knows nothing of virtio-blk requests; it calls blk_worker.c only.
 */
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/nospec.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uaccess.h>

#include "blk.h"
#include "blk_trace.h"

/**
 * vhost_blk_vq_err() - stop serving a queue the guest broke
 * @vq: the queue
 * @fmt: why, printf-style
 *
 * The first time, records the reason (fdinfo and the vhost_blk_vq_broken
 * event show it), signals the queue's error eventfd, and keeps the worker
 * from taking requests from @vq until VHOST_SET_VRING_KICK.  The kernel
 * log gets a rate-limited debug message only: a guest must not be able to
 * flood it.
 *
 * Context: process, with @vq->mutex held.
 */
void vhost_blk_vq_err(struct vhost_blk_vq *vq, const char *fmt, ...)
{
	va_list args;

	lockdep_assert_held(&vq->mutex);
	if (vq->broken)
		return;
	va_start(args, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, args);
	va_end(args);
	strreplace(vq->broken_reason, '\n', '\0');
	pr_debug_ratelimited("vq %u: %s\n", vq->index, vq->broken_reason);
	trace_vhost_blk_vq_broken(vq);
	vq->broken = true;
	if (vq->error_ctx)
		vhost_blk_eventfd_signal(vq->error_ctx);
}

/**
 * vhost_blk_vq_running() - whether the worker may take requests from a queue
 * @vq: the queue
 *
 * Context: @vq->mutex held.
 * Return: true when the queue is fully set up, has a backend, and is
 * neither stopped nor broken.
 */
bool vhost_blk_vq_running(struct vhost_blk_vq *vq)
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
		seg->gpa = gpa;
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

/**
 * vhost_blk_seg_copy() - copy between a kernel buffer and guest segments
 * @segs: the segments, in the owner's address space
 * @nr: number of segments
 * @skip: offset of the range in the segments
 * @buf: the kernel buffer
 * @len: length of the range
 * @to_guest: copy @buf to the segments instead of from them
 *
 * Copies the byte range [@skip, @skip + @len) of @segs[0..@nr).
 *
 * Context: process, in the owner's mm.
 * Return: 0, or -EFAULT if the range is not all there or not accessible.
 */
int vhost_blk_seg_copy(const struct vhost_blk_seg *segs, unsigned int nr,
		       u64 skip, void *buf, u32 len, bool to_guest)
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

/* Dirty log -------------------------------------------------------------- */

/*
 * Whether the log bits of the guest-physical range [@gpa, @last] lie in
 * the owner's address space for a bitmap at @base: upstream's
 * log_access_ok().  The VMM sizes the bitmap; we can only check that it
 * could be there, and write it with user accesses that fault cleanly.
 */
static bool vhost_blk_log_access_ok(void __user *base, u64 gpa, u64 last)
{
	u64 first = gpa >> (VHOST_BLK_LOG_PAGE_SHIFT + 3);
	u64 bytes = (last >> (VHOST_BLK_LOG_PAGE_SHIFT + 3)) - first + 1;
	u64 start;

	if (last < gpa ||
	    check_add_overflow((u64)(unsigned long)base, first, &start) ||
	    start != (unsigned long)start || bytes != (unsigned long)bytes)
		return false;
	return access_ok(u64_to_user_ptr(start), bytes);
}

/**
 * vhost_blk_log_mem_ok() - whether a log can cover a memory table
 * @base: the owner's address of the bitmap
 * @mem: the table, or NULL
 *
 * Return: true when the bits of every page of @mem lie in the owner's
 * address space.
 */
bool vhost_blk_log_mem_ok(void __user *base, const struct vhost_blk_mem *mem)
{
	unsigned int i;

	for (i = 0; mem && i < mem->nregions; i++)
		if (!vhost_blk_log_access_ok(base, mem->regions[i].gpa,
					     mem->regions[i].last))
			return false;
	return true;
}

/* The used ring of @num entries, avail event included, as we write it. */
static size_t vhost_blk_used_size(unsigned int num)
{
	return sizeof(struct vring_used) + num * sizeof(struct vring_used_elem) +
	       sizeof(__virtio16);
}

static bool vhost_blk_log_used_ok(void __user *base, u64 addr,
				  unsigned int num)
{
	return !num || vhost_blk_log_access_ok(base, addr,
					       addr + vhost_blk_used_size(num) - 1);
}

/*
 * Set the bits of [@gpa, @gpa + @len) in the bitmap at @base.  Like
 * upstream's set_bit_to_user(), each page of the bitmap is pinned and its
 * bits set atomically, so that the VMM may clear bits concurrently; one
 * pin covers all the bits in that page (128 MiB of guest memory).
 */
static int vhost_blk_log_set(void __user *base, u64 gpa, u64 len)
{
	u64 pfn, last;

	if (!len)
		return 0;
	if (!vhost_blk_log_access_ok(base, gpa, gpa + len - 1))
		return -EFAULT;
	pfn = gpa >> VHOST_BLK_LOG_PAGE_SHIFT;
	last = (gpa + len - 1) >> VHOST_BLK_LOG_PAGE_SHIFT;
	while (pfn <= last) {
		unsigned long byte = (unsigned long)base + pfn / 8;
		unsigned long page_addr = byte & PAGE_MASK;
		/* Guest pages whose bits are in this page of the bitmap. */
		u64 end = round_down(pfn, 8) + (page_addr + PAGE_SIZE - byte) * 8;
		struct page *page;
		void *map;
		int ret;

		ret = pin_user_pages_fast(page_addr, 1, FOLL_WRITE, &page);
		if (ret != 1)
			return ret < 0 ? ret : -EFAULT;
		map = kmap_local_page(page);
		for (; pfn <= last && pfn < end; pfn++) {
			byte = (unsigned long)base + pfn / 8;
			set_bit_le((byte - page_addr) * 8 + pfn % 8, map);
		}
		kunmap_local(map);
		unpin_user_pages_dirty_lock(&page, 1, true);
	}
	return 0;
}

/* A log write faulted: the request completes regardless, as upstream's. */
static void vhost_blk_log_fault(struct vhost_blk_vq *vq, u64 gpa, u64 len,
				int err)
{
	vhost_blk_stat_add(&vq->stats.log_faults, 1);
	trace_vhost_blk_log_fault(vq, gpa, len, err);
	pr_debug_ratelimited("vq %u: cannot log %#llx+%llu: %d\n", vq->index,
			     gpa, len, err);
}

/**
 * vhost_blk_log_on() - whether guest writes are being logged
 * @vq: the queue
 *
 * Context: @vq->mutex held.
 * Return: true while VHOST_F_LOG_ALL is negotiated.
 */
bool vhost_blk_log_on(struct vhost_blk_vq *vq)
{
	return vhost_blk_has_feature(vq, VHOST_F_LOG_ALL);
}

/**
 * vhost_blk_log_write() - log a guest-physical range the device wrote
 * @vq: the queue
 * @gpa: the first byte written
 * @len: how many
 *
 * Does nothing unless VHOST_F_LOG_ALL is on.  Call it after the write and
 * before the used entry that completes it is published; the log eventfd
 * is signalled with that used index (vhost_blk_flush_used()).
 *
 * Context: the worker, with @vq->mutex held.
 */
void vhost_blk_log_write(struct vhost_blk_vq *vq, u64 gpa, u64 len)
{
	int ret;

	lockdep_assert_held(&vq->mutex);
	if (!vhost_blk_log_on(vq) || !len)
		return;
	/* The write must be visible before the bit that tells of it. */
	smp_wmb();
	ret = vhost_blk_log_set(vq->log_base, gpa, len);
	if (ret)
		vhost_blk_log_fault(vq, gpa, len, ret);
	else
		vq->log_signal = true;
}

/*
 * Log a write of @len bytes at @p in the used ring: VHOST_VRING_F_LOG.
 * The ring is at @vq->log_addr in guest-physical memory.
 */
static void vhost_blk_log_used(struct vhost_blk_vq *vq, void __user *p,
			       size_t len)
{
	size_t off = p - (void __user *)vq->used;
	int ret;

	if (!vq->log_used)
		return;
	/* As in vhost_blk_log_write(): the write, then its bit. */
	smp_wmb();
	ret = vhost_blk_log_set(vq->log_base, vq->log_addr + off, len);
	if (ret)
		vhost_blk_log_fault(vq, vq->log_addr + off, len, ret);
	else
		vq->log_signal = true;
}

/* Tell the VMM that the log has new bits. */
static void vhost_blk_log_kick(struct vhost_blk_vq *vq)
{
	if (!vq->log_signal)
		return;
	vq->log_signal = false;
	if (vq->log_ctx)
		vhost_blk_eventfd_signal(vq->log_ctx);
}

/* Ring access ------------------------------------------------------------ */

/**
 * vhost_blk_vq_init_access() - check a queue's rings before serving it
 * @vq: the queue
 *
 * Checks that the rings are in the owner's address space and reads the
 * used index to continue from.  Breaks the queue on failure.
 *
 * Context: the worker, with @vq->mutex held.
 * Return: 0 or -EFAULT.
 */
int vhost_blk_vq_init_access(struct vhost_blk_vq *vq)
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

/**
 * vhost_blk_disable_notify() - ask the guest not to kick
 * @vq: the queue
 *
 * Stops the guest from kicking us while the worker is busy anyway.  With
 * EVENT_IDX the avail event is left where it is: the guest kicks only when
 * it passes it, and vhost_blk_enable_notify() moves it.
 *
 * Context: the worker, with @vq->mutex held.
 */
void vhost_blk_disable_notify(struct vhost_blk_vq *vq)
{
	if (vhost_blk_has_feature(vq, VIRTIO_RING_F_EVENT_IDX))
		return;
	if (put_user(cpu_to_vhost_blk16(vq, VRING_USED_F_NO_NOTIFY),
		     &vq->used->flags)) {
		vq_err(vq, "cannot write used flags\n");
		return;
	}
	vhost_blk_log_used(vq, &vq->used->flags, sizeof(vq->used->flags));
	vhost_blk_log_kick(vq);
}

/**
 * vhost_blk_enable_notify() - ask the guest to kick again
 * @vq: the queue
 *
 * Context: the worker, with @vq->mutex held.
 * Return: true if buffers sneaked in before the guest could see the
 * request, in which case the caller goes on serving.
 */
bool vhost_blk_enable_notify(struct vhost_blk_vq *vq)
{
	bool event_idx = vhost_blk_has_feature(vq, VIRTIO_RING_F_EVENT_IDX);
	__virtio16 idx;
	int ret;

	if (event_idx)
		ret = put_user(cpu_to_vhost_blk16(vq, vq->avail_idx),
			       (__virtio16 __user *)&vq->used->ring[vq->num]);
	else
		ret = put_user(0, &vq->used->flags);
	if (ret) {
		vq_err(vq, "cannot write used flags or avail event\n");
		return false;
	}
	if (event_idx)
		vhost_blk_log_used(vq, &vq->used->ring[vq->num],
				   sizeof(__virtio16));
	else
		vhost_blk_log_used(vq, &vq->used->flags,
				   sizeof(vq->used->flags));
	vhost_blk_log_kick(vq);
	/* Pairs with the barrier the guest puts between avail->idx and kick. */
	smp_mb();
	if (get_user(idx, &vq->avail->idx)) {
		vq_err(vq, "cannot read avail index\n");
		return false;
	}
	return vhost_blk16_to_cpu(vq, idx) != vq->avail_idx;
}

/**
 * vhost_blk_next_head() - read the next head from the avail ring
 * @vq: the queue
 *
 * Does not consume it: the caller moves @vq->last_avail_idx on.
 *
 * Context: the worker, with @vq->mutex held.
 * Return: the head, -EAGAIN when the ring is empty, or another error after
 * breaking the queue.
 */
int vhost_blk_next_head(struct vhost_blk_vq *vq)
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
	vq->nr_descs++;
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

/**
 * vhost_blk_parse_chain() - translate a descriptor chain
 * @vq: the queue
 * @head: the chain's first descriptor
 *
 * Walks the chain at @head, indirect tables included, into @vq->segs:
 * readable segments first, then writable ones (@vq->nr_readable of
 * @vq->nr_segs are readable).  Any error breaks the queue.
 *
 * Context: the worker, with @vq->mutex held.
 * Return: 0 or a negative errno.
 */
int vhost_blk_parse_chain(struct vhost_blk_vq *vq, u16 head)
{
	unsigned int i = head, count = 0;
	struct vring_desc d;
	u16 flags;
	int ret;

	vq->nr_segs = 0;
	vq->nr_readable = 0;
	vq->nr_descs = 0;
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

/**
 * vhost_blk_add_used() - write one entry of the used ring
 * @vq: the queue
 * @head: the request's head
 * @len: bytes written to the request's buffers
 *
 * The entry becomes visible to the guest with vhost_blk_flush_used().
 *
 * Context: the worker, with @vq->mutex held.
 */
void vhost_blk_add_used(struct vhost_blk_vq *vq, u16 head, u32 len)
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
	vhost_blk_log_used(vq, &vq->used->ring[idx], sizeof(elem));
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

/**
 * vhost_blk_flush_used() - publish the used entries, and signal once
 * @vq: the queue
 *
 * Publishes the entries added since the last call and signals the guest
 * if it asked for it.  Signals the log eventfd first when something was
 * logged, the used index included: the VMM learns of the pages of a
 * request no later than the guest learns of its completion.
 *
 * Context: the worker, with @vq->mutex held.
 */
void vhost_blk_flush_used(struct vhost_blk_vq *vq)
{
	if (!vq->used_pending) {
		vhost_blk_log_kick(vq);
		return;
	}
	vq->used_pending = 0;
	/* The entries must be visible before the index that covers them. */
	smp_wmb();
	if (put_user(cpu_to_vhost_blk16(vq, vq->last_used_idx),
		     &vq->used->idx)) {
		vq_err(vq, "cannot write used index\n");
		vhost_blk_log_kick(vq);
		return;
	}
	vhost_blk_log_used(vq, &vq->used->idx, sizeof(vq->used->idx));
	vhost_blk_log_kick(vq);
	if (vq->call_ctx && vhost_blk_need_signal(vq)) {
		vhost_blk_eventfd_signal(vq->call_ctx);
		vhost_blk_stat_add(&vq->stats.signals, 1);
		trace_vhost_blk_signal(vq);
	}
}

/* Control path -------------------------------------------------------------- */

/**
 * vhost_blk_lock_vqs() - take every queue mutex of a device
 * @blk: the device
 *
 * They are all taken under @blk->mutex, which is what makes the order
 * safe; lockdep has too few subclasses to tell 16 queues apart.
 *
 * Context: process, with @blk->mutex held.
 */
void vhost_blk_lock_vqs(struct vhost_blk *blk)
{
	int i;

	lockdep_assert_held(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		mutex_lock_nest_lock(&blk->vqs[i].mutex, &blk->mutex);
}

/**
 * vhost_blk_unlock_vqs() - release what vhost_blk_lock_vqs() took
 * @blk: the device
 */
void vhost_blk_unlock_vqs(struct vhost_blk *blk)
{
	int i;

	for (i = VHOST_BLK_MAX_QUEUES - 1; i >= 0; i--)
		mutex_unlock(&blk->vqs[i].mutex);
}

/**
 * vhost_blk_vq_drain() - wait until a queue has no request in flight
 * @vq: the queue
 *
 * The caller has already made sure the worker takes no new ones (queue
 * stopped, broken or without backend); the worker keeps completing the
 * old ones meanwhile.
 *
 * Context: process, with @vq->blk->mutex held and @vq->mutex not held.
 */
void vhost_blk_vq_drain(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->blk->mutex);
	if (READ_ONCE(vq->worker))
		wait_event(vq->blk->drain_wq, !READ_ONCE(vq->inflight));
}

/**
 * vhost_blk_vq_drain_killable() - vhost_blk_vq_drain(), unless killed
 * @vq: the queue
 *
 * For the ioctls that drain on the VMM's behalf: a backend that never
 * completes must not make the VMM unkillable.  Release keeps waiting
 * with vhost_blk_vq_drain(), as it must before it frees anything.
 *
 * Context: as vhost_blk_vq_drain().
 * Return: 0 once @vq has nothing in flight, or -EINTR when a fatal signal
 * came first; requests may still be in flight then.
 */
int vhost_blk_vq_drain_killable(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->blk->mutex);
	if (READ_ONCE(vq->worker) &&
	    wait_event_killable(vq->blk->drain_wq, !READ_ONCE(vq->inflight)))
		return -EINTR;
	return 0;
}

/*
 * Make @vq quiet for a change of its ring: fail with -EBUSY while it runs,
 * otherwise wait for requests left in flight by a broken ring (-EINTR if
 * killed meanwhile).  Returns with vq->mutex held on success.
 */
static int vhost_blk_vq_quiesce(struct vhost_blk_vq *vq)
{
	int ret;

	mutex_lock(&vq->mutex);
	if (vhost_blk_vq_running(vq)) {
		mutex_unlock(&vq->mutex);
		return -EBUSY;
	}
	if (vq->inflight) {
		mutex_unlock(&vq->mutex);
		ret = vhost_blk_vq_drain_killable(vq);
		if (ret)
			return ret;
		mutex_lock(&vq->mutex);
	}
	return 0;
}

static int vhost_blk_region_cmp(const void *a, const void *b)
{
	const struct vhost_blk_region *ra = a, *rb = b;

	if (ra->gpa < rb->gpa)
		return -1;
	return ra->gpa > rb->gpa;
}

/**
 * vhost_blk_set_mem_table() - VHOST_SET_MEM_TABLE
 * @blk: the device
 * @argp: the table, in the caller's memory
 *
 * Checks the whole table before anything changes, then points every queue
 * at it.  Requests in flight keep the pages they pinned.
 *
 * Context: process, the owner, with @blk->mutex held.
 * Return: 0, or -EFAULT (also: VHOST_F_LOG_ALL is on and the log cannot
 * cover the table), -E2BIG, -EINVAL or -ENOMEM (table unchanged).
 */
long vhost_blk_set_mem_table(struct vhost_blk *blk,
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
	/* While logging, the log must cover the new table (upstream). */
	ret = -EFAULT;
	if ((blk->features & BIT_ULL(VHOST_F_LOG_ALL)) &&
	    !vhost_blk_log_mem_ok(blk->log_base, mem))
		goto err;

	/* Requests in flight keep their pinned pages; new ones see @mem. */
	vhost_blk_lock_vqs(blk);
	old = blk->mem;
	blk->mem = mem;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].mem = mem;
	vhost_blk_unlock_vqs(blk);
	kvfree(old);
	for (i = 0; blk->mm && i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(i));
	return 0;

err:
	kvfree(mem);
	return ret;
}

/**
 * vhost_blk_set_log_base() - VHOST_SET_LOG_BASE
 * @blk: the device
 * @argp: the owner's address of the bitmap, a u64
 *
 * Checked against what is logged now: the memory table when
 * VHOST_F_LOG_ALL is on, the used ring of each queue with
 * VHOST_VRING_F_LOG.  Takes effect for every queue at once, also for
 * requests in flight, which are logged when they complete.
 *
 * Context: process, the owner, with @blk->mutex held.
 * Return: 0, or -EFAULT (the address is not a user address, or the bitmap
 * it starts cannot cover what is logged; nothing changes).
 */
long vhost_blk_set_log_base(struct vhost_blk *blk, u64 __user *argp)
{
	void __user *base;
	long ret = 0;
	u64 p;
	int i;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;
	if ((unsigned long)p != p || !access_ok(u64_to_user_ptr(p), 1))
		return -EFAULT;
	base = u64_to_user_ptr(p);
	if ((blk->features & BIT_ULL(VHOST_F_LOG_ALL)) &&
	    !vhost_blk_log_mem_ok(base, blk->mem))
		return -EFAULT;
	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_blk_vq *vq = &blk->vqs[i];

		if (vq->log_used &&
		    !vhost_blk_log_used_ok(base, vq->log_addr, vq->num))
			ret = -EFAULT;
	}
	if (!ret) {
		blk->log_base = base;
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
			blk->vqs[i].log_base = base;
	}
	vhost_blk_unlock_vqs(blk);
	return ret;
}

/**
 * vhost_blk_set_log_fd() - VHOST_SET_LOG_FD
 * @blk: the device
 * @argp: an int: an eventfd to signal after the log was written, or -1
 *
 * Context: process, the owner, with @blk->mutex held.
 * Return: 0, or -EFAULT, -EBADF (not an open fd) or -EINVAL (not an
 * eventfd); the old eventfd stays then.
 */
long vhost_blk_set_log_fd(struct vhost_blk *blk, int __user *argp)
{
	struct eventfd_ctx *ctx = NULL;
	int fd, i;

	if (get_user(fd, argp))
		return -EFAULT;
	if (fd != -1) {
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	vhost_blk_lock_vqs(blk);
	swap(ctx, blk->log_ctx);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].log_ctx = blk->log_ctx;
	vhost_blk_unlock_vqs(blk);
	if (ctx)
		eventfd_ctx_put(ctx);
	return 0;
}

/*
 * VHOST_SET_VRING_ADDR.  A queue that runs may change only its log flag
 * and address (what QEMU does when migration starts and ends); a change
 * of its rings waits until it is stopped (-EBUSY).
 */
static long vhost_blk_vq_set_addr(struct vhost_blk_vq *vq,
				  const struct vhost_vring_addr *a)
{
	bool log = a->flags & BIT(VHOST_VRING_F_LOG);
	long ret;

	mutex_lock(&vq->mutex);
	/* Upstream checks the log only once the ring's size is known. */
	if (log && !vhost_blk_log_used_ok(vq->log_base, a->log_guest_addr,
					  vq->num)) {
		mutex_unlock(&vq->mutex);
		return -EINVAL;
	}
	if (vq->desc == u64_to_user_ptr(a->desc_user_addr) &&
	    vq->avail == u64_to_user_ptr(a->avail_user_addr) &&
	    vq->used == u64_to_user_ptr(a->used_user_addr))
		goto set_log;
	mutex_unlock(&vq->mutex);
	ret = vhost_blk_vq_quiesce(vq);
	if (ret)
		return ret;
	vq->desc = u64_to_user_ptr(a->desc_user_addr);
	vq->avail = u64_to_user_ptr(a->avail_user_addr);
	vq->used = u64_to_user_ptr(a->used_user_addr);
	vq->initialized = false;
set_log:
	vq->log_used = log;
	vq->log_addr = a->log_guest_addr;
	mutex_unlock(&vq->mutex);
	return 0;
}

/* Take an eventfd context for VHOST_SET_VRING_CALL/ERR; -1 clears. */
static struct eventfd_ctx *vhost_blk_get_ctx(int fd)
{
	if (fd == -1)
		return NULL;
	return eventfd_ctx_fdget(fd);
}

/**
 * vhost_blk_vring_ioctl() - the VHOST_*_VRING_* ioctls
 * @blk: the device
 * @ioctl: the command
 * @argp: its argument, which starts with the queue index
 *
 * Context: process, the owner, with @blk->mutex held.
 * Return: 0, a negative errno as documented for each ioctl, or
 * -ENOIOCTLCMD for a command that is not a vring ioctl.
 */
long vhost_blk_vring_ioctl(struct vhost_blk *blk, unsigned int ioctl,
			   void __user *argp)
{
	struct vhost_vring_state s;
	struct vhost_vring_addr a;
	struct vhost_vring_worker w;
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
		if (vq->log_used &&
		    !vhost_blk_log_used_ok(vq->log_base, vq->log_addr, s.num)) {
			ret = -EINVAL;
			break;
		}
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
		/* Killed: the queue stays stopped; GET again waits again. */
		ret = vhost_blk_vq_drain_killable(vq);
		if (ret)
			return ret;
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
		if (a.flags & ~BIT(VHOST_VRING_F_LOG))
			return -EOPNOTSUPP;
		if ((a.desc_user_addr & (16 - 1)) ||
		    (a.avail_user_addr & (2 - 1)) ||
		    (a.used_user_addr & (4 - 1)) ||
		    (a.log_guest_addr & (4 - 1)))
			return -EINVAL;
		if ((unsigned long)a.desc_user_addr != a.desc_user_addr ||
		    (unsigned long)a.avail_user_addr != a.avail_user_addr ||
		    (unsigned long)a.used_user_addr != a.used_user_addr)
			return -EFAULT;
		ret = vhost_blk_vq_set_addr(vq, &a);
		if (!ret)
			vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(idx));
		return ret;
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
				/* Killed: still stopped or broken, old kick. */
				ret = vhost_blk_vq_drain_killable(vq);
				if (ret) {
					if (kick)
						fput(kick);
					return ret;
				}
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
		vq->broken_reason[0] = '\0';
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
	case VHOST_SET_VRING_BUSYLOOP_TIMEOUT:
		if (copy_from_user(&s, argp, sizeof(s)))
			return -EFAULT;
		if (s.num > VHOST_BLK_MAX_BUSYLOOP_US)
			return -EINVAL;
		/* The worker picks it up the next time the ring empties. */
		mutex_lock(&vq->mutex);
		WRITE_ONCE(vq->busyloop_timeout, s.num);
		break;
	case VHOST_ATTACH_VRING_WORKER:
		if (copy_from_user(&w, argp, sizeof(w)))
			return -EFAULT;
		return vhost_blk_attach_worker(vq, w.worker_id);
	case VHOST_GET_VRING_WORKER:
		mutex_lock(&vq->mutex);
		w.index = idx;
		w.worker_id = vq->worker ? vq->worker->id : 0;
		if (!vq->worker)
			ret = -EINVAL;
		else if (copy_to_user(argp, &w, sizeof(w)))
			ret = -EFAULT;
		break;
	case VHOST_GET_VRING_BUSYLOOP_TIMEOUT:
		mutex_lock(&vq->mutex);
		s.index = idx;
		s.num = vq->busyloop_timeout;
		if (copy_to_user(argp, &s, sizeof(s)))
			ret = -EFAULT;
		break;
	default:
		return -ENOIOCTLCMD;
	}
	mutex_unlock(&vq->mutex);
	/* The queue may be able to run now. */
	vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(idx));
	return ret;
}

/**
 * vhost_blk_vq_init() - put a queue in the state of a freshly opened device
 * @vq: the queue; its mutex, index, device and handler are left alone
 */
void vhost_blk_vq_init(struct vhost_blk_vq *vq)
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
	vq->writeback = false;
	vq->log_base = NULL;
	vq->log_ctx = NULL;
	vq->log_used = false;
	vq->log_signal = false;
	vq->log_addr = 0;
	vq->be = NULL;
	vq->mem = NULL;
	memset(vq->serial, 0, sizeof(vq->serial));
	vq->seg_max = 0;
	memset(&vq->limits, 0, sizeof(vq->limits));
	vq->kick = NULL;
	vq->poll.wqh = NULL;
	vq->call_ctx = NULL;
	vq->error_ctx = NULL;
	vq->stopped = false;
	vq->broken = false;
	vq->broken_reason[0] = '\0';
	vq->inflight = 0;
	vq->used_pending = 0;
	init_llist_head(&vq->done);
	vq->req_cache = NULL;
	vq->nr_req_cache = 0;
	vq->segs = NULL;
	vq->nr_segs = 0;
	vq->nr_readable = 0;
	memset(&vq->stats, 0, sizeof(vq->stats));
	atomic64_set(&vq->stats.kicks, 0);
	vq->worker = NULL;
	vq->busyloop_timeout = vhost_blk_poll_default_us();
	vq->poll_end = 0;
	vq->poll_ns = 0;
	vq->idle_since = 0;
}

/**
 * vhost_blk_vq_cleanup() - drop what the owner gave a queue, and reset it
 * @vq: the queue, stopped and drained, its kick no longer polled and the
 *	worker gone
 */
void vhost_blk_vq_cleanup(struct vhost_blk_vq *vq)
{
	if (vq->kick)
		fput(vq->kick);
	if (vq->call_ctx)
		eventfd_ctx_put(vq->call_ctx);
	if (vq->error_ctx)
		eventfd_ctx_put(vq->error_ctx);
	kvfree(vq->segs);
	vhost_blk_req_cache_free(vq);
	vhost_blk_vq_init(vq);
}
