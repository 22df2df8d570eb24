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
 * See Documentation/virt/vhost-blk.rst for the ABI and the design, and
 * blk.h for how the files divide the work.
 *
 * This file owns the device: the ioctls that are not the core's (backend,
 * features, serial), reset and release, the misc device and the module.
 */
#include <linux/file.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "blk.h"
#include "blk_trace.h"

#define VHOST_BLK_VERSION	"0.1.0"

/*
 * The transport and device features this backend serves, and
 * VHOST_F_LOG_ALL: dirty logging, which the VMM sets and clears.
 */
#define VHOST_BLK_FEATURES					\
	(BIT_ULL(VHOST_F_LOG_ALL) |				\
	 BIT_ULL(VIRTIO_F_VERSION_1) |				\
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
	 BIT_ULL(VIRTIO_BLK_F_CONFIG_WCE) |			\
	 BIT_ULL(VIRTIO_BLK_F_MQ) |				\
	 BIT_ULL(VIRTIO_BLK_F_DISCARD) |			\
	 BIT_ULL(VIRTIO_BLK_F_WRITE_ZEROES))

/* Names devices in fdinfo and the trace. */
static atomic_t vhost_blk_ids = ATOMIC_INIT(0);

/*
 * log=0 hides VHOST_F_LOG_ALL from the devices opened afterwards, as a
 * module without dirty logging would: the VMM then blocks live migration.
 */
static bool vhost_blk_log = true;
module_param_named(log, vhost_blk_log, bool, 0644);
MODULE_PARM_DESC(log,
		 "Offer VHOST_F_LOG_ALL (dirty-page logging, live migration) to devices opened afterwards. Default: true");

static void vhost_blk_backend_put(struct vhost_blk_backend *be)
{
	if (!be)
		return;
	fput(be->file);
	kfree(be);
}

/* Point every queue at @be, under every queue mutex. */
static void vhost_blk_set_vq_backends(struct vhost_blk *blk,
				      struct vhost_blk_backend *be)
{
	int i;

	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].be = be;
	vhost_blk_unlock_vqs(blk);
	if (be && blk->mm)
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
			vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(i));
}

/*
 * Point every queue at @be (NULL: none), after the requests of the
 * previous backend completed.  On success consumes @be and drops the old
 * one.  On failure the old backend serves again and @be is the caller's:
 * @killable is the VMM's SET_BACKEND, which a fatal signal may cut short
 * (-EINTR), with requests of the old backend still in flight completing
 * as they would have; or @be's page cache could not be written back.
 * Release and reset wait, whatever it takes.
 */
static int vhost_blk_switch_backend(struct vhost_blk *blk,
				    struct vhost_blk_backend *be,
				    bool killable)
{
	struct vhost_blk_backend *old = blk->be;
	int i, ret;

	lockdep_assert_held(&blk->mutex);
	vhost_blk_set_vq_backends(blk, NULL);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		if (!killable) {
			vhost_blk_vq_drain(&blk->vqs[i]);
			continue;
		}
		ret = vhost_blk_vq_drain_killable(&blk->vqs[i]);
		if (ret)
			goto err_restore;
	}

	/*
	 * The device's bios bypass a block device's page cache, so treat it
	 * as O_DIRECT does (kiocb_invalidate_pages()): write back what other
	 * fds left dirty, lest it land later over the guest's writes, and
	 * drop cached pages of both devices, lest buffered readers see data
	 * from before the guest's writes.
	 */
	if (be && be->bdev) {
		ret = sync_blockdev(be->bdev);
		if (ret)
			goto err_restore;
		invalidate_bdev(be->bdev);
	}
	if (old && old->bdev)
		invalidate_bdev(old->bdev);

	if (old)
		trace_vhost_blk_backend(blk, old, false);
	vhost_blk_set_vq_backends(blk, be);
	blk->be = be;
	vhost_blk_backend_put(old);
	if (be)
		trace_vhost_blk_backend(blk, be, true);
	return 0;

err_restore:
	vhost_blk_set_vq_backends(blk, old);
	return ret;
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
	if (f.fd == -1)
		return vhost_blk_switch_backend(blk, NULL, true);
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
	/*
	 * generic_write_checks() would move every guest write of an
	 * O_APPEND file to its end; refuse it for a block device too, so
	 * that the rule is one rule.
	 */
	if (file->f_flags & O_APPEND)
		goto err_fput;

	ret = -ENOMEM;
	be = kzalloc_obj(*be, GFP_KERNEL_ACCOUNT);
	if (!be)
		goto err_fput;
	be->file = file;
	be->read_only = !(file->f_mode & FMODE_WRITE);
	if (S_ISBLK(inode->i_mode))
		be->bdev = I_BDEV(file->f_mapping->host);
	else
		be->can_nowait = file->f_mode & FMODE_NOWAIT;
	ret = vhost_blk_switch_backend(blk, be, true);
	if (ret)
		goto err_free;
	return 0;

err_free:
	kfree(be);
err_fput:
	fput(file);
	return ret;
}

/* Switch every queue between writeback and writethrough. */
static void vhost_blk_apply_writeback(struct vhost_blk *blk, bool writeback)
{
	int i;

	lockdep_assert_held(&blk->mutex);
	vhost_blk_lock_vqs(blk);
	blk->writeback = writeback;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].writeback = writeback;
	vhost_blk_unlock_vqs(blk);
}

static long vhost_blk_set_features(struct vhost_blk *blk, u64 __user *argp)
{
	u64 features;
	int i;

	if (copy_from_user(&features, argp, sizeof(features)))
		return -EFAULT;
	if (features & ~blk->offered)
		return -EOPNOTSUPP;
	/* Upstream's check: the log must cover the memory table. */
	if ((features & BIT_ULL(VHOST_F_LOG_ALL)) &&
	    !vhost_blk_log_mem_ok(blk->log_base, blk->mem))
		return -EFAULT;
	/*
	 * Requests in flight are logged when they complete if logging is on
	 * then: each queue decides under its mutex.
	 */
	vhost_blk_lock_vqs(blk);
	blk->features = features;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].features = features;
	vhost_blk_unlock_vqs(blk);
	/*
	 * virtio 1.2, 5.2.6.1: a driver that cannot flush is given a
	 * writethrough cache, and so is one that acked CONFIG_WCE without
	 * FLUSH; with CONFIG_WCE the VMM then follows the guest's choice.
	 */
	vhost_blk_apply_writeback(blk, features & BIT_ULL(VIRTIO_BLK_F_FLUSH));
	return 0;
}

/*
 * VHOST_BLK_SET_WRITEBACK: requests taken from now on use the new mode;
 * the guest changes it only by writing the configuration space, and the
 * virtio-blk driver flushes before it turns writeback off.
 */
static long vhost_blk_set_writeback(struct vhost_blk *blk, u32 __user *argp)
{
	u32 writeback;

	if (get_user(writeback, argp))
		return -EFAULT;
	if (writeback > 1 ||
	    (writeback && !(blk->features & BIT_ULL(VIRTIO_BLK_F_FLUSH))))
		return -EINVAL;
	vhost_blk_apply_writeback(blk, writeback);
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

/*
 * The seg_max the VMM put in the configuration space: a guest that keeps
 * to it never builds a request of more than seg_max + 2 descriptors.
 */
static long vhost_blk_set_seg_max(struct vhost_blk *blk, void __user *argp)
{
	u32 seg_max;
	int i;

	if (get_user(seg_max, (u32 __user *)argp))
		return -EFAULT;
	if (seg_max > VHOST_BLK_MAX_SEG_MAX)
		return -EINVAL;
	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].seg_max = seg_max;
	vhost_blk_unlock_vqs(blk);
	return 0;
}

/*
 * The discard and write-zeroes limits the VMM put in the configuration
 * space: a guest that keeps to them never sends more.
 */
static long vhost_blk_set_limits(struct vhost_blk *blk, void __user *argp)
{
	struct vhost_blk_limits l;
	int i;

	if (copy_from_user(&l, argp, sizeof(l)))
		return -EFAULT;
	if (l.max_discard_seg > VHOST_BLK_MAX_DISCARD_SEG ||
	    l.max_write_zeroes_seg > VHOST_BLK_MAX_DISCARD_SEG)
		return -EINVAL;
	vhost_blk_lock_vqs(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		blk->vqs[i].limits = l;
	vhost_blk_unlock_vqs(blk);
	return 0;
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
	vhost_blk_switch_backend(blk, NULL, false);
	vhost_blk_blocking_flush(blk);
	vhost_blk_worker_stop(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++)
		vhost_blk_vq_cleanup(&blk->vqs[i]);
	kvfree(blk->mem);
	blk->mem = NULL;
	blk->features = 0;
	blk->writeback = false;
	blk->log_base = NULL;
	if (blk->log_ctx) {
		eventfd_ctx_put(blk->log_ctx);
		blk->log_ctx = NULL;
	}
	if (blk->mm) {
		vhost_blk_owner_cgroups_put(blk);
		mmput(blk->mm);
		blk->mm = NULL;
	}
	memset(&blk->kcov, 0, sizeof(blk->kcov));
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
		features = blk->offered;
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
	case VHOST_SET_LOG_BASE:
		ret = vhost_blk_set_log_base(blk, argp);
		break;
	case VHOST_SET_LOG_FD:
		ret = vhost_blk_set_log_fd(blk, argp);
		break;
	case VHOST_BLK_SET_BACKEND:
		ret = vhost_blk_set_backend(blk, argp);
		break;
	case VHOST_BLK_SET_SERIAL:
		ret = vhost_blk_set_serial(blk, argp);
		break;
	case VHOST_BLK_SET_SEG_MAX:
		ret = vhost_blk_set_seg_max(blk, argp);
		break;
	case VHOST_BLK_SET_LIMITS:
		ret = vhost_blk_set_limits(blk, argp);
		break;
	case VHOST_NEW_WORKER:
	case VHOST_FREE_WORKER:
		ret = vhost_blk_worker_ioctl(blk, ioctl, argp);
		break;
	case VHOST_BLK_SET_WRITEBACK:
		ret = vhost_blk_set_writeback(blk, argp);
		break;
	case VHOST_BLK_GET_WRITEBACK:
		ret = put_user((u32)blk->writeback, (u32 __user *)argp);
		break;
	case VHOST_SET_VRING_NUM:
	case VHOST_SET_VRING_BASE:
	case VHOST_GET_VRING_BASE:
	case VHOST_SET_VRING_ADDR:
	case VHOST_SET_VRING_KICK:
	case VHOST_SET_VRING_CALL:
	case VHOST_SET_VRING_ERR:
	case VHOST_SET_VRING_BUSYLOOP_TIMEOUT:
	case VHOST_GET_VRING_BUSYLOOP_TIMEOUT:
	case VHOST_ATTACH_VRING_WORKER:
	case VHOST_GET_VRING_WORKER:
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

	blk = kvzalloc_obj(*blk, GFP_KERNEL_ACCOUNT);
	if (!blk)
		return -ENOMEM;
	blk->id = atomic_inc_return(&vhost_blk_ids);
	blk->offered = VHOST_BLK_FEATURES;
	if (!READ_ONCE(vhost_blk_log))
		blk->offered &= ~BIT_ULL(VHOST_F_LOG_ALL);
	mutex_init(&blk->mutex);
	init_waitqueue_head(&blk->drain_wq);
	vhost_blk_blocking_init(blk);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_blk_vq *vq = &blk->vqs[i];

		vq->blk = blk;
		vq->index = i;
		vq->handle_kick = vhost_blk_handle_vq;
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

static const char * const vhost_blk_stat_names[VHOST_BLK_STAT_TYPES] = {
	[VHOST_BLK_STAT_IN]		= "in",
	[VHOST_BLK_STAT_OUT]		= "out",
	[VHOST_BLK_STAT_FLUSH]		= "flush",
	[VHOST_BLK_STAT_GET_ID]		= "get_id",
	[VHOST_BLK_STAT_DISCARD]	= "discard",
	[VHOST_BLK_STAT_WRITE_ZEROES]	= "write_zeroes",
	[VHOST_BLK_STAT_OTHER]		= "other",
};

/* The device-wide part of fdinfo. */
static void vhost_blk_show_device(struct seq_file *m, struct vhost_blk *blk)
{
	struct vhost_blk_backend *be = blk->be;

	lockdep_assert_held(&blk->mutex);
	seq_printf(m, "owner_pid:\t%d\n", blk->mm ? blk->owner_tgid : 0);
	seq_printf(m, "worker_pid:\t%d\n", vhost_blk_worker_pid(blk));
	seq_printf(m, "features:\t%#llx\n", blk->features);
	seq_printf(m, "writeback:\t%d\n", blk->writeback);
	seq_printf(m, "mem_regions:\t%u\n", blk->mem ? blk->mem->nregions : 0);
	seq_printf(m, "log_all:\t%d\n",
		   !!(blk->features & BIT_ULL(VHOST_F_LOG_ALL)));
	seq_printf(m, "log_fd:\t%d\n", !!blk->log_ctx);
	/* Set on every queue at once, under the device mutex too. */
	seq_printf(m, "seg_max:\t%u\n", blk->vqs[0].seg_max);
	seq_printf(m, "discard_limits:\t%u %u\n",
		   blk->vqs[0].limits.max_discard_sectors,
		   blk->vqs[0].limits.max_discard_seg);
	seq_printf(m, "write_zeroes_limits:\t%u %u\n",
		   blk->vqs[0].limits.max_write_zeroes_sectors,
		   blk->vqs[0].limits.max_write_zeroes_seg);
	if (!be) {
		seq_puts(m, "backend:\tnone\n");
		return;
	}
	seq_puts(m, "backend:\t");
	seq_file_path(m, be->file, "\n");
	seq_putc(m, '\n');
	seq_printf(m, "backend_type:\t%s\n", be->bdev ? "bdev" : "file");
	seq_printf(m, "read_only:\t%d\n",
		   be->read_only || (be->bdev && bdev_read_only(be->bdev)));
}

/*
 * The per-queue part: read without any lock, so that it shows what a
 * queue holds even while an ioctl waits for it to drain.
 */
static void vhost_blk_show_vq(struct seq_file *m, struct vhost_blk_vq *vq)
{
	struct vhost_blk_vq_stats *st = &vq->stats;
	char reason[VHOST_BLK_REASON_LEN];
	const char *state;
	unsigned int i;

	if (READ_ONCE(vq->broken))
		state = "broken";
	else if (READ_ONCE(vq->stopped))
		state = "stopped";
	else if (READ_ONCE(vq->be) && READ_ONCE(vq->kick) &&
		 READ_ONCE(vq->desc) && READ_ONCE(vq->mem))
		state = "running";
	else
		state = "setup";
	seq_printf(m, "vq%u.state:\t%s\n", vq->index, state);
	if (state[0] == 'b') {
		memcpy(reason, vq->broken_reason, sizeof(reason));
		reason[sizeof(reason) - 1] = '\0';
		seq_printf(m, "vq%u.broken_reason:\t%s\n", vq->index, reason);
	}
	seq_printf(m, "vq%u.size:\t%u\n", vq->index, READ_ONCE(vq->num));
	seq_printf(m, "vq%u.last_avail_idx:\t%u\n", vq->index,
		   READ_ONCE(vq->last_avail_idx));
	seq_printf(m, "vq%u.last_used_idx:\t%u\n", vq->index,
		   READ_ONCE(vq->last_used_idx));
	seq_printf(m, "vq%u.inflight:\t%u\n", vq->index,
		   READ_ONCE(vq->inflight));
	for (i = 0; i < VHOST_BLK_STAT_TYPES; i++)
		seq_printf(m, "vq%u.reqs_%s:\t%llu\n", vq->index,
			   vhost_blk_stat_names[i], READ_ONCE(st->reqs[i]));
	for (i = 0; i < VHOST_BLK_STAT_TYPES; i++)
		seq_printf(m, "vq%u.bytes_%s:\t%llu\n", vq->index,
			   vhost_blk_stat_names[i], READ_ONCE(st->bytes[i]));
	seq_printf(m, "vq%u.ioerr:\t%llu\n", vq->index, READ_ONCE(st->ioerr));
	seq_printf(m, "vq%u.unsupp:\t%llu\n", vq->index,
		   READ_ONCE(st->unsupp));
	seq_printf(m, "vq%u.kicks:\t%lld\n", vq->index,
		   (long long)atomic64_read(&st->kicks));
	seq_printf(m, "vq%u.signals:\t%llu\n", vq->index,
		   READ_ONCE(st->signals));
	seq_printf(m, "vq%u.punted:\t%llu\n", vq->index,
		   READ_ONCE(st->punted));
	seq_printf(m, "vq%u.reissued:\t%llu\n", vq->index,
		   READ_ONCE(st->reissued));
	seq_printf(m, "vq%u.bounced:\t%llu\n", vq->index,
		   READ_ONCE(st->bounced));
	seq_printf(m, "vq%u.cached_reqs:\t%u\n", vq->index,
		   READ_ONCE(vq->nr_req_cache));
	seq_printf(m, "vq%u.log_used:\t%d\n", vq->index,
		   READ_ONCE(vq->log_used));
	seq_printf(m, "vq%u.log_faults:\t%llu\n", vq->index,
		   READ_ONCE(st->log_faults));
}

/*
 * /proc/<pid>/fdinfo/<fd>: one "key:\tvalue" per line, documented in
 * Documentation/virt/vhost-blk.rst.  Queues never set up are left out.
 */
static void vhost_blk_show_fdinfo(struct seq_file *m, struct file *f)
{
	struct vhost_blk *blk = f->private_data;
	int i;

	seq_printf(m, "vhost_blk_id:\t%u\n", blk->id);
	/* An ioctl may hold the mutex for as long as a drain takes. */
	if (mutex_trylock(&blk->mutex)) {
		vhost_blk_show_device(m, blk);
		mutex_unlock(&blk->mutex);
	} else {
		seq_puts(m, "busy:\t1\n");
	}
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vhost_blk_vq *vq = &blk->vqs[i];

		if (READ_ONCE(vq->num) || READ_ONCE(vq->kick))
			vhost_blk_show_vq(m, vq);
	}
}

static const struct file_operations vhost_blk_fops = {
	.owner		= THIS_MODULE,
	.open		= vhost_blk_open,
	.release	= vhost_blk_release,
	.show_fdinfo	= vhost_blk_show_fdinfo,
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

	vhost_blk_req_cachep = KMEM_CACHE(vhost_blk_req, SLAB_ACCOUNT);
	if (!vhost_blk_req_cachep)
		return -ENOMEM;
	/* Each device bounds its own share (max_blocking), not the queue. */
	vhost_blk_wq = alloc_workqueue("vhost-blk", WQ_UNBOUND,
				       WQ_UNBOUND_MAX_ACTIVE);
	if (!vhost_blk_wq) {
		ret = -ENOMEM;
		goto err_cache;
	}
	ret = misc_register(&vhost_blk_misc);
	if (ret)
		goto err_wq;
	return 0;

err_wq:
	destroy_workqueue(vhost_blk_wq);
err_cache:
	kmem_cache_destroy(vhost_blk_req_cachep);
	return ret;
}
module_init(vhost_blk_init);

static void __exit vhost_blk_exit(void)
{
	misc_deregister(&vhost_blk_misc);
	destroy_workqueue(vhost_blk_wq);
	/* Every device is released: its requests are freed. */
	kmem_cache_destroy(vhost_blk_req_cachep);
}
module_exit(vhost_blk_exit);

MODULE_VERSION(VHOST_BLK_VERSION);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("The vhost-blk developers");
MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
