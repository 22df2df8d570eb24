// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk device: the block device backend.
 *
 * Turns requests into bios on the guest's pinned pages (zero copy),
 * flushes, and discards or zeroes ranges.  Completion goes back to the
 * request path with vhost_blk_req_put().
 */
#include "blk.h"

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

/**
 * vhost_blk_bdev_rw() - send a read or write to the block device
 * @req: an IN or OUT request with its pages pinned
 *
 * The request is the bio's until it completes; a misaligned one fails at
 * once with VIRTIO_BLK_S_IOERR.
 *
 * Context: the worker.
 */
void vhost_blk_bdev_rw(struct vhost_blk_req *req)
{
	struct block_device *bdev = req->be->bdev;
	/*
	 * A guest's write is waited for, like the kernel's own O_DIRECT
	 * (dio_bio_write_op()): without REQ_SYNC writeback throttling takes
	 * it for background writeback and may put the worker, which serves
	 * every queue, to sleep.  REQ_IDLE: more may follow at once.
	 */
	blk_opf_t opf = req->type == VIRTIO_BLK_T_IN ? REQ_OP_READ :
			REQ_OP_WRITE | REQ_SYNC | REQ_IDLE;
	struct iov_iter iter;
	struct bio *bio;

	/* Writethrough: stable on completion (the block layer turns FUA
	 * into a post-flush where the device has a cache but no FUA).
	 */
	if (req->type == VIRTIO_BLK_T_OUT && req->writethrough)
		opf |= REQ_FUA;

	iov_iter_bvec(&iter, req->type == VIRTIO_BLK_T_IN ? READ : WRITE,
		      req->io_bvec, req->io_nr, req->len);
	/* The block layer needs what direct I/O on the device needs. */
	if (!vhost_blk_bdev_iter_is_aligned(bdev, &iter) ||
	    (req->sector << VHOST_BLK_SECTOR_SHIFT) &
	    (bdev_logical_block_size(bdev) - 1)) {
		req->status = VIRTIO_BLK_S_IOERR;
		return;
	}
	bio = bio_alloc(bdev, 0, opf, GFP_NOIO);
	bio->bi_iter.bi_sector = req->sector;
	vhost_blk_bio_iov_bvec_set(bio, &iter);
	vhost_blk_bio_submit(req, bio);
}

/**
 * vhost_blk_bdev_flush() - send a cache flush to the block device
 * @req: a FLUSH request
 *
 * Context: the worker.
 */
void vhost_blk_bdev_flush(struct vhost_blk_req *req)
{
	vhost_blk_bio_submit(req, bio_alloc(req->be->bdev, 0,
					    REQ_OP_WRITE | REQ_PREFLUSH,
					    GFP_NOIO));
}

/**
 * vhost_blk_bdev_discard() - discard or zero ranges of the block device
 * @req: a DISCARD or WRITE_ZEROES request with its checked segments
 *
 * Synchronous, from the workqueue: blkdev_issue_zeroout() falls back to
 * writing zero pages where the device turns write-zeroes down (a loop
 * device over tmpfs does), and a large range does not hold up the worker.
 * It takes no FUA, so writethrough zeroes are followed by a flush.
 *
 * Context: process (the workqueue).
 * Return: 0 or a negative errno.
 */
int vhost_blk_bdev_discard(struct vhost_blk_req *req)
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
	if (!ret && req->type == VIRTIO_BLK_T_WRITE_ZEROES && req->writethrough)
		ret = blkdev_issue_flush(bdev);
	return ret;
}

