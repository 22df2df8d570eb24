/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vhost-blk: kernel API differences between the kernels we build against.
 *
 * Every version check of the driver lives here, each next to the upstream
 * change that made it necessary, so that blk.c reads like in-tree code.
 */
#ifndef _VHOST_BLK_COMPAT_H
#define _VHOST_BLK_COMPAT_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/kcov.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/version.h>

/*
 * v7.2, 5a13e296a3e3 (the kcov common-handle refactor: "Store common
 * handle IDs in struct kcov_common_handle_id"): kcov_common_handle()
 * returns that struct, empty without CONFIG_KCOV, where it returned a
 * u64; kcov_remote_start_common() takes it.  Checked against 7.2.13's
 * include/linux/kcov.h.  struct vhost_blk_kcov holds either.
 */
struct vhost_blk_kcov {
#if LINUX_VERSION_CODE >= KERNEL_VERSION(7, 2, 0)
	struct kcov_common_handle_id id;
#else
	u64 id;
#endif
};

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
 * v7.0, 2932ba8d9c99 ("slab: Introduce kmalloc_obj() and family"): typed
 * allocations, which checkpatch now asks for.  Older kernels get the two
 * we use, spelled out.
 */
#ifndef kzalloc_obj
#define kzalloc_obj(P, GFP)	kzalloc(sizeof(P), GFP)
#endif
#ifndef kvzalloc_obj
#define kvzalloc_obj(P, GFP)	kvzalloc(sizeof(P), GFP)
#endif

/*
 * v6.18, 9eab1d4e0d15 ("block: remove bdev_iter_is_aligned") and
 * b475272f03ca ("iov_iter: remove iov_iter_is_aligned"): the block layer
 * now checks user memory as it maps it, and takes the segments of a bvec
 * iterator as they are.  Ours hold a guest's buffers, so check them as
 * the helper did: each segment on the queue's DMA alignment and a whole
 * number of logical blocks long.
 */
static inline bool vhost_blk_bdev_iter_is_aligned(struct block_device *bdev,
						  struct iov_iter *iter)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0)
	unsigned int addr_mask = bdev_dma_alignment(bdev);
	unsigned int len_mask = bdev_logical_block_size(bdev) - 1;
	const struct bio_vec *bv = iter->bvec;
	size_t skip = iter->iov_offset, left = iov_iter_count(iter);

	for (; left; bv++, skip = 0) {
		size_t len = min_t(size_t, bv->bv_len - skip, left);

		if ((len & len_mask) || ((bv->bv_offset + skip) & addr_mask))
			return false;
		left -= len;
	}
	return true;
#else
	return bdev_iter_is_aligned(bdev, iter);
#endif
}

/*
 * Point @bio, allocated without bvecs of its own, at the segments of the
 * bvec iterator @iter, as bio_iov_iter_get_pages() does for such an
 * iterator.  v6.18, 743bf2e0c49c ("block: add size alignment to
 * bio_iov_iter_get_pages"), and v7.3, 14b007e17881 ("block: validate user
 * space vectors during extraction", in 7.2.y as a stable fix), each gave
 * it one more argument, and 7.2 no longer exports it.  From 6.18 on, set
 * the bio up as its bvec path, bio_iov_bvec_set(), does: share the
 * segments, which the bio then does not own (BIO_CLONED).  bio_alloc()
 * zeroed bi_iter, and our iterator starts at its first segment.
 */
static inline void vhost_blk_bio_iov_bvec_set(struct bio *bio,
					      struct iov_iter *iter)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 18, 0)
	WARN_ON_ONCE(bio->bi_max_vecs || iter->iov_offset);
	bio->bi_io_vec = (struct bio_vec *)iter->bvec;
	bio->bi_iter.bi_size = iov_iter_count(iter);
	bio_set_flag(bio, BIO_CLONED);
	iov_iter_advance(iter, bio->bi_iter.bi_size);
#else
	bio_iov_iter_get_pages(bio, iter);
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
