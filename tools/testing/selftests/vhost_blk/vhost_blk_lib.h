/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vhost-blk selftest library: one process plays both the VMM (ioctls on
 * /dev/vhost-blk, guest memory, eventfds) and the guest driver (split
 * virtqueues, virtio-blk requests).
 *
 * Guest memory is three mappings with a non-identity guest-physical layout:
 *
 *   region 0: GPA 0x00100000, 8 MiB  -- rings, request headers, status bytes
 *   region 1: GPA 0x00900000, 8 MiB  -- contiguous with region 0 in GPA but
 *                                       mapped *below* it in HVA, with a
 *                                       PROT_NONE page between the two
 *   region 2: GPA 0x100000000, 40 MiB -- data buffers (room for > 8 MiB I/O;
 *                                       vb_opts.data_mem makes it larger)
 *
 * A buffer allocated with vb_alloc_span() straddles the region 0/1 boundary,
 * so the device must split one descriptor over two mappings.
 */
#ifndef VHOST_BLK_LIB_H
#define VHOST_BLK_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/vhost_blk.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#ifndef VHOST_GET_FEATURES_ARRAY
/* Not in older uapi headers; sizeof(struct vhost_features_array) == 8. */
#define VHOST_GET_FEATURES_ARRAY _IOR(VHOST_VIRTIO, 0x83, __u64)
#define VHOST_SET_FEATURES_ARRAY _IOW(VHOST_VIRTIO, 0x83, __u64)
#endif
#ifndef VHOST_NEW_WORKER
/*
 * Not in 6.1's uapi headers either; struct vhost_worker_state is 4 bytes,
 * struct vhost_vring_worker 8.
 */
#define VHOST_NEW_WORKER	_IOR(VHOST_VIRTIO, 0x8, __u32)
#define VHOST_FREE_WORKER	_IOW(VHOST_VIRTIO, 0x9, __u32)
#define VHOST_ATTACH_VRING_WORKER _IOW(VHOST_VIRTIO, 0x15, __u64)
#define VHOST_GET_VRING_WORKER	_IOWR(VHOST_VIRTIO, 0x16, __u64)
#endif
#ifndef VHOST_SET_FORK_FROM_OWNER
#define VHOST_SET_FORK_FROM_OWNER _IOW(VHOST_VIRTIO, 0x84, __u8)
#define VHOST_GET_FORK_FROM_OWNER _IOR(VHOST_VIRTIO, 0x85, __u8)
#endif

#define VB_DEV_PATH		"/dev/vhost-blk"
#define VB_SECTOR		512
/* How long any wait for the device may take before the test fails. */
#define VB_TIMEOUT_MS		10000
/* How long we watch for something that must NOT happen. */
#define VB_QUIET_MS		300

#define VB_NREGIONS		3
#define VB_MAX_REGIONS		8
#define VB_MAX_SEGS		80	/* descriptors of one request we build */

/* Features every test negotiates unless it says otherwise. */
#define VB_F_TRANSPORT	((1ULL << VIRTIO_F_VERSION_1) | \
			 (1ULL << VIRTIO_F_ANY_LAYOUT) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))
#define VB_F_BLK	((1ULL << VIRTIO_BLK_F_SIZE_MAX) | \
			 (1ULL << VIRTIO_BLK_F_SEG_MAX) | \
			 (1ULL << VIRTIO_BLK_F_GEOMETRY) | \
			 (1ULL << VIRTIO_BLK_F_RO) | \
			 (1ULL << VIRTIO_BLK_F_BLK_SIZE) | \
			 (1ULL << VIRTIO_BLK_F_FLUSH) | \
			 (1ULL << VIRTIO_BLK_F_TOPOLOGY) | \
			 (1ULL << VIRTIO_BLK_F_MQ) | \
			 (1ULL << VIRTIO_BLK_F_DISCARD) | \
			 (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))
#define VB_F_EXPECTED	(VB_F_TRANSPORT | VB_F_BLK | \
			 (1ULL << VIRTIO_F_NOTIFY_ON_EMPTY) | \
			 (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | \
			 (1ULL << VHOST_F_LOG_ALL))

struct vb_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	uint64_t lo, hi;	/* bump allocator window, offsets in region */
};

struct vb_mem {
	int nregions;
	struct vb_region r[VB_MAX_REGIONS];
	void *reserve;		/* mapping holding regions 0 and 1 */
	size_t reserve_len;
};

/* One descriptor-to-be: guest-physical range and direction. */
struct vb_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Request layouts (combinable). */
#define VB_L_INDIRECT	(1u << 0)  /* one ring descriptor -> indirect table */
#define VB_L_HDR_SPLIT	(1u << 1)  /* header split over two descriptors */
#define VB_L_HDR_DATA	(1u << 2)  /* header shares a descriptor with OUT data */
#define VB_L_DATA_STATUS (1u << 3) /* status shares a descriptor with IN data */
#define VB_L_DATA_SPLIT	(1u << 4)  /* data split into 512-byte descriptors */
#define VB_L_ALL	((1u << 5) - 1)
/* data split into descriptors of uneven lengths (whole sectors, not pages) */
#define VB_L_DATA_ODD	(1u << 5)

struct vb_req {
	/* in */
	uint32_t type;
	uint64_t sector;
	uint64_t data_gpa;	/* data buffer, see vb_alloc_data() */
	uint32_t data_len;
	unsigned int layout;
	/* out */
	uint16_t head;
	uint32_t used_len;
	uint8_t status;
	bool done;
	uint64_t hdr_gpa, status_gpa;
};

struct vb_vq {
	struct vb_dev *dev;
	unsigned int idx;
	unsigned int num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	int kick, call, err;
	uint16_t avail_idx;	/* next avail->idx we publish */
	uint16_t used_seen;	/* used entries consumed */
	uint16_t free_head;
	unsigned int nfree;
	uint16_t *next;		/* shadow of desc[].next for the free list */
	uint16_t *chain;	/* descriptors in the chain headed by [i] */
	struct vb_req **inflight; /* by head */
	uint64_t slot_gpa;	/* num slots of VB_SLOT bytes: hdr, status, table */
	unsigned int completed;	/* total used entries consumed */
	uint64_t scratch_gpa;	/* 4 KiB for discard payloads and the like */
	bool manual_used_event;	/* the test drives used_event itself */
};

/* Per-head scratch in guest memory: header, status, indirect table. */
#define VB_SLOT		2048
#define VB_SLOT_HDR	0
#define VB_SLOT_STATUS	64
#define VB_SLOT_TABLE	128
#define VB_SLOT_TABLE_MAX ((VB_SLOT - VB_SLOT_TABLE) / 16)

struct vb_dev {
	int fd;
	uint64_t features;	/* negotiated */
	unsigned int nvqs;
	struct vb_vq vq[VHOST_BLK_MAX_QUEUES];
	struct vb_mem mem;
	int backend;		/* fd handed to SET_BACKEND, or -1 */
};

struct vb_opts {
	unsigned int nvqs;	/* 0 -> 1 */
	unsigned int num;	/* 0 -> 128 */
	uint64_t features;	/* 0 -> device features & VB_F_TRANSPORT|VB_F_BLK */
	int backend;		/* -1: no SET_BACKEND */
	uint64_t data_mem;	/* size of region 2; 0 -> 40 MiB */
};

/* EVENT_IDX fields: after the avail ring and after the used ring. */
static inline uint16_t *vb_used_event(struct vb_vq *vq)
{
	return &vq->avail->ring[vq->num];
}

static inline uint16_t *vb_avail_event(struct vb_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

/* Memory. */
int vb_mem_init(struct vb_mem *m);
/* The same with @data_size bytes (0: 40 MiB) of region 2. */
int vb_mem_init_size(struct vb_mem *m, uint64_t data_size);
void vb_mem_free(struct vb_mem *m);
struct vhost_memory *vb_mem_table(const struct vb_mem *m);
void *vb_hva(const struct vb_mem *m, uint64_t gpa, uint64_t len);
uint64_t vb_alloc(struct vb_mem *m, int region, uint64_t size, uint64_t align);
uint64_t vb_alloc_data(struct vb_mem *m, uint32_t len);
uint64_t vb_alloc_span(struct vb_mem *m, uint32_t len);
int vb_write(const struct vb_mem *m, uint64_t gpa, const void *src, size_t len);
int vb_read(const struct vb_mem *m, uint64_t gpa, void *dst, size_t len);
int vb_fill(const struct vb_mem *m, uint64_t gpa, int c, size_t len);

/* Small files of sysfs, configfs, debugfs and cgroupfs. */
/* Write @text to @path; 0 or -errno. */
int vb_write_text(const char *path, const char *text);
/* Read @path into @buf, NUL-terminated; the length read or -errno. */
int vb_read_text(const char *path, char *buf, size_t len);

/*
 * fdinfo of a /dev/vhost-blk fd: "name:\tvalue" lines, the device's
 * fields, then each queue's as vqN.name.  One snapshot is read with
 * vb_fdinfo_read() into VB_FDINFO_MAX bytes and parsed with
 * vb_fdinfo_get*(), where fields must agree with each other; the fd-based
 * readers take a snapshot of their own for one field.
 */
#define VB_FDINFO_MAX	(64 * 1024)
/* Read the fdinfo of @fd into @text, NUL-terminated: its length or -errno. */
int vb_fdinfo_read(int fd, char *text, size_t len);
/* The value of field @key of @text, NUL-terminated in @val; NULL if absent. */
const char *vb_fdinfo_get(const char *text, const char *key, char *val,
			  size_t len);
/* The value of field @key of @text as a number, or -1 if absent. */
long long vb_fdinfo_get_num(const char *text, const char *key);
/* The number of field @key ("vq0.inflight") of @fd's fdinfo, or -1. */
long long vb_fdinfo_num(int fd, const char *key);
/* The sum over @fd's queues of vqN.@field; -1 if fdinfo is unreadable. */
long long vb_fdinfo_vq_sum(int fd, const char *field);

/* Threads. */
/* The comm of the worker a device owned by @owner starts (TASK_COMM_LEN). */
void vb_worker_name(char *name, size_t len, pid_t owner);
/* Tasks whose comm is @name: how many, and the pid of the last in *tid. */
int vb_count_threads(const char *name, pid_t *tid);
/*
 * The same, read until it is @want, for at most 10 s: a stopped kthread
 * leaves /proc only when it has been reaped, a little after kthread_stop().
 */
int vb_wait_threads(const char *name, int want, pid_t *tid);

/* Device. */
/* A vb_dev with nothing open: what vb_dev_teardown() may be called on. */
void vb_dev_init(struct vb_dev *d);
bool vb_module_loaded(void);
int vb_open(void);
/*
 * Call fn(fd) in a forked child, which has an mm of its own, and return what
 * it returned (0-255), or -1 when the child did not exit normally.
 */
int vb_run_in_child(int (*fn)(int fd), int fd);
int vb_dev_setup(struct vb_dev *d, const struct vb_opts *o);
int vb_dev_sequence(struct vb_dev *d, const struct vb_opts *o);
int vb_set_mem_table(struct vb_dev *d);
void vb_dev_teardown(struct vb_dev *d);
int vb_vq_init_ring(struct vb_dev *d, struct vb_vq *vq);
int vb_vq_start(struct vb_dev *d, struct vb_vq *vq, uint16_t base);
int vb_set_backend(struct vb_dev *d, int fd);
int vb_get_vring_base(struct vb_dev *d, unsigned int idx, unsigned int *num);

/* Guest driver. */
int vb_vq_add(struct vb_vq *vq, const struct vb_seg *s, int n, bool indirect,
	      uint16_t *head);
void vb_vq_publish(struct vb_vq *vq, uint16_t head);
void vb_vq_kick(struct vb_vq *vq);
int vb_req_post(struct vb_vq *vq, struct vb_req *r);
int vb_req_prepare_segs(struct vb_vq *vq, struct vb_req *r, uint16_t head,
			struct vb_seg *s);
int vb_vq_collect(struct vb_vq *vq);
int vb_vq_wait(struct vb_vq *vq, unsigned int n, int timeout_ms);
int vb_wait_used_idx(struct vb_vq *vq, uint16_t idx, int timeout_ms);
int vb_vq_poll_used(struct vb_vq *vq, unsigned int n, int timeout_ms);
int vb_wait_fd(int fd, int timeout_ms);
bool vb_fd_signalled(int fd);
uint16_t vb_used_idx(const struct vb_vq *vq);
unsigned int vb_vq_pending(const struct vb_vq *vq);

/* One synchronous request: post, kick, wait; returns status or -errno. */
int vb_io(struct vb_vq *vq, uint32_t type, uint64_t sector, uint64_t data_gpa,
	  uint32_t len, unsigned int layout, uint32_t *used_len);
/* Write the pattern of (@sector, @seed) at @sector through @vq: vb_io(). */
int vb_io_write_pattern(struct vb_vq *vq, uint64_t gpa, uint64_t sector,
			uint32_t len, uint32_t seed, uint32_t *used_len);
/*
 * Read @len bytes at @sector through @vq into @out (the buffer at @gpa is
 * filled with 0xaa first, so that what the device did not write shows).
 */
int vb_io_read_to(struct vb_vq *vq, uint64_t gpa, uint64_t sector,
		  uint32_t len, void *out, uint32_t *used_len);
int vb_discard_wz(struct vb_vq *vq, uint32_t type, uint64_t sector,
		  uint32_t nsect, uint32_t flags, uint32_t *used_len);

/* Data patterns: deterministic content of a sector for a seed. */
void vb_pattern(void *buf, size_t len, uint64_t sector, uint32_t seed);
/* Whether all @len bytes at @p are zero. */
bool vb_is_zero(const void *p, size_t len);
uint64_t vb_rand(uint64_t *state);

/* Backends; each returns an open fd or -errno, *why says what failed. */
struct vb_backend {
	const char *kind;
	int fd;
	char path[256];		/* file or block device */
	char aux[256];		/* null_blk configfs dir, mount point, ... */
	char loopdev[64];
	uint64_t size;
	bool discard_zeroes;	/* a discarded range reads back as zeroes */
	bool can_discard;
	bool shared_fs;		/* ext4 in vb_ext4_shared: left mounted */
};

/*
 * If set, every "ext4" backend is a file on one file system mounted here
 * (made on first use); the program unmounts it with vb_ext4_shared_done().
 */
extern char vb_ext4_shared[256];
void vb_ext4_shared_done(void);

int vb_backend_create(struct vb_backend *b, const char *kind, uint64_t size,
		      int oflags, const char **why);
void vb_backend_destroy(struct vb_backend *b);
int vb_nullb_create(struct vb_backend *b, uint64_t size, const char *badblocks,
		    int oflags, const char **why);
/* attrs: NULL-terminated "name=value" null_blk configfs settings. */
int vb_nullb_create_attrs(struct vb_backend *b, uint64_t size,
			  const char *const *attrs, int oflags,
			  const char **why);
/*
 * A slow null_blk: each request completes by a timer @completion_ms after
 * it was submitted (irqmode=2), @depth of them at a time per hardware queue.
 */
/*
 * Power null_blk @b off (its disk goes away, memory_backed data stays) or
 * on again (a new disk, whose node is then b->path).  b->fd is closed: the
 * caller opens the new disk.  0 or -errno.
 */
int vb_nullb_power(struct vb_backend *b, bool on);
int vb_nullb_create_slow(struct vb_backend *b, uint64_t size,
			 unsigned int completion_ms, unsigned int depth,
			 const char **why);
/*
 * Bind @file to a free loop device, with LO_FLAGS_AUTOCLEAR (it unbinds at
 * its last close), and put its node in @dev: an open fd of it, or -errno.
 */
int vb_loop_attach(const char *file, char *dev, size_t dlen);
int vb_backend_reopen(struct vb_backend *b, int flags);
int vb_backend_read(const struct vb_backend *b, uint64_t off, void *buf,
		    size_t len);
int vb_backend_write(const struct vb_backend *b, uint64_t off,
		     const void *buf, size_t len);

/*
 * Dirty log (VHOST_SET_LOG_BASE): one bit per 4 KiB guest-physical page,
 * enough bits for the highest address of the memory, then a PROT_NONE
 * guard page.  fd is the log eventfd (VHOST_SET_LOG_FD), or -1.
 */
#define VB_LOG_PAGE	4096ULL

struct vb_log {
	uint8_t *bits;
	size_t len;		/* bytes of bitmap */
	size_t map_len;		/* mapping: bitmap pages + guard page */
	int fd;
};

int vb_log_init(struct vb_log *l, const struct vb_mem *m);
void vb_log_free(struct vb_log *l);
/*
 * What QEMU does when migration starts: SET_LOG_BASE, SET_LOG_FD,
 * SET_FEATURES with VHOST_F_LOG_ALL, then VHOST_VRING_F_LOG on every
 * queue with its used ring's guest-physical address.  0 or -errno.
 */
int vb_log_start(struct vb_dev *d, struct vb_log *l);
/* And when it ends: LOG_ALL off, then the rings' log flag off. */
int vb_log_stop(struct vb_dev *d);
/* SET_VRING_ADDR with the current rings and the log flag @on at @gpa. */
int vb_vring_log(struct vb_dev *d, struct vb_vq *vq, bool on, uint64_t gpa);
bool vb_log_test(const struct vb_log *l, uint64_t gpa);
void vb_log_clear(struct vb_log *l);
/* The first page at or after @gpa whose bit is set, or UINT64_MAX. */
uint64_t vb_log_next(const struct vb_log *l, uint64_t gpa);
unsigned int vb_log_count(const struct vb_log *l);
/* Read (and reset) the log eventfd's counter; 0 if it was not signalled. */
uint64_t vb_log_signals(const struct vb_log *l);

/*
 * The end of the user address space: 2^47 - 4 KiB, or 2^56 - 4 KiB with
 * 5-level paging, where the kernel's access_ok() allows more.
 */
uint64_t vb_user_top(void);

/* A device-mapper device made with dmsetup (tests skip without it). */
struct vb_dm {
	char name[64];
	char path[64];
	int fd;
};

bool vb_have_dmsetup(void);
/*
 * Create dm device @name (made unique with our pid) from @table and open
 * it O_RDWR: its fd, or -errno and *why.
 */
int vb_dm_create(struct vb_dm *dm, const char *name, const char *table,
		 const char **why);
void vb_dm_destroy(struct vb_dm *dm);
/*
 * Replace the table of @dm with @table ("0 SECTORS TARGET ARGS"): suspend
 * (which waits for the bios in flight, and sends on those dm-delay holds),
 * reload, resume.  0 or -EIO.
 */
int vb_dm_reload(const struct vb_dm *dm, const char *table);

/*
 * A hung or slow backend: dm-delay holding every bio for a while before it
 * reaches a null_blk.  Unlike a slow null_blk, a bio-based target has no
 * request timeout, and the bios it holds can be let go at once.
 */
struct vb_delay {
	struct vb_backend disk;	/* the null_blk below */
	struct vb_dm dm;	/* the delay target: dm.fd is the backend */
	uint64_t sectors;
};

/* A vb_delay with nothing made: what vb_delay_destroy() may be called on. */
void vb_delay_init(struct vb_delay *dl);
/*
 * A null_blk of @size bytes, with @attrs as in vb_nullb_create_attrs()
 * (NULL: none), and dm device @name over it that holds every bio for
 * @delay_ms: dl->dm.fd, or -errno and *why (tests skip: no null_blk,
 * dmsetup or dm-delay).
 */
int vb_delay_create(struct vb_delay *dl, const char *name, uint64_t size,
		    const char *const *attrs, unsigned int delay_ms,
		    const char **why);
/*
 * Swap the delay for a linear table: suspending dm-delay sends the bios it
 * holds on at once, and later ones pass straight through.  0 or -EIO.
 */
int vb_delay_release(struct vb_delay *dl);
void vb_delay_destroy(struct vb_delay *dl);

#endif /* VHOST_BLK_LIB_H */
