/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vhost-blk: the structures every part of the driver shares, and the rules
 * that protect them.
 *
 * The driver is one module in two layers.  The core implements the vhost
 * uapi of <linux/vhost.h>: the memory table and the split rings
 * (blk_vq.c), the worker threads, kick and busy polling (blk_worker.c).
 * The virtio-blk device sits on top: the request path (blk_req.c), the block
 * device and file backends (blk_bdev.c, blk_file.c), and the device's
 * ioctls, misc device and module glue (blk.c).  Device code calls the core;
 * the core calls the device only through vhost_blk_vq.handle_kick.
 *
 * Locking, once for the whole driver:
 * - vhost_blk.mutex serialises the ioctls of one device and protects the
 *   device-wide fields;
 * - vhost_blk_vq.mutex protects one queue; the worker holds it while it
 *   serves the queue, ioctls take it inside vhost_blk.mutex, and only a
 *   holder of vhost_blk.mutex takes more than one queue mutex at a time
 *   (vhost_blk_lock_vqs());
 * - completions reach the worker through the lock-free vhost_blk_vq.done
 *   list and vhost_blk_worker.pending, from any context;
 * - a queue moves to another worker under vhost_blk.mutex and its own
 *   mutex (vhost_blk_attach_worker()); wakers find its worker with
 *   READ_ONCE() under RCU, and a worker is freed, detached from every
 *   queue, only after synchronize_rcu();
 * - a backend is immutable once attached and outlives every request that
 *   points to it: the device drains every queue before it drops one;
 * - vhost_blk.blocking_lock (a spinlock, taken from the worker and the
 *   workqueue) protects the device's list of requests that may block and
 *   the idle map of its work items (vhost_blk_punt()).
 */
#ifndef _VHOST_BLK_H
#define _VHOST_BLK_H

#undef pr_fmt
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/llist.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/uio.h>
#include <linux/virtio_byteorder.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <uapi/linux/vhost_blk.h>

#include "blk_compat.h"

/*
 * Requests taken from one queue before the worker moves on to the next:
 * a busy queue must not starve the others of the same device.
 */
#define VHOST_BLK_WEIGHT	256

/*
 * Memory regions in one table.  QEMU uses a handful; the limit bounds the
 * allocation a VMM can make us do and the cost of a lookup.
 */
#define VHOST_BLK_MAX_MEM_REGIONS	64

/*
 * Entries of one indirect descriptor table.  Linux guests use at most
 * seg_max + 2; the bound keeps a hostile table from making us walk 256K
 * entries per request.
 */
#define VHOST_BLK_MAX_INDIRECT	1024

/*
 * Guest memory segments of one request after translation: a descriptor
 * may map to several segments where it spans memory regions.
 */
#define VHOST_BLK_MAX_SEGS	2048

/*
 * Data bytes of one part of a read or write.  A larger request (OVMF puts
 * up to 1 GiB in one descriptor, whatever seg_max and size_max say) is
 * served part after part, each pinned, submitted and unpinned before the
 * next, so that what one request pins stays bounded.  8 MiB was the limit
 * of a whole request before; the block layer splits a part into many bios
 * anyway, and pinning, not the parts, is what a large request costs.
 */
#define VHOST_BLK_PART_BYTES	(8U << 20)

/*
 * Largest data length of one read or write: the used length, data + 1,
 * is a 32-bit field.
 */
#define VHOST_BLK_MAX_DATA_BYTES	(U32_MAX & ~(VHOST_BLK_SECTOR_SIZE - 1))

/*
 * Bounds of the max_pinned_pages module parameter.  The least is what the
 * worst part may need (VHOST_BLK_PART_BYTES of pages plus two partial pages
 * per segment); the most keeps one device well below the 2^21 pins of one
 * page at which its refcount overflows (GUP_PIN_COUNTING_BIAS is 1024).
 */
#define VHOST_BLK_MIN_PINNED_PAGES	8192
#define VHOST_BLK_MAX_PINNED_PAGES	524288	/* 2^19 */

/* Pages described inline in a request; larger requests allocate. */
#define VHOST_BLK_INLINE_PAGES	8

/*
 * Completed requests a queue keeps for its next ones: a queue at depth 64
 * or less allocates no request once it runs.  A request is 568 bytes on
 * x86-64, from a slab cache of their own (vhost_blk_req_cachep: 7 in a
 * page, where kmalloc-1024 held 4), so at most 36 KiB a queue, charged to
 * the owner.
 */
#define VHOST_BLK_REQ_CACHE	64

/* Room for why a queue broke, as fdinfo and the trace show it. */
#define VHOST_BLK_REASON_LEN	64

#define VHOST_BLK_SECTOR_SHIFT	9
#define VHOST_BLK_SECTOR_SIZE	BIT(VHOST_BLK_SECTOR_SHIFT)

/*
 * Dirty log: one bit per page of this size of guest-physical memory, as
 * upstream vhost's VHOST_PAGE_SIZE; bit (gpa / 4096) % 8 of byte
 * gpa / 4096 / 8 of the owner's bitmap.
 */
#define VHOST_BLK_LOG_PAGE_SIZE	4096ULL
#define VHOST_BLK_LOG_PAGE_SHIFT	12

/* Workers one device may have: enough for a worker per queue. */
#define VHOST_BLK_MAX_WORKERS	VHOST_BLK_MAX_QUEUES
/* Most work items of one device serving requests that may block at once. */
#define VHOST_BLK_MAX_BLOCKING	64

/* Bits of vhost_blk_worker.pending: a queue was kicked, or has completions. */
#define VHOST_BLK_KICK_BIT(i)	(i)
#define VHOST_BLK_DONE_BIT(i)	(VHOST_BLK_MAX_QUEUES + (i))

struct vhost_blk_region {
	u64 gpa;		/* first guest-physical address */
	u64 last;		/* last guest-physical address */
	u64 uaddr;		/* owner's address of @gpa */
};

/* An immutable memory table, sorted by guest-physical address. */
struct vhost_blk_mem {
	unsigned int nregions;
	struct vhost_blk_region regions[];
};

/*
 * What a request is served from.  Immutable once attached; queues hold a
 * pointer only while the device holds the reference, and the device drains
 * every queue before it drops the backend.
 */
struct vhost_blk_backend {
	struct file *file;
	struct block_device *bdev;	/* NULL for a regular file */
	bool read_only;
	bool can_nowait;		/* async kiocbs with IOCB_NOWAIT */
};

/*
 * One segment of guest memory in the owner's address space, and where it
 * is in the guest's: the dirty log needs the guest-physical address.
 */
struct vhost_blk_seg {
	void __user *addr;
	u64 gpa;
	u32 len;
};

/* A guest-physical range the device wrote, for the dirty log. */
struct vhost_blk_log_range {
	u64 gpa;
	u64 len;
};

struct vhost_blk_vq;
struct vhost_blk;

/*
 * A worker kthread: VHOST_SET_OWNER creates worker 0 and attaches every
 * queue to it, VHOST_NEW_WORKER more, VHOST_ATTACH_VRING_WORKER moves a
 * queue to another, VHOST_FREE_WORKER frees one that serves no queue.  It
 * runs in the owner's mm and in the cgroups of the caller that created it.
 * @id and @task are immutable; @attached is under vhost_blk.mutex; the
 * rest are the worker's own but for @pending, which anyone sets.
 */
struct vhost_blk_worker {
	struct vhost_blk *blk;
	struct task_struct *task;
	unsigned int id;		/* index in vhost_blk.workers */
	unsigned int attached;		/* queues whose worker this is */
	unsigned long pending;		/* atomic bitops: VHOST_BLK_*_BIT */
	/*
	 * The worker runs or polls, and will look at @pending again before
	 * it sleeps: wakers need not wake it.  See vhost_blk_wake() for the
	 * barriers.
	 */
	bool busy;
	unsigned long poll_armed;	/* queues it busy-polls */
	/*
	 * Set by vhost_blk_worker_create() before the worker runs, which
	 * joins @owner's cgroups first and reports how in @join_ret.  The
	 * creator waits for @joined, so @owner is alive while the worker
	 * reads it, and clears it after.
	 */
	struct task_struct *owner;
	struct completion joined;
	int join_ret;
};

/*
 * A request lives from the moment the worker takes its head from the avail
 * ring until the worker puts it on the used ring.  In between it belongs to
 * the backend (bio, kiocb or work item); the backend hands it back with
 * vhost_blk_req_put(), from any context, and only the worker frees it.
 */
struct vhost_blk_req {
	struct llist_node node;		/* on vq->done once completed */
	struct vhost_blk_vq *vq;
	struct vhost_blk_backend *be;
	u16 head;
	u32 type;
	u8 status;
	bool writethrough;		/* OUT, WRITE_ZEROES: make it stable */
	u8 __user *status_addr;
	u64 status_gpa;
	u64 bytes;			/* what the guest asked for, for stats */
	u64 start_ns;			/* 0 unless vhost_blk_req_done is on */
	/*
	 * A read or write is served in parts of at most
	 * VHOST_BLK_PART_BYTES, one at a time: @sector, @len, @pages and
	 * @bvec are the part's, which the backend serves and sets @status
	 * of on failure; the worker then merges @status into @worst and
	 * starts the next part from @dsegs (the request's own copy of its
	 * data segments when it has more than one part).  @pin_reserved
	 * pages of the device's budget (vhost_blk.pinned) stay the
	 * request's from its first part to its completion.
	 */
	u64 sector;
	u32 len;			/* data bytes of the part */
	u32 data_len;			/* data bytes of the request */
	u32 data_done;			/* of them, served by earlier parts */
	u8 worst;			/* worst status of the earlier parts */
	unsigned int nr_pages;
	unsigned int pin_reserved;
	struct page **pages;
	struct bio_vec *bvec;
	struct vhost_blk_seg *dsegs;	/* NULL: a single part */
	unsigned int nr_dsegs;
	u64 dskip;			/* where the data starts in @dsegs */
	/*
	 * IN: the guest-physical ranges of the part's data, recorded whether
	 * or not the log is on, so that a request that completes after
	 * VHOST_F_LOG_ALL was set is logged too, and logged when the part
	 * completes.  No more ranges than pages.
	 */
	struct vhost_blk_log_range *log;
	unsigned int nr_log;
	atomic_t ref;			/* backend operations, + 1 while building */
	struct virtio_blk_discard_write_zeroes *segs;
	unsigned int nr_segs;
	struct kiocb iocb;
	/*
	 * The IOCB_NOWAIT kiocb completed with -EAGAIN after it started: the
	 * worker serves the part again from the workqueue.  Set by the
	 * completion before vhost_blk_req_put(), read and cleared by the
	 * worker once the request is on vq->done.
	 */
	bool reissue;
	/*
	 * What the backend serves of the part: @bvec and @nr_pages, the
	 * guest's pinned buffers, or @bounce and @nr_bounce, pages of ours
	 * when a buffer is not as the backend needs it (a segment off the
	 * device's DMA alignment or not a whole number of its logical
	 * blocks: SeaBIOS sends such), as QEMU bounces.  The worker copies
	 * an OUT part in before it is sent, and an IN part out to the
	 * guest's pages when it completes (vhost_blk_req_unbounce()).
	 */
	struct bio_vec *io_bvec;
	unsigned int io_nr;
	struct bio_vec *bounce;
	unsigned int nr_bounce;
	struct list_head blocking;	/* on vhost_blk.blocking, punted */
	/*
	 * Not cleared when a request is taken from the queue's cache
	 * (vhost_blk_req_alloc()): each array is written before it is read,
	 * up to @nr_pages, the bvecs built from them, and @nr_log.
	 */
	struct page *inline_pages[VHOST_BLK_INLINE_PAGES];
	struct bio_vec inline_bvec[VHOST_BLK_INLINE_PAGES];
	struct vhost_blk_log_range inline_log[VHOST_BLK_INLINE_PAGES];
};

struct vhost_blk_poll {
	wait_queue_entry_t wait;
	poll_table table;
	wait_queue_head_t *wqh;
	struct vhost_blk_vq *vq;
};

/* Request types the statistics tell apart; the last is "any other". */
enum {
	VHOST_BLK_STAT_IN,
	VHOST_BLK_STAT_OUT,
	VHOST_BLK_STAT_FLUSH,
	VHOST_BLK_STAT_GET_ID,
	VHOST_BLK_STAT_DISCARD,
	VHOST_BLK_STAT_WRITE_ZEROES,
	VHOST_BLK_STAT_OTHER,
	VHOST_BLK_STAT_TYPES
};

/*
 * What a queue served, for fdinfo.  The worker updates the counters under
 * vq->mutex with WRITE_ONCE(), so the data path pays no atomic operation;
 * fdinfo reads them without the lock: each value is exact, the set is not
 * one snapshot.  @kicks is counted by the kick wake-up, in any context.
 */
struct vhost_blk_vq_stats {
	u64 reqs[VHOST_BLK_STAT_TYPES];	/* completed, by type */
	u64 bytes[VHOST_BLK_STAT_TYPES];	/* of those that succeeded */
	u64 ioerr;			/* completed with VIRTIO_BLK_S_IOERR */
	u64 unsupp;			/* completed with VIRTIO_BLK_S_UNSUPP */
	u64 signals;			/* call eventfd signalled */
	u64 punted;			/* handed to the workqueue */
	u64 reissued;			/* of those, after a late -EAGAIN */
	u64 bounced;			/* parts served through our pages */
	u64 log_faults;			/* dirty-log writes that faulted */
	atomic64_t kicks;		/* kick eventfd wake-ups */
};

/*
 * One virtqueue.  Everything below @mutex is protected by it, except where
 * a field says otherwise.  The worker holds it while it serves the queue;
 * ioctls take it (inside vhost_blk.mutex) to change the queue.
 */
struct vhost_blk_vq {
	struct vhost_blk *blk;
	unsigned int index;
	/* The device's handler: the worker calls it for kicks and completions. */
	void (*handle_kick)(struct vhost_blk_vq *vq);
	struct mutex mutex;		/* see above */

	/* Ring layout, as set by VHOST_SET_VRING_NUM/ADDR/BASE. */
	unsigned int num;
	struct vring_desc __user *desc;
	struct vring_avail __user *avail;
	struct vring_used __user *used;
	u16 last_avail_idx;		/* next avail entry to serve */
	u16 avail_idx;			/* last avail->idx read */
	u16 last_used_idx;		/* next used entry to fill */
	u16 signalled_used;		/* used index at the last signal */
	bool signalled_used_valid;
	bool initialized;		/* last_used_idx read from the ring */

	u64 features;
	bool writeback;			/* else writes are made stable */

	/*
	 * Dirty log.  @log_base and @log_ctx are the device's (set under
	 * vhost_blk.mutex and every queue's mutex); @log_used and @log_addr
	 * are VHOST_VRING_F_LOG and log_guest_addr of VHOST_SET_VRING_ADDR:
	 * the used ring is logged as the guest-physical range at @log_addr.
	 * Guest data is logged while VHOST_F_LOG_ALL is in @features.
	 * @log_signal: something was logged since @log_ctx was signalled.
	 */
	void __user *log_base;
	struct eventfd_ctx *log_ctx;
	bool log_used;
	bool log_signal;
	u64 log_addr;

	struct vhost_blk_backend *be;	/* NULL: not serving */
	struct vhost_blk_mem *mem;	/* the device's table */
	char serial[VIRTIO_BLK_ID_BYTES];

	struct file *kick;
	struct vhost_blk_poll poll;
	struct eventfd_ctx *call_ctx;
	struct eventfd_ctx *error_ctx;

	/*
	 * stopped: VHOST_GET_VRING_BASE took the queue's state; broken: the
	 * guest broke the ring.  Either keeps the worker from taking new
	 * requests until VHOST_SET_VRING_KICK.  (A backend switch instead
	 * clears @be for as long as it drains.)
	 */
	bool stopped;
	bool broken;
	char broken_reason[VHOST_BLK_REASON_LEN];

	unsigned int inflight;		/* requests taken, not yet used */
	unsigned int used_pending;	/* used entries not yet published */
	struct llist_head done;		/* lock-free: completed requests */
	/* Freed requests, linked by their node, for vhost_blk_req_alloc(). */
	struct llist_node *req_cache;
	unsigned int nr_req_cache;	/* at most VHOST_BLK_REQ_CACHE */

	struct vhost_blk_seg *segs;	/* scratch for one chain */
	unsigned int nr_segs;
	unsigned int nr_readable;
	unsigned int nr_descs;		/* descriptors of the chain */
	u32 seg_max;			/* VHOST_BLK_SET_SEG_MAX; 0: none */
	struct vhost_blk_limits limits;	/* VHOST_BLK_SET_LIMITS; 0: none */

	struct vhost_blk_vq_stats stats;

	/*
	 * The worker that serves the queue.  Written under vhost_blk.mutex
	 * and @mutex; read with READ_ONCE() by wakers in any context, which
	 * hold the RCU read lock (or vhost_blk.mutex): a worker is freed only
	 * after synchronize_rcu().  A worker still running the handler of a
	 * queue that just moved away is harmless: the handler takes @mutex.
	 */
	struct vhost_blk_worker *worker;

	/*
	 * Busy polling (blk_worker.c).  @busyloop_timeout is the budget in
	 * microseconds that VHOST_SET_VRING_BUSYLOOP_TIMEOUT sets, under
	 * @mutex.  The rest belong to the worker that serves the queue and
	 * are touched by it alone, under @mutex but for @idle_since:
	 * @poll_end (armed in its poll_armed, notifications left disabled,
	 * it polls until then, local_clock() ns), @poll_ns (the adaptive
	 * window) and @idle_since (when the queue last went to sleep with
	 * notifications on; 0: not since served).
	 */
	u32 busyloop_timeout;
	u64 poll_end;
	u64 poll_ns;
	u64 idle_since;
};

/*
 * The device: one per open file.  @mutex serialises the ioctls and
 * protects the fields below it; it nests outside every vq->mutex, and
 * only a holder of it takes more than one queue mutex at a time.
 */
/* A work item of vhost_blk_wq that serves one device's blocking requests. */
struct vhost_blk_blocking {
	struct work_struct work;
	struct vhost_blk *blk;
	unsigned int index;
};

struct vhost_blk {
	unsigned int id;		/* for fdinfo and the trace; immutable */
	/* VHOST_GET_FEATURES: set at open (module parameter log); immutable */
	u64 offered;
	struct mutex mutex;		/* see above */
	struct mm_struct *mm;		/* the owner's, with a user reference */
	pid_t owner_tgid;		/* the owner's, for fdinfo */
	/*
	 * The owner's io and memory cgroups at SET_OWNER (references), which
	 * the work done for the guest outside its workers is charged to.
	 */
	struct cgroup_subsys_state *owner_blkcg;
	struct mem_cgroup *owner_memcg;
	/*
	 * The owner's kcov common handle at SET_OWNER, none without one: the
	 * workers' coverage goes to the kcov of the task that took the
	 * device, as in upstream vhost (Documentation/dev-tools/kcov.rst).
	 */
	struct vhost_blk_kcov kcov;
	struct vhost_blk_worker *workers[VHOST_BLK_MAX_WORKERS];
	struct vhost_blk_backend *be;
	struct vhost_blk_mem *mem;	/* also under every vq->mutex */
	u64 features;			/* also under every vq->mutex */
	bool writeback;			/* also under every vq->mutex */
	void __user *log_base;		/* also under every vq->mutex */
	struct eventfd_ctx *log_ctx;	/* also under every vq->mutex */

	wait_queue_head_t drain_wq;	/* inflight of a queue dropped to 0 */
	/*
	 * Pages the device's requests have reserved for pinning (at most
	 * the max_pinned_pages module parameter), and the queues that
	 * wait for some of them to be released; both atomic, any worker.
	 */
	atomic_t pinned;
	unsigned long pin_waiters;

	/*
	 * Requests that may block (buffered file I/O, fsync, fallocate,
	 * zeroing), served by at most @max_blocking work items at a time so
	 * that one device cannot take every worker of vhost_blk_wq from the
	 * others.  @max_blocking is the module's max_blocking at open.
	 */
	spinlock_t blocking_lock;
	struct list_head blocking;
	DECLARE_BITMAP(blocking_idle, VHOST_BLK_MAX_BLOCKING);
	unsigned int max_blocking;
	struct vhost_blk_blocking blocking_work[VHOST_BLK_MAX_BLOCKING];
	struct vhost_blk_vq vqs[VHOST_BLK_MAX_QUEUES];
};

static inline bool vhost_blk_has_feature(struct vhost_blk_vq *vq, unsigned int bit)
{
	return vq->features & BIT_ULL(bit);
}

static inline bool vhost_blk_is_le(struct vhost_blk_vq *vq)
{
	return vhost_blk_has_feature(vq, VIRTIO_F_VERSION_1) ||
	       virtio_legacy_is_little_endian();
}

static inline u16 vhost_blk16_to_cpu(struct vhost_blk_vq *vq, __virtio16 val)
{
	return __virtio16_to_cpu(vhost_blk_is_le(vq), val);
}

static inline __virtio16 cpu_to_vhost_blk16(struct vhost_blk_vq *vq, u16 val)
{
	return __cpu_to_virtio16(vhost_blk_is_le(vq), val);
}

static inline u32 vhost_blk32_to_cpu(struct vhost_blk_vq *vq, __virtio32 val)
{
	return __virtio32_to_cpu(vhost_blk_is_le(vq), val);
}

static inline __virtio32 cpu_to_vhost_blk32(struct vhost_blk_vq *vq, u32 val)
{
	return __cpu_to_virtio32(vhost_blk_is_le(vq), val);
}

static inline u64 vhost_blk64_to_cpu(struct vhost_blk_vq *vq, __virtio64 val)
{
	return __virtio64_to_cpu(vhost_blk_is_le(vq), val);
}

/* The guest (or the VMM) broke the ring: see vhost_blk_vq_err(). */
#define vq_err(vq, fmt, ...) vhost_blk_vq_err(vq, fmt, ##__VA_ARGS__)

/* Count one more of a statistic; the caller holds vq->mutex. */
static inline void vhost_blk_stat_add(u64 *stat, u64 n)
{
	WRITE_ONCE(*stat, *stat + n);
}

/* blk_vq.c: guest memory, rings, and the vring ioctls. */
__printf(2, 3) void vhost_blk_vq_err(struct vhost_blk_vq *vq,
				     const char *fmt, ...);
bool vhost_blk_vq_running(struct vhost_blk_vq *vq);
int vhost_blk_seg_copy(const struct vhost_blk_seg *segs, unsigned int nr,
		       u64 skip, void *buf, u32 len, bool to_guest);
int vhost_blk_vq_init_access(struct vhost_blk_vq *vq);
void vhost_blk_disable_notify(struct vhost_blk_vq *vq);
bool vhost_blk_enable_notify(struct vhost_blk_vq *vq);
int vhost_blk_next_head(struct vhost_blk_vq *vq);
int vhost_blk_parse_chain(struct vhost_blk_vq *vq, u16 head);
void vhost_blk_add_used(struct vhost_blk_vq *vq, u16 head, u32 len);
bool vhost_blk_log_on(struct vhost_blk_vq *vq);
void vhost_blk_log_write(struct vhost_blk_vq *vq, u64 gpa, u64 len);
bool vhost_blk_log_mem_ok(void __user *base, const struct vhost_blk_mem *mem);
long vhost_blk_set_log_base(struct vhost_blk *blk, u64 __user *argp);
long vhost_blk_set_log_fd(struct vhost_blk *blk, int __user *argp);
void vhost_blk_flush_used(struct vhost_blk_vq *vq);
void vhost_blk_lock_vqs(struct vhost_blk *blk);
void vhost_blk_unlock_vqs(struct vhost_blk *blk);
void vhost_blk_vq_drain(struct vhost_blk_vq *vq);
int vhost_blk_vq_drain_killable(struct vhost_blk_vq *vq);
long vhost_blk_set_mem_table(struct vhost_blk *blk,
			     struct vhost_memory __user *argp);
long vhost_blk_vring_ioctl(struct vhost_blk *blk, unsigned int ioctl,
			   void __user *argp);
void vhost_blk_vq_init(struct vhost_blk_vq *vq);
void vhost_blk_vq_cleanup(struct vhost_blk_vq *vq);

/* blk_worker.c: the worker thread, kick polling and busy polling. */
void vhost_blk_wake(struct vhost_blk *blk, unsigned int bit);
bool vhost_blk_poll_arm(struct vhost_blk_vq *vq);
u32 vhost_blk_poll_default_us(void);
void vhost_blk_poll_start(struct vhost_blk_vq *vq);
void vhost_blk_poll_stop(struct vhost_blk_vq *vq);
long vhost_blk_set_owner(struct vhost_blk *blk);
void vhost_blk_worker_stop(struct vhost_blk *blk);
pid_t vhost_blk_worker_pid(struct vhost_blk *blk);
long vhost_blk_worker_ioctl(struct vhost_blk *blk, unsigned int ioctl,
			    void __user *argp);
long vhost_blk_attach_worker(struct vhost_blk_vq *vq, unsigned int id);
void vhost_blk_owner_cgroups_put(struct vhost_blk *blk);

/* blk_req.c: the request path. */
extern struct workqueue_struct *vhost_blk_wq;
extern struct kmem_cache *vhost_blk_req_cachep;
void vhost_blk_handle_vq(struct vhost_blk_vq *vq);
void vhost_blk_req_put(struct vhost_blk_req *req);
void vhost_blk_punt(struct vhost_blk_req *req);
void vhost_blk_req_cache_free(struct vhost_blk_vq *vq);
void vhost_blk_blocking_init(struct vhost_blk *blk);
void vhost_blk_blocking_flush(struct vhost_blk *blk);
u8 vhost_blk_errno_status(int err);

/* blk_bdev.c: block device backend. */
void vhost_blk_bdev_rw(struct vhost_blk_req *req);
void vhost_blk_bdev_flush(struct vhost_blk_req *req);
int vhost_blk_bdev_discard(struct vhost_blk_req *req);

/* blk_file.c: regular file backend. */
void vhost_blk_file_rw(struct vhost_blk_req *req);
int vhost_blk_file_aio(struct vhost_blk_req *req, bool nowait);
int vhost_blk_file_sync_rw(struct vhost_blk_req *req);
int vhost_blk_file_discard(struct vhost_blk_req *req);

#endif /* _VHOST_BLK_H */
