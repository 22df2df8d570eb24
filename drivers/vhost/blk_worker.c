// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk core: the worker thread and kick polling.
 *
 * Owns the device's worker kthread, which runs in the owner's mm and
 * cgroups and serves every queue of the device, the pending bits that
 * wake it, and the wait-queue entries on the kick eventfds.  The worker
 * serves a queue by calling its handle_kick; that is the only call from
 * the core into the device.
 */
#include <linux/cgroup.h>
#include <linux/kthread.h>
#include <linux/mmu_context.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>

#include "blk.h"
#include "blk_trace.h"

/**
 * vhost_blk_wake() - have the worker look at a queue
 * @blk: the device, which has a worker
 * @bit: VHOST_BLK_KICK_BIT() or VHOST_BLK_DONE_BIT() of the queue
 *
 * Context: any.
 */
void vhost_blk_wake(struct vhost_blk *blk, unsigned int bit)
{
	set_bit(bit, &blk->pending);
	wake_up_process(blk->worker);
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
				blk->vqs[i].handle_kick(&blk->vqs[i]);
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

	if (key_to_poll(key) & EPOLLIN) {
		atomic64_inc(&poll->vq->stats.kicks);
		trace_vhost_blk_kick(poll->vq);
		vhost_blk_wake(poll->vq->blk,
			       VHOST_BLK_KICK_BIT(poll->vq->index));
	}
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

/**
 * vhost_blk_poll_start() - listen to a queue's kick eventfd
 * @vq: the queue, whose @vq->kick is set
 *
 * Wakes the worker at once if the eventfd was already signalled.
 *
 * Context: process, with @vq->mutex held.
 */
void vhost_blk_poll_start(struct vhost_blk_vq *vq)
{
	struct vhost_blk_poll *poll = &vq->poll;

	poll->vq = vq;
	init_waitqueue_func_entry(&poll->wait, vhost_blk_poll_wakeup);
	init_poll_funcptr(&poll->table, vhost_blk_poll_queue);
	if (vfs_poll(vq->kick, &poll->table) & EPOLLIN)
		vhost_blk_wake(vq->blk, VHOST_BLK_KICK_BIT(vq->index));
}

/**
 * vhost_blk_poll_stop() - stop listening to a queue's kick eventfd
 * @vq: the queue
 *
 * Once it returns, no kick of @vq wakes the worker any more.
 *
 * Context: process, with @vq->mutex held.
 */
void vhost_blk_poll_stop(struct vhost_blk_vq *vq)
{
	if (vq->poll.wqh) {
		remove_wait_queue(vq->poll.wqh, &vq->poll.wait);
		vq->poll.wqh = NULL;
	}
}

/**
 * vhost_blk_set_owner() - VHOST_SET_OWNER: bind the device to the caller
 * @blk: the device
 *
 * Takes a reference to the caller's mm and starts the device's worker in
 * the caller's cgroups, so that the guest's I/O is charged to the owner.
 *
 * Context: process, with @blk->mutex held.
 * Return: 0, -EBUSY if the device has an owner, or another negative errno.
 */
long vhost_blk_set_owner(struct vhost_blk *blk)
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
	blk->owner_tgid = task_tgid_nr(current);
	blk->worker = worker;
	wake_up_process(worker);
	return 0;

err_worker:
	kthread_stop(worker);
err_mm:
	mmput(mm);
	return ret;
}

/**
 * vhost_blk_worker_stop() - stop the device's worker, if it has one
 * @blk: the device, with nothing left for the worker to do: every queue
 *	drained and no kick polled
 *
 * Context: process, with @blk->mutex held.
 */
void vhost_blk_worker_stop(struct vhost_blk *blk)
{
	lockdep_assert_held(&blk->mutex);
	/* Completers may still be waking the worker: see vhost_blk_req_put(). */
	synchronize_rcu();
	if (blk->worker) {
		kthread_stop(blk->worker);
		blk->worker = NULL;
	}
}
