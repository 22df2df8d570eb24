// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk: in-kernel virtio-blk backend.
 *
 * Skeleton: registers /dev/vhost-blk and implements ownership only.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <uapi/linux/vhost_blk.h>

#define VHOST_BLK_VERSION "0.1.0"

struct vhost_blk {
	struct mutex mutex;	/* serialises ioctls */
	struct mm_struct *mm;	/* owner's mm, protected by mutex */
};

static int vhost_blk_open(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = kzalloc(sizeof(*blk), GFP_KERNEL_ACCOUNT);

	if (!blk)
		return -ENOMEM;
	mutex_init(&blk->mutex);
	f->private_data = blk;
	return 0;
}

static int vhost_blk_release(struct inode *inode, struct file *f)
{
	struct vhost_blk *blk = f->private_data;

	if (blk->mm)
		mmdrop(blk->mm);
	kfree(blk);
	return 0;
}

static long vhost_blk_ioctl(struct file *f, unsigned int ioctl,
			    unsigned long arg)
{
	struct vhost_blk *blk = f->private_data;
	long ret;

	mutex_lock(&blk->mutex);
	if (ioctl == VHOST_SET_OWNER) {
		if (blk->mm) {
			ret = -EBUSY;
		} else {
			mmgrab(current->mm);
			blk->mm = current->mm;
			ret = 0;
		}
	} else if (blk->mm != current->mm) {
		ret = -EPERM;
	} else {
		ret = -ENOIOCTLCMD;
	}
	mutex_unlock(&blk->mutex);
	return ret;
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
module_misc_device(vhost_blk_misc);

MODULE_VERSION(VHOST_BLK_VERSION);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Host kernel accelerator for virtio-blk");
