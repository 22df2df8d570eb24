// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk core: the worker thread, kick polling and busy polling.
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
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>

#include "blk.h"
#include "blk_trace.h"

/*
 * The module-wide defaults of busy polling, which a VMM may override per
 * queue with VHOST_SET_VRING_BUSYLOOP_TIMEOUT.  Off by default: polling
 * buys latency with a CPU that spins while the guest is idle, a trade only
 * the host's administrator can make.
 */
static unsigned int vhost_blk_poll_us;

static int vhost_blk_poll_us_set(const char *val,
				 const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 0, VHOST_BLK_MAX_BUSYLOOP_US);
}

static const struct kernel_param_ops vhost_blk_poll_us_ops = {
	.set	= vhost_blk_poll_us_set,
	.get	= param_get_uint,
};

module_param_cb(poll_us, &vhost_blk_poll_us_ops, &vhost_blk_poll_us, 0644);
MODULE_PARM_DESC(poll_us,
		 "Busy-poll budget of a new queue in microseconds, at most "
		 __stringify(VHOST_BLK_MAX_BUSYLOOP_US) ". Default: 0 (off)");

static bool vhost_blk_poll_adaptive;
module_param_named(poll_adaptive, vhost_blk_poll_adaptive, bool, 0644);
MODULE_PARM_DESC(poll_adaptive,
		 "Adapt each queue's poll window between 0 and its budget to how soon work comes. Default: false");

/*
 * The adaptive window starts here, doubles while the work the queue slept
 * for came within the budget, and halves when it did not: QEMU's
 * AioContext does the same with poll-grow and poll-shrink.
 */
#define VHOST_BLK_POLL_START_NS	4000

/**
 * vhost_blk_poll_default_us() - the busy-poll budget of a new queue
 *
 * Return: the poll_us module parameter.
 */
u32 vhost_blk_poll_default_us(void)
{
	return READ_ONCE(vhost_blk_poll_us);
}

/**
 * vhost_blk_wake() - have the worker look at a queue
 * @blk: the device, which has a worker
 * @bit: VHOST_BLK_KICK_BIT() or VHOST_BLK_DONE_BIT() of the queue
 *
 * A worker that runs or polls looks at @blk->pending again before it
 * sleeps, so it is woken only when it may be asleep: that saves a wake-up
 * per completed bio under load.
 *
 * Context: any.
 */
void vhost_blk_wake(struct vhost_blk *blk, unsigned int bit)
{
	set_bit(bit, &blk->pending);
	/*
	 * Pairs with the smp_mb() between clearing worker_busy and reading
	 * pending in vhost_blk_worker(): one of us sees the other's store.
	 */
	smp_mb__after_atomic();
	if (!READ_ONCE(blk->worker_busy))
		wake_up_process(blk->worker);
}

/**
 * vhost_blk_poll_arm() - keep a queue's notifications off and poll it
 * @vq: the queue, whose avail ring just ran empty
 *
 * Called by the device's handler instead of re-enabling notifications.
 * The worker then polls @vq's avail ring and its completions until the
 * window ends, and re-enables the notifications itself.
 *
 * Context: the worker, with @vq->mutex held.
 * Return: true if the worker polls @vq; false if the handler is to
 * re-enable its notifications now.
 */
bool vhost_blk_poll_arm(struct vhost_blk_vq *vq)
{
	u64 budget = (u64)vq->busyloop_timeout * NSEC_PER_USEC;
	u64 window = budget;

	lockdep_assert_held(&vq->mutex);
	if (READ_ONCE(vhost_blk_poll_adaptive)) {
		window = min(vq->poll_ns, budget);
		if (!window && budget)
			vq->idle_since = local_clock();
	}
	if (!window)
		return false;
	vq->poll_armed = true;
	vq->poll_end = local_clock() + window;
	__set_bit(vq->index, &vq->blk->poll_armed);
	return true;
}

/*
 * Adaptive polling: @vq slept since @vq->idle_since.  Had a window that
 * long caught its work, grow the window; if not, shrink it.
 */
static void vhost_blk_poll_adapt(struct vhost_blk_vq *vq)
{
	u64 budget = (u64)READ_ONCE(vq->busyloop_timeout) * NSEC_PER_USEC;
	u64 slept = local_clock() - vq->idle_since;

	vq->idle_since = 0;
	if (!budget)
		vq->poll_ns = 0;
	else if (slept <= budget)
		vq->poll_ns = clamp_t(u64, vq->poll_ns * 2,
				      VHOST_BLK_POLL_START_NS, budget);
	else
		vq->poll_ns /= 2;
}

/* Stop polling @vq: notifications on, and a last look at the ring. */
static void vhost_blk_poll_disarm(struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->mutex);
	vq->poll_armed = false;
	__clear_bit(vq->index, &vq->blk->poll_armed);
	/* A stopped queue's ring is not ours; a restart notifies again. */
	if (!vhost_blk_vq_running(vq))
		return;
	if (vhost_blk_enable_notify(vq))
		set_bit(VHOST_BLK_KICK_BIT(vq->index), &vq->blk->pending);
	else if (READ_ONCE(vhost_blk_poll_adaptive))
		vq->idle_since = local_clock();
}

/* Look once at a polled queue: new buffers, or the end of its window. */
static void vhost_blk_poll_vq(struct vhost_blk_vq *vq, bool stop)
{
	__virtio16 idx;

	/* An ioctl holds the lock: it wakes the worker when it is done. */
	if (!mutex_trylock(&vq->mutex))
		return;
	if (stop || !vhost_blk_vq_running(vq) || !vq->busyloop_timeout ||
	    local_clock() >= vq->poll_end || get_user(idx, &vq->avail->idx))
		vhost_blk_poll_disarm(vq);
	else if (vhost_blk16_to_cpu(vq, idx) != vq->avail_idx)
		set_bit(VHOST_BLK_KICK_BIT(vq->index), &vq->blk->pending);
	mutex_unlock(&vq->mutex);
}

/*
 * Busy-poll the armed queues of @blk: their avail rings, and their
 * completions through @blk->pending, which vhost_blk_req_put() sets.  Ends
 * when there is work, when every window has ended, or when the CPU is
 * wanted elsewhere or the worker must stop.  The time is the worker's,
 * charged to the owner's cgroups like the rest of its work.
 */
static void vhost_blk_busy_poll(struct vhost_blk *blk)
{
	while (blk->poll_armed && !READ_ONCE(blk->pending)) {
		bool stop = need_resched() || signal_pending(current) ||
			    kthread_should_stop();
		unsigned long armed = blk->poll_armed;
		unsigned int i;

		for_each_set_bit(i, &armed, VHOST_BLK_MAX_QUEUES)
			vhost_blk_poll_vq(&blk->vqs[i], stop);
		if (stop)
			break;
		cpu_relax();
	}
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
		WRITE_ONCE(blk->worker_busy, false);
		/* Pairs with smp_mb__after_atomic() in vhost_blk_wake(). */
		smp_mb();
		pending = xchg(&blk->pending, 0);
		if (!pending) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		WRITE_ONCE(blk->worker_busy, true);
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
			struct vhost_blk_vq *vq = &blk->vqs[i];

			if (!(pending & (BIT(VHOST_BLK_KICK_BIT(i)) |
					 BIT(VHOST_BLK_DONE_BIT(i)))))
				continue;
			if (vq->idle_since)
				vhost_blk_poll_adapt(vq);
			vq->handle_kick(vq);
		}
		cond_resched();
		vhost_blk_busy_poll(blk);
	}
	/* Queues still armed were stopped: their rings are not ours now. */
	blk->poll_armed = 0;
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
