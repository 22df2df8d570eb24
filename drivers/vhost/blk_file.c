// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk device: the regular file backend.
 *
 * Serves requests from a raw image file: asynchronous direct I/O kiocbs
 * on the guest's pinned pages, the page cache through the workqueue,
 * fsync, and hole punching or zeroing with fallocate.  Completion goes
 * back to the request path with vhost_blk_req_put().
 */
#include <linux/fs.h>
#include <linux/falloc.h>

#include "blk.h"

/**
 * vhost_blk_file_sync_rw() - read or write the file synchronously
 * @req: an IN or OUT request with its pages pinned
 *
 * Context: process (the workqueue).
 * Return: 0, -EIO for a short transfer, or the file's errno.
 */
int vhost_blk_file_sync_rw(struct vhost_blk_req *req)
{
	struct file *file = req->be->file;
	loff_t pos = req->sector << VHOST_BLK_SECTOR_SHIFT;
	struct iov_iter iter;
	ssize_t ret;

	if (req->type == VIRTIO_BLK_T_IN) {
		iov_iter_bvec(&iter, READ, req->io_bvec, req->io_nr, req->len);
		ret = vfs_iter_read(file, &iter, &pos, 0);
	} else {
		iov_iter_bvec(&iter, WRITE, req->io_bvec, req->io_nr,
			      req->len);
		/* Writethrough: generic_write_sync() before it returns.
		 * A frozen file system holds the write here, in the
		 * workqueue, until it thaws.
		 */
		vhost_blk_iter_write_start(file);
		ret = vfs_iter_write(file, &iter, &pos,
				     req->writethrough ? RWF_DSYNC : 0);
		vhost_blk_iter_write_end(file);
	}
	if (ret < 0)
		return ret;
	return ret == req->len ? 0 : -EIO;
}

/**
 * vhost_blk_file_discard() - punch or zero ranges of the file
 * @req: a DISCARD or WRITE_ZEROES request with its checked segments
 *
 * Context: process (the workqueue).
 * Return: 0 or the file system's errno.
 */
int vhost_blk_file_discard(struct vhost_blk_req *req)
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
		} else {
			/* Zero without deallocating where the file system
			 * can; a punched hole reads back as zeroes too
			 * (tmpfs).
			 */
			ret = vfs_fallocate(file, FALLOC_FL_ZERO_RANGE |
					    FALLOC_FL_KEEP_SIZE, pos, len);
			if (ret == -EOPNOTSUPP)
				ret = vfs_fallocate(file, punch, pos, len);
		}
		/* Writethrough: the zeroes are a write like any other. */
		if (!ret && req->type == VIRTIO_BLK_T_WRITE_ZEROES &&
		    req->writethrough)
			ret = vfs_fsync_range(file, pos, pos + len - 1, 1);
	}
	return ret;
}

static void vhost_blk_kiocb_complete(struct kiocb *iocb, long ret)
{
	struct vhost_blk_req *req = container_of(iocb, struct vhost_blk_req,
						 iocb);

	if (req->type == VIRTIO_BLK_T_OUT)
		kiocb_end_write(iocb);
	/*
	 * IOCB_NOWAIT can fail late: iomap submits the bios of a first
	 * mapping, the next would block (an ILOCK another task holds), and
	 * the kiocb completes with -EAGAIN after returning -EIOCBQUEUED.
	 * Nothing says how much was done: the worker serves the whole part
	 * again from the workqueue, without IOCB_NOWAIT, as io_uring
	 * reissues (io_rw_should_reissue()).  Once only: -EAGAIN without
	 * IOCB_NOWAIT is an error like any other.
	 */
	if (ret == -EAGAIN && (iocb->ki_flags & IOCB_NOWAIT))
		req->reissue = true;
	else if (ret != req->len)
		req->status = VIRTIO_BLK_S_IOERR;
	vhost_blk_req_put(req);
}

/*
 * kiocb_start_write(), except that under IOCB_NOWAIT a frozen file system
 * fails it instead of putting the worker, and every queue with it, to
 * sleep until the thaw (io_uring's io_kiocb_start_write() does the same).
 */
static bool vhost_blk_kiocb_start_write(struct kiocb *iocb)
{
	struct super_block *sb = file_inode(iocb->ki_filp)->i_sb;

	if (!(iocb->ki_flags & IOCB_NOWAIT)) {
		kiocb_start_write(iocb);
		return true;
	}
	if (!sb_start_write_trylock(sb))
		return false;
	/* As kiocb_start_write(): the completion releases it. */
	__sb_writers_release(sb, SB_FREEZE_WRITE);
	return true;
}

/**
 * vhost_blk_file_aio() - send a direct read or write as an async kiocb
 * @req: an IN or OUT request with its pages pinned, on an O_DIRECT file
 * @nowait: fail instead of blocking
 *
 * Unless it returns -EAGAIN, the request is the kiocb's until it completes.
 * A kiocb sent with @nowait that completes with -EAGAIN, having started,
 * sets req->reissue instead of failing the request: the worker then sends
 * the part again with vhost_blk_punt(), which calls this without @nowait.
 *
 * Context: the worker (@nowait) or the workqueue.
 * Return: 0, or -EAGAIN (nothing done) where the file system would block
 * or is frozen.
 */
int vhost_blk_file_aio(struct vhost_blk_req *req, bool nowait)
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
		iov_iter_bvec(&iter, READ, req->io_bvec, req->io_nr, req->len);
		ret = file->f_op->read_iter(iocb, &iter);
	} else {
		iov_iter_bvec(&iter, WRITE, req->io_bvec, req->io_nr,
			      req->len);
		iocb->ki_flags |= IOCB_WRITE;
		/* Writethrough: FUA, or a sync when the write completes. */
		if (req->writethrough)
			iocb->ki_flags |= IOCB_DSYNC;
		if (!vhost_blk_kiocb_start_write(iocb)) {
			atomic_dec(&req->ref);
			return -EAGAIN;
		}
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

/**
 * vhost_blk_file_rw() - send a read or write to the file
 * @req: an IN or OUT request with its pages pinned
 *
 * Direct I/O goes out as an asynchronous kiocb from the worker.  It is
 * tried with IOCB_NOWAIT where the file supports it: when it would block
 * (a lock, an allocating write), the request goes to the workqueue
 * instead of stalling every queue of the device.  Buffered I/O always
 * goes there.
 *
 * Context: the worker.
 */
void vhost_blk_file_rw(struct vhost_blk_req *req)
{
	if (!(req->be->file->f_flags & O_DIRECT) || !req->be->can_nowait ||
	    vhost_blk_file_aio(req, true) == -EAGAIN)
		vhost_blk_punt(req);
}
