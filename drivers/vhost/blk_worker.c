// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost-blk core: the worker thread, kick polling and busy polling.
 *
 * Owns the device's worker kthreads, which run in the owner's mm and
 * cgroups, each serving the queues attached to it (all of them, unless
 * the VMM created more workers), the pending bits that wake them, busy
 * polling, and the wait-queue entries on the kick eventfds.  The worker
 * serves a queue by calling its handle_kick; that is the only call from
 * the core into the device.
 */
#include <linux/cgroup.h>
#include <linux/kcov.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mmu_context.h>
#include <linux/nospec.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/sched/clock.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>

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
 * vhost_blk_wake() - have a queue's worker look at it
 * @blk: the device
 * @bit: VHOST_BLK_KICK_BIT() or VHOST_BLK_DONE_BIT() of the queue
 *
 * A worker that runs or polls looks at its pending bits again before it
 * sleeps, so it is woken only when it may be asleep: that saves a wake-up
 * per completed bio under load.  Does nothing while the device has no
 * owner, hence no worker.
 *
 * Context: any, under the RCU read lock or @blk->mutex, which keep the
 * queue's worker alive (see vhost_blk_free_worker()).
 */
void vhost_blk_wake(struct vhost_blk *blk, unsigned int bit)
{
	struct vhost_blk_vq *vq = &blk->vqs[bit % VHOST_BLK_MAX_QUEUES];
	struct vhost_blk_worker *w = READ_ONCE(vq->worker);

	if (!w)
		return;
	set_bit(bit, &w->pending);
	/*
	 * Pairs with the smp_mb() between clearing busy and reading pending
	 * in vhost_blk_worker(): one of us sees the other's store.
	 */
	smp_mb__after_atomic();
	if (!READ_ONCE(w->busy))
		wake_up_process(w->task);
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
	/* A queue that just moved: its new worker serves it next. */
	if (vq->worker->task != current)
		return false;
	if (READ_ONCE(vhost_blk_poll_adaptive)) {
		window = min(vq->poll_ns, budget);
		if (!window && budget)
			vq->idle_since = local_clock();
	}
	if (!window)
		return false;
	vq->poll_end = local_clock() + window;
	__set_bit(vq->index, &vq->worker->poll_armed);
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

/* @w stops polling @vq: notifications on, and a last look at the ring. */
static void vhost_blk_poll_disarm(struct vhost_blk_worker *w,
				  struct vhost_blk_vq *vq)
{
	lockdep_assert_held(&vq->mutex);
	__clear_bit(vq->index, &w->poll_armed);
	/*
	 * A stopped queue's ring is not ours, and restarting it serves it;
	 * a queue that moved is its new worker's, which serves it at once.
	 */
	if (!vhost_blk_vq_running(vq) || vq->worker != w)
		return;
	if (vhost_blk_enable_notify(vq))
		set_bit(VHOST_BLK_KICK_BIT(vq->index), &w->pending);
	else if (READ_ONCE(vhost_blk_poll_adaptive))
		vq->idle_since = local_clock();
}

/* Look once at a polled queue: new buffers, or the end of its window. */
static void vhost_blk_poll_vq(struct vhost_blk_worker *w,
			      struct vhost_blk_vq *vq, bool stop)
{
	__virtio16 idx;

	/* An ioctl holds the lock: it wakes the worker when it is done. */
	if (!mutex_trylock(&vq->mutex))
		return;
	if (stop || vq->worker != w || !vhost_blk_vq_running(vq) ||
	    !vq->busyloop_timeout || local_clock() >= vq->poll_end ||
	    get_user(idx, &vq->avail->idx))
		vhost_blk_poll_disarm(w, vq);
	else if (vhost_blk16_to_cpu(vq, idx) != vq->avail_idx)
		set_bit(VHOST_BLK_KICK_BIT(vq->index), &w->pending);
	mutex_unlock(&vq->mutex);
}

/*
 * Busy-poll the armed queues of @w: their avail rings, and their
 * completions through @w->pending, which vhost_blk_req_put() sets.  Ends
 * when there is work, when every window has ended, or when the CPU is
 * wanted elsewhere (need_resched(), or another task runnable here, as
 * KVM's halt polling checks) or the worker must stop.  The time is the
 * worker's, charged to the owner's cgroups like the rest of its work.
 */
static void vhost_blk_busy_poll(struct vhost_blk_worker *w)
{
	while (w->poll_armed && !READ_ONCE(w->pending)) {
		/* Another task waiting for this CPU may be the guest itself. */
		bool stop = need_resched() || !single_task_running() ||
			    signal_pending(current) || kthread_should_stop();
		unsigned long armed = w->poll_armed;
		unsigned int i;

		for_each_set_bit(i, &armed, VHOST_BLK_MAX_QUEUES)
			vhost_blk_poll_vq(w, &w->blk->vqs[i], stop);
		if (stop)
			break;
		cpu_relax();
	}
}

static int vhost_blk_worker(void *data)
{
	struct vhost_blk_worker *w = data;
	struct vhost_blk *blk = w->blk;

	struct mem_cgroup *old_memcg;

	/*
	 * The guest's I/O is charged to the owner's cgroups (io.max...).
	 * Joined from here, as vhost's kthreads did: moving a task into a
	 * cpuset cgroup needs the mover's right to set the task's scheduling
	 * (security_task_setscheduler()), which an unprivileged owner, such
	 * as libvirt's QEMU, lacks over a kthread.  On failure the creator
	 * stops us.
	 */
	w->join_ret = cgroup_attach_task_all(w->owner, current);
	complete(&w->joined);
	kthread_use_mm(blk->mm);
	/*
	 * A kthread's __GFP_ACCOUNT allocations are charged to nobody unless
	 * it names a memcg: charge the request arrays to the owner's.
	 */
	old_memcg = set_active_memcg(blk->owner_memcg);
	for (;;) {
		unsigned long pending;
		unsigned int i;

		set_current_state(TASK_INTERRUPTIBLE);
		if (kthread_should_stop()) {
			__set_current_state(TASK_RUNNING);
			break;
		}
		WRITE_ONCE(w->busy, false);
		/* Pairs with smp_mb__after_atomic() in vhost_blk_wake(). */
		smp_mb();
		pending = xchg(&w->pending, 0);
		if (!pending) {
			schedule();
			continue;
		}
		__set_current_state(TASK_RUNNING);
		WRITE_ONCE(w->busy, true);
		/* Nothing without CONFIG_KCOV or an owner that traces. */
		kcov_remote_start_common(blk->kcov.id);
		for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
			struct vhost_blk_vq *vq = &blk->vqs[i];

			if (!(pending & (BIT(VHOST_BLK_KICK_BIT(i)) |
					 BIT(VHOST_BLK_DONE_BIT(i)))))
				continue;
			if (vq->idle_since && READ_ONCE(vq->worker) == w)
				vhost_blk_poll_adapt(vq);
			vq->handle_kick(vq);
		}
		cond_resched();
		vhost_blk_busy_poll(w);
		kcov_remote_stop();
	}
	/* Queues still armed were stopped: their rings are not ours now. */
	w->poll_armed = 0;
	set_active_memcg(old_memcg);
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

/*
 * A new worker in the caller's cgroups, so that the guest's I/O and CPU
 * are charged to the owner, and in the owner's mm; in the first free slot
 * of @blk->workers.
 */
static struct vhost_blk_worker *vhost_blk_worker_create(struct vhost_blk *blk)
{
	struct vhost_blk_worker *w;
	unsigned int id;
	int ret;

	lockdep_assert_held(&blk->mutex);
	for (id = 0; id < VHOST_BLK_MAX_WORKERS && blk->workers[id]; id++)
		;
	if (id == VHOST_BLK_MAX_WORKERS)
		return ERR_PTR(-ENOSPC);
	w = kzalloc_obj(*w, GFP_KERNEL_ACCOUNT);
	if (!w)
		return ERR_PTR(-ENOMEM);
	w->blk = blk;
	w->id = id;
	w->busy = true;		/* until it first looks at @pending */
	w->owner = current;
	init_completion(&w->joined);
	w->task = kthread_create(vhost_blk_worker, w, "vhost-blk-%d",
				 current->pid);
	if (IS_ERR(w->task)) {
		ret = PTR_ERR(w->task);
		goto err_free;
	}
	wake_up_process(w->task);
	wait_for_completion(&w->joined);
	w->owner = NULL;
	ret = w->join_ret;
	if (ret)
		goto err_stop;
	blk->workers[id] = w;
	return w;

err_stop:
	kthread_stop(w->task);
err_free:
	kfree(w);
	return ERR_PTR(ret);
}

/* Stop and free @w, which serves no queue and can be woken by nobody. */
static void vhost_blk_worker_free(struct vhost_blk_worker *w)
{
	w->blk->workers[w->id] = NULL;
	kthread_stop(w->task);
	kfree(w);
}

/* The caller's io and memory cgroups, which the guest's work is charged to. */
static void vhost_blk_owner_cgroups_get(struct vhost_blk *blk)
{
#ifdef CONFIG_BLK_CGROUP
	blk->owner_blkcg = task_get_css(current, io_cgrp_id);
#endif
	blk->owner_memcg = get_mem_cgroup_from_mm(blk->mm);
}

/**
 * vhost_blk_owner_cgroups_put() - drop the owner's cgroups
 * @blk: the device, with no worker and no blocking work item running
 *
 * Context: process, with @blk->mutex held.
 */
void vhost_blk_owner_cgroups_put(struct vhost_blk *blk)
{
	if (blk->owner_blkcg)
		css_put(blk->owner_blkcg);
	blk->owner_blkcg = NULL;
	mem_cgroup_put(blk->owner_memcg);
	blk->owner_memcg = NULL;
}

/**
 * vhost_blk_set_owner() - VHOST_SET_OWNER: bind the device to the caller
 * @blk: the device
 *
 * Takes a reference to the caller's mm and starts the device's first
 * worker (id 0) in the caller's cgroups, serving every queue.
 *
 * Context: process, with @blk->mutex held.
 * Return: 0, -EBUSY if the device has an owner, or another negative errno.
 */
long vhost_blk_set_owner(struct vhost_blk *blk)
{
	struct vhost_blk_worker *w;
	struct mm_struct *mm;
	unsigned int i;

	if (blk->mm)
		return -EBUSY;
	mm = get_task_mm(current);
	if (!mm)
		return -EINVAL;
	blk->mm = mm;
	blk->kcov.id = kcov_common_handle();
	vhost_blk_owner_cgroups_get(blk);
	w = vhost_blk_worker_create(blk);
	if (IS_ERR(w)) {
		vhost_blk_owner_cgroups_put(blk);
		blk->mm = NULL;
		mmput(mm);
		return PTR_ERR(w);
	}
	blk->owner_tgid = task_tgid_nr(current);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		mutex_lock(&blk->vqs[i].mutex);
		WRITE_ONCE(blk->vqs[i].worker, w);
		mutex_unlock(&blk->vqs[i].mutex);
	}
	w->attached = VHOST_BLK_MAX_QUEUES;
	return 0;
}

/**
 * vhost_blk_worker_stop() - stop every worker of the device
 * @blk: the device, with nothing left for the workers to do: every queue
 *	drained and no kick polled
 *
 * Context: process, with @blk->mutex held.
 */
void vhost_blk_worker_stop(struct vhost_blk *blk)
{
	unsigned int i;

	lockdep_assert_held(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		mutex_lock(&blk->vqs[i].mutex);
		WRITE_ONCE(blk->vqs[i].worker, NULL);
		mutex_unlock(&blk->vqs[i].mutex);
	}
	/* Completers may still be waking a worker: see vhost_blk_req_put(). */
	synchronize_rcu();
	for (i = 0; i < VHOST_BLK_MAX_WORKERS; i++)
		if (blk->workers[i])
			vhost_blk_worker_free(blk->workers[i]);
}

/**
 * vhost_blk_worker_pid() - the pid of the device's first worker, for fdinfo
 * @blk: the device
 *
 * Context: process, with @blk->mutex held.
 * Return: the pid of the worker with the lowest id, or 0 if none.
 */
pid_t vhost_blk_worker_pid(struct vhost_blk *blk)
{
	unsigned int i;

	lockdep_assert_held(&blk->mutex);
	for (i = 0; i < VHOST_BLK_MAX_WORKERS; i++)
		if (blk->workers[i])
			return task_pid_nr(blk->workers[i]->task);
	return 0;
}

/**
 * vhost_blk_worker_ioctl() - VHOST_NEW_WORKER and VHOST_FREE_WORKER
 * @blk: the device
 * @ioctl: the command
 * @argp: its struct vhost_worker_state
 *
 * Context: process, the owner, with @blk->mutex held.
 * Return: 0, or -EFAULT, -ENOSPC (NEW: every worker slot taken), -ENOMEM,
 * -ENODEV (FREE: no such worker), -EBUSY (FREE: a queue is attached).
 */
long vhost_blk_worker_ioctl(struct vhost_blk *blk, unsigned int ioctl,
			    void __user *argp)
{
	struct vhost_worker_state st;
	struct vhost_blk_worker *w;

	lockdep_assert_held(&blk->mutex);
	if (ioctl == VHOST_NEW_WORKER) {
		w = vhost_blk_worker_create(blk);
		if (IS_ERR(w))
			return PTR_ERR(w);
		st.worker_id = w->id;
		if (copy_to_user(argp, &st, sizeof(st))) {
			vhost_blk_worker_free(w);
			return -EFAULT;
		}
		return 0;
	}
	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (st.worker_id >= VHOST_BLK_MAX_WORKERS)
		return -ENODEV;
	w = blk->workers[array_index_nospec(st.worker_id,
					    VHOST_BLK_MAX_WORKERS)];
	if (!w)
		return -ENODEV;
	if (w->attached)
		return -EBUSY;
	/* Wakers that found it on a queue before it moved are gone after. */
	synchronize_rcu();
	vhost_blk_worker_free(w);
	return 0;
}

/**
 * vhost_blk_attach_worker() - VHOST_ATTACH_VRING_WORKER
 * @vq: the queue
 * @id: the worker that is to serve it
 *
 * The queue may be running.  Its old worker may still serve it once (the
 * handler takes @vq->mutex, so never at the same time as the new one) and
 * drops it from its busy polling; the new worker is kicked to serve it at
 * once, which also re-arms the guest's notifications.
 *
 * Context: process, the owner, with @vq->blk->mutex held.
 * Return: 0, or -ENODEV if there is no worker @id.
 */
long vhost_blk_attach_worker(struct vhost_blk_vq *vq, unsigned int id)
{
	struct vhost_blk *blk = vq->blk;
	struct vhost_blk_worker *w, *old;

	lockdep_assert_held(&blk->mutex);
	if (id >= VHOST_BLK_MAX_WORKERS)
		return -ENODEV;
	w = blk->workers[array_index_nospec(id, VHOST_BLK_MAX_WORKERS)];
	if (!w)
		return -ENODEV;
	mutex_lock(&vq->mutex);
	old = vq->worker;
	WRITE_ONCE(vq->worker, w);
	mutex_unlock(&vq->mutex);
	if (old == w)
		return 0;
	old->attached--;
	w->attached++;
	vhost_blk_wake(blk, VHOST_BLK_KICK_BIT(vq->index));
	vhost_blk_wake(blk, VHOST_BLK_DONE_BIT(vq->index));
	return 0;
}
