// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk selftest library: VMM + guest driver in one process.
 * See vhost_blk_lib.h for the guest memory layout.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "vhost_blk_lib.h"

#define MiB		(1ULL << 20)
#define PAGE		4096ULL
static inline uint64_t vb_align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

/* ---------------------------------------------------------------- memory */

int vb_mem_init(struct vb_mem *m)
{
	return vb_mem_init_size(m, 0);
}

int vb_mem_init_size(struct vb_mem *m, uint64_t data_size)
{
	const uint64_t r01 = 8 * MiB;
	uint64_t r2 = data_size ? vb_align_up(data_size, MiB) : 40 * MiB;
	uint8_t *p;

	memset(m, 0, sizeof(*m));
	/* Regions 1 and 0 in one reservation, 1 below 0, a hole between. */
	m->reserve_len = 2 * r01 + PAGE;
	m->reserve = mmap(NULL, m->reserve_len, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->reserve == MAP_FAILED)
		return -errno;
	p = m->reserve;
	if (mmap(p, r01, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -errno;
	if (mmap(p + r01 + PAGE, r01, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -errno;
	m->r[0] = (struct vb_region){ .gpa = 0x100000, .size = r01,
				      .hva = p + r01 + PAGE,
				      .lo = 0, .hi = r01 - MiB };
	m->r[1] = (struct vb_region){ .gpa = 0x100000 + r01, .size = r01,
				      .hva = p, .lo = MiB, .hi = r01 };
	p = mmap(NULL, r2, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->r[2] = (struct vb_region){ .gpa = 0x100000000ULL, .size = r2,
				      .hva = p, .lo = 0, .hi = r2 };
	m->nregions = VB_NREGIONS;
	return 0;
}

void vb_mem_free(struct vb_mem *m)
{
	int i;

	if (m->reserve)
		munmap(m->reserve, m->reserve_len);
	for (i = 2; i < m->nregions; i++)
		munmap(m->r[i].hva, m->r[i].size);
	memset(m, 0, sizeof(*m));
}

struct vhost_memory *vb_mem_table(const struct vb_mem *m)
{
	struct vhost_memory *t;
	int i;

	t = calloc(1, sizeof(*t) + m->nregions * sizeof(t->regions[0]));
	if (!t)
		return NULL;
	t->nregions = m->nregions;
	for (i = 0; i < m->nregions; i++) {
		t->regions[i].guest_phys_addr = m->r[i].gpa;
		t->regions[i].memory_size = m->r[i].size;
		t->regions[i].userspace_addr = (uintptr_t)m->r[i].hva;
	}
	return t;
}

void *vb_hva(const struct vb_mem *m, uint64_t gpa, uint64_t len)
{
	int i;

	for (i = 0; i < m->nregions; i++) {
		const struct vb_region *r = &m->r[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t vb_alloc(struct vb_mem *m, int region, uint64_t size, uint64_t align)
{
	struct vb_region *r = &m->r[region];
	uint64_t off = vb_align_up(r->lo, align);

	if (off > r->hi || size > r->hi - off)
		return 0;
	r->lo = off + size;
	return r->gpa + off;
}

/* Data buffer in region 2, page aligned, with 512 free bytes either side. */
uint64_t vb_alloc_data(struct vb_mem *m, uint32_t len)
{
	uint64_t gpa = vb_alloc(m, 2, (uint64_t)len + 2 * PAGE, PAGE);

	return gpa ? gpa + PAGE : 0;
}

/* A buffer straddling the region 0/1 boundary (one per memory). */
uint64_t vb_alloc_span(struct vb_mem *m, uint32_t len)
{
	if (len > 2 * MiB - 2 * PAGE)
		return 0;
	return m->r[1].gpa - vb_align_up(len / 2, VB_SECTOR);
}

static int vb_copy(const struct vb_mem *m, uint64_t gpa, void *buf,
		   size_t len, int dir)
{
	while (len) {
		const struct vb_region *r = NULL;
		size_t chunk;
		int i;

		for (i = 0; i < m->nregions; i++)
			if (gpa >= m->r[i].gpa &&
			    gpa - m->r[i].gpa < m->r[i].size)
				r = &m->r[i];
		if (!r)
			return -EFAULT;
		chunk = r->size - (gpa - r->gpa);
		if (chunk > len)
			chunk = len;
		if (dir > 0)
			memcpy(r->hva + (gpa - r->gpa), buf, chunk);
		else if (dir < 0)
			memcpy(buf, r->hva + (gpa - r->gpa), chunk);
		else
			memset(r->hva + (gpa - r->gpa), *(int *)buf, chunk);
		gpa += chunk;
		len -= chunk;
		if (dir)
			buf = (uint8_t *)buf + chunk;
	}
	return 0;
}

int vb_write(const struct vb_mem *m, uint64_t gpa, const void *src, size_t len)
{
	return vb_copy(m, gpa, (void *)src, len, 1);
}

int vb_read(const struct vb_mem *m, uint64_t gpa, void *dst, size_t len)
{
	return vb_copy(m, gpa, dst, len, -1);
}

int vb_fill(const struct vb_mem *m, uint64_t gpa, int c, size_t len)
{
	return vb_copy(m, gpa, &c, len, 0);
}

/* ---------------------------------------------------------------- device */

void vb_dev_init(struct vb_dev *d)
{
	int i;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->backend = -1;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		d->vq[i].kick = -1;
		d->vq[i].call = -1;
		d->vq[i].err = -1;
	}
}

bool vb_module_loaded(void)
{
	return access("/sys/module/vhost_blk", F_OK) == 0;
}

int vb_run_in_child(int (*fn)(int fd), int fd)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(fd));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int vb_open(void)
{
	int fd = open(VB_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int vb_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* Lay out an empty ring for vq in region 0 (each part on its own pages). */
int vb_vq_init_ring(struct vb_dev *d, struct vb_vq *vq)
{
	struct vb_mem *m = &d->mem;
	unsigned int i, num = vq->num;

	vq->desc_gpa = vb_alloc(m, 0, vb_align_up(16ULL * num, PAGE), PAGE);
	vq->avail_gpa = vb_alloc(m, 0, vb_align_up(6ULL + 2 * num, PAGE), PAGE);
	vq->used_gpa = vb_alloc(m, 0, vb_align_up(6ULL + 8 * num, PAGE), PAGE);
	vq->slot_gpa = vb_alloc(m, 0, (uint64_t)VB_SLOT * num, PAGE);
	vq->scratch_gpa = vb_alloc(m, 0, PAGE, PAGE);
	if (!vq->desc_gpa || !vq->avail_gpa || !vq->used_gpa ||
	    !vq->slot_gpa || !vq->scratch_gpa)
		return -ENOMEM;
	vq->desc = vb_hva(m, vq->desc_gpa, 16ULL * num);
	vq->avail = vb_hva(m, vq->avail_gpa, 6ULL + 2 * num);
	vq->used = vb_hva(m, vq->used_gpa, 6ULL + 8 * num);
	memset(vq->desc, 0, 16ULL * num);
	memset(vq->avail, 0, 6ULL + 2 * num);
	memset(vq->used, 0, 6ULL + 8 * num);
	free(vq->next);
	free(vq->chain);
	free(vq->inflight);
	vq->next = calloc(num, sizeof(*vq->next));
	vq->chain = calloc(num, sizeof(*vq->chain));
	vq->inflight = calloc(num, sizeof(*vq->inflight));
	if (!vq->next || !vq->chain || !vq->inflight)
		return -ENOMEM;
	for (i = 0; i < num; i++)
		vq->next[i] = i + 1;
	vq->free_head = 0;
	vq->nfree = num;
	vq->avail_idx = 0;
	vq->used_seen = 0;
	vq->completed = 0;
	return 0;
}

/* SET_VRING_NUM, _BASE, _ADDR, _KICK, _CALL: the second half of QEMU's order. */
int vb_vq_start(struct vb_dev *d, struct vb_vq *vq, uint16_t base)
{
	struct vhost_vring_state s = { .index = vq->idx, .num = vq->num };
	struct vhost_vring_addr a = {
		.index = vq->idx,
		.desc_user_addr = (uintptr_t)vq->desc,
		.avail_user_addr = (uintptr_t)vq->avail,
		.used_user_addr = (uintptr_t)vq->used,
	};
	struct vhost_vring_file f = { .index = vq->idx };
	int ret;

	ret = vb_ioctl(d->fd, VHOST_SET_VRING_NUM, &s);
	if (ret)
		return ret;
	s.num = base;
	ret = vb_ioctl(d->fd, VHOST_SET_VRING_BASE, &s);
	if (ret)
		return ret;
	ret = vb_ioctl(d->fd, VHOST_SET_VRING_ADDR, &a);
	if (ret)
		return ret;
	f.fd = vq->kick;
	ret = vb_ioctl(d->fd, VHOST_SET_VRING_KICK, &f);
	if (ret)
		return ret;
	f.fd = vq->call;
	return vb_ioctl(d->fd, VHOST_SET_VRING_CALL, &f);
}

int vb_set_backend(struct vb_dev *d, int fd)
{
	struct vhost_vring_file f = { .index = 0, .fd = fd };

	return vb_ioctl(d->fd, VHOST_BLK_SET_BACKEND, &f);
}

int vb_get_vring_base(struct vb_dev *d, unsigned int idx, unsigned int *num)
{
	struct vhost_vring_state s = { .index = idx };
	int ret = vb_ioctl(d->fd, VHOST_GET_VRING_BASE, &s);

	if (!ret && num)
		*num = s.num;
	return ret;
}

/*
 * The QEMU vhost-kernel start sequence on d->fd with d->mem: SET_OWNER
 * through SET_BACKEND, on fresh rings.  Reusable after RESET_OWNER.
 */
int vb_dev_sequence(struct vb_dev *d, const struct vb_opts *o)
{
	uint64_t devf, bef = 0;
	struct vhost_memory *t;
	unsigned int i;
	int ret;

	d->nvqs = o->nvqs ? o->nvqs : 1;
	ret = vb_ioctl(d->fd, VHOST_SET_OWNER, NULL);
	if (ret)
		return ret;
	ret = vb_ioctl(d->fd, VHOST_GET_FEATURES, &devf);
	if (ret)
		return ret;
	for (i = 0; i < d->nvqs; i++) {
		struct vb_vq *vq = &d->vq[i];
		struct vhost_vring_file f = { .index = i };

		vq->dev = d;
		vq->idx = i;
		vq->num = o->num ? o->num : 128;
		if (vq->kick < 0)
			vq->kick = eventfd(0, EFD_CLOEXEC);
		if (vq->call < 0)
			vq->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vq->err < 0)
			vq->err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vq->kick < 0 || vq->call < 0 || vq->err < 0)
			return -errno;
		f.fd = vq->call;
		ret = vb_ioctl(d->fd, VHOST_SET_VRING_CALL, &f);
		if (ret)
			return ret;
		f.fd = vq->err;
		ret = vb_ioctl(d->fd, VHOST_SET_VRING_ERR, &f);
		if (ret)
			return ret;
	}
	d->features = o->features ? o->features :
		      devf & (VB_F_TRANSPORT | VB_F_BLK);
	ret = vb_ioctl(d->fd, VHOST_SET_FEATURES, &d->features);
	if (ret)
		return ret;
	ret = vb_ioctl(d->fd, VHOST_GET_BACKEND_FEATURES, &bef);
	if (ret)
		return ret;
	bef = 0;
	ret = vb_ioctl(d->fd, VHOST_SET_BACKEND_FEATURES, &bef);
	if (ret)
		return ret;
	t = vb_mem_table(&d->mem);
	if (!t)
		return -ENOMEM;
	ret = vb_ioctl(d->fd, VHOST_SET_MEM_TABLE, t);
	free(t);
	if (ret)
		return ret;
	for (i = 0; i < d->nvqs; i++) {
		ret = vb_vq_init_ring(d, &d->vq[i]);
		if (ret)
			return ret;
		ret = vb_vq_start(d, &d->vq[i], 0);
		if (ret)
			return ret;
	}
	if (o->backend >= 0) {
		ret = vb_set_backend(d, o->backend);
		if (ret)
			return ret;
		d->backend = o->backend;
	}
	return 0;
}

/* Fresh guest memory, open /dev/vhost-blk, run the start sequence. */
int vb_dev_setup(struct vb_dev *d, const struct vb_opts *o)
{
	int ret;

	vb_dev_init(d);
	ret = vb_mem_init_size(&d->mem, o->data_mem);
	if (ret)
		return ret;
	d->fd = vb_open();
	if (d->fd < 0)
		return d->fd;
	return vb_dev_sequence(d, o);
}

int vb_set_mem_table(struct vb_dev *d)
{
	struct vhost_memory *t = vb_mem_table(&d->mem);
	int ret;

	if (!t)
		return -ENOMEM;
	ret = vb_ioctl(d->fd, VHOST_SET_MEM_TABLE, t);
	free(t);
	return ret;
}

void vb_dev_teardown(struct vb_dev *d)
{
	unsigned int i;

	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	for (i = 0; i < VHOST_BLK_MAX_QUEUES; i++) {
		struct vb_vq *vq = &d->vq[i];

		if (vq->kick > 0)
			close(vq->kick);
		if (vq->call > 0)
			close(vq->call);
		if (vq->err > 0)
			close(vq->err);
		vq->kick = -1;
		vq->call = -1;
		vq->err = -1;
		free(vq->next);
		free(vq->chain);
		free(vq->inflight);
		vq->next = NULL;
		vq->chain = NULL;
		vq->inflight = NULL;
	}
	vb_mem_free(&d->mem);
}

/* ---------------------------------------------------------- guest driver */

static bool vb_event_idx(const struct vb_vq *vq)
{
	return vq->dev->features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
}

static void vb_set_desc(struct vring_desc *d, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
}

/* Put segs in the descriptor table (or an indirect table); not published. */
int vb_vq_add(struct vb_vq *vq, const struct vb_seg *s, int n, bool indirect,
	      uint16_t *headp)
{
	uint16_t head = vq->free_head, d = head, prev = head;
	int i;

	if (n <= 0 || n > VB_MAX_SEGS)
		return -EINVAL;
	if (indirect) {
		uint64_t tgpa = vq->slot_gpa + (uint64_t)head * VB_SLOT +
				VB_SLOT_TABLE;
		struct vring_desc *t = vb_hva(&vq->dev->mem, tgpa, 16 * n);

		if (!vq->nfree)
			return -ENOSPC;
		for (i = 0; i < n; i++)
			vb_set_desc(&t[i], s[i].gpa, s[i].len,
				    (s[i].write ? VRING_DESC_F_WRITE : 0) |
				    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				    i + 1 < n ? i + 1 : 0);
		vb_set_desc(&vq->desc[head], tgpa, 16 * n,
			    VRING_DESC_F_INDIRECT, 0);
		vq->free_head = vq->next[head];
		vq->nfree--;
		vq->chain[head] = 1;
		*headp = head;
		return 0;
	}
	if ((unsigned int)n > vq->nfree)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		prev = d;
		vb_set_desc(&vq->desc[d], s[i].gpa, s[i].len,
			    (s[i].write ? VRING_DESC_F_WRITE : 0) |
			    (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			    i + 1 < n ? vq->next[d] : 0);
		d = vq->next[d];
	}
	(void)prev;
	vq->free_head = d;
	vq->nfree -= n;
	vq->chain[head] = n;
	*headp = head;
	return 0;
}

void vb_vq_publish(struct vb_vq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx % vq->num] = htole16(head);
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, htole16(vq->avail_idx),
			 __ATOMIC_RELEASE);
}

void vb_vq_kick(struct vb_vq *vq)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (write(vq->kick, &one, sizeof(one)) != sizeof(one))
		perror("kick");
}

uint16_t vb_used_idx(const struct vb_vq *vq)
{
	return le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
}

unsigned int vb_vq_pending(const struct vb_vq *vq)
{
	return (uint16_t)(vq->avail_idx - vq->used_seen);
}

static bool vb_is_in(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

/* Add data segments [gpa, gpa+len) to s, split per the layout. */
static int vb_data_segs(struct vb_seg *s, int n, uint64_t gpa, uint32_t len,
			bool write, bool split, bool odd_split)
{
	static const uint32_t odd[] = { 3, 1, 5, 2 };
	uint32_t chunk = len, unit;
	unsigned int k = 0;

	if (odd_split) {
		/*
		 * Uneven multiples of a unit that is a whole number of
		 * sectors but not of pages, 12 units per cycle of odd[].
		 */
		unit = (len / ((VB_MAX_SEGS - 8) * 11 / 4) + VB_SECTOR - 1) /
		       VB_SECTOR * VB_SECTOR + VB_SECTOR;
		if (!(unit % PAGE))
			unit += VB_SECTOR;
		while (len) {
			uint32_t l = odd[k++ % 4] * unit;

			if (l > len)
				l = len;
			s[n++] = (struct vb_seg){ gpa, l, write };
			gpa += l;
			len -= l;
		}
		return n;
	}
	if (split) {
		chunk = VB_SECTOR;
		/* keep the chain within VB_MAX_SEGS */
		while (len / chunk > VB_MAX_SEGS - 8)
			chunk *= 2;
	}
	while (len) {
		uint32_t l = len < chunk ? len : chunk;

		s[n++] = (struct vb_seg){ gpa, l, write };
		gpa += l;
		len -= l;
	}
	return n;
}

/*
 * Write r's header and status byte into guest memory and describe the
 * request as segments for head; returns the segment count.
 */
int vb_req_prepare_segs(struct vb_vq *vq, struct vb_req *r, uint16_t head,
			struct vb_seg *s)
{
	uint64_t slot = vq->slot_gpa + (uint64_t)head * VB_SLOT;
	struct virtio_blk_outhdr h = {
		.type = htole32(r->type),
		.ioprio = 0,
		.sector = htole64(r->sector),
	};
	bool in = vb_is_in(r->type), split = r->layout & VB_L_DATA_SPLIT;
	bool odd = r->layout & VB_L_DATA_ODD;
	uint8_t ff = 0xff;
	int n = 0;

	r->hdr_gpa = slot + VB_SLOT_HDR;
	if ((r->layout & VB_L_HDR_DATA) && !in && r->data_len)
		r->hdr_gpa = r->data_gpa - sizeof(h);
	r->status_gpa = slot + VB_SLOT_STATUS;
	if ((r->layout & VB_L_DATA_STATUS) && in && r->data_len)
		r->status_gpa = r->data_gpa + r->data_len;
	vb_write(&vq->dev->mem, r->hdr_gpa, &h, sizeof(h));
	vb_write(&vq->dev->mem, r->status_gpa, &ff, 1);

	if (r->hdr_gpa + sizeof(h) == r->data_gpa) {
		/* header and the first data bytes in one descriptor */
		uint32_t first = split ? VB_SECTOR : r->data_len;

		if (first > r->data_len)
			first = r->data_len;
		s[n++] = (struct vb_seg){ r->hdr_gpa, sizeof(h) + first, false };
		n = vb_data_segs(s, n, r->data_gpa + first,
				 r->data_len - first, false, split, odd);
	} else {
		if (r->layout & VB_L_HDR_SPLIT) {
			s[n++] = (struct vb_seg){ r->hdr_gpa, 7, false };
			s[n++] = (struct vb_seg){ r->hdr_gpa + 7, 9, false };
		} else {
			s[n++] = (struct vb_seg){ r->hdr_gpa, sizeof(h), false };
		}
		n = vb_data_segs(s, n, r->data_gpa, r->data_len, in, split,
				 odd);
	}
	if (r->status_gpa == r->data_gpa + r->data_len && r->data_len)
		s[n - 1].len++;	/* status is the last byte of the data desc */
	else
		s[n++] = (struct vb_seg){ r->status_gpa, 1, true };
	return n;
}

int vb_req_post(struct vb_vq *vq, struct vb_req *r)
{
	struct vb_seg s[VB_MAX_SEGS + 4];
	bool indirect = r->layout & VB_L_INDIRECT;
	int n, ret;

	if (!vq->nfree)
		return -ENOSPC;
	n = vb_req_prepare_segs(vq, r, vq->free_head, s);
	if (!indirect && (unsigned int)n > vq->nfree)
		indirect = true;	/* does not fit the ring now: go indirect */
	ret = vb_vq_add(vq, s, n, indirect, &r->head);
	if (ret)
		return ret;
	r->done = false;
	r->used_len = ~0u;
	vq->inflight[r->head] = r;
	vb_vq_publish(vq, r->head);
	return 0;
}

static void vb_free_chain(struct vb_vq *vq, uint16_t head)
{
	uint16_t d = head, n = vq->chain[head];

	while (--n)
		d = vq->next[d];
	vq->next[d] = vq->free_head;
	vq->free_head = head;
	vq->nfree += vq->chain[head];
	vq->chain[head] = 0;
}

/* Consume new used entries; returns how many, or -EPROTO on a bogus one. */
int vb_vq_collect(struct vb_vq *vq)
{
	uint16_t used = vb_used_idx(vq);
	int n = 0;

	while (vq->used_seen != used) {
		struct vring_used_elem *e = &vq->used->ring[vq->used_seen %
							     vq->num];
		uint32_t id = le32toh(e->id);
		struct vb_req *r;

		if (id >= vq->num || !vq->chain[id]) {
			fprintf(stderr, "# bogus used id %u at used %u\n",
				id, vq->used_seen);
			return -EPROTO;
		}
		/* a chain added with vb_vq_add() alone has no vb_req */
		r = vq->inflight[id];
		vq->inflight[id] = NULL;
		if (r) {
			r->used_len = le32toh(e->len);
			vb_read(&vq->dev->mem, r->status_gpa, &r->status, 1);
			r->done = true;
		}
		vb_free_chain(vq, id);
		vq->used_seen++;
		vq->completed++;
		n++;
	}
	if (vb_event_idx(vq) && !vq->manual_used_event)
		__atomic_store_n(vb_used_event(vq),
				 htole16(vq->used_seen), __ATOMIC_RELEASE);
	return n;
}

static int64_t vb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* 1 if fd became readable (and drained it), 0 on timeout, -errno. */
int vb_wait_fd(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int ret;

	do {
		ret = poll(&p, 1, timeout_ms);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0)
		return -errno;
	if (ret == 0)
		return 0;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

bool vb_fd_signalled(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

/*
 * Wait until n more requests completed, sleeping on the call eventfd.
 * -ETIMEDOUT: nothing came; -ENOTCONN: completions came but the device
 * never signalled them (a lost interrupt a real guest would hang on).
 */
int vb_vq_wait(struct vb_vq *vq, unsigned int n, int timeout_ms)
{
	int64_t end = vb_now_ms() + timeout_ms;
	unsigned int got = 0;
	int ret;

	for (;;) {
		int64_t left;

		ret = vb_vq_collect(vq);
		if (ret < 0)
			return ret;
		got += ret;
		if (got >= n)
			return 0;
		/* used_event was just republished: re-check, then sleep */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (vb_used_idx(vq) != vq->used_seen)
			continue;
		left = end - vb_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		ret = vb_wait_fd(vq->call, left);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return vb_used_idx(vq) != vq->used_seen ? -ENOTCONN :
								   -ETIMEDOUT;
	}
}

/* Wait until used->idx reaches idx (raw tests; consumes nothing). */
int vb_wait_used_idx(struct vb_vq *vq, uint16_t idx, int timeout_ms)
{
	int64_t end = vb_now_ms() + timeout_ms;

	while (vb_used_idx(vq) != idx) {
		if (vb_now_ms() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	return 0;
}

/* Wait for n completions by polling the used ring (ignores the call fd). */
int vb_vq_poll_used(struct vb_vq *vq, unsigned int n, int timeout_ms)
{
	int64_t end = vb_now_ms() + timeout_ms;
	unsigned int got = 0;
	int ret;

	for (;;) {
		ret = vb_vq_collect(vq);
		if (ret < 0)
			return ret;
		got += ret;
		if (got >= n)
			return 0;
		if (vb_now_ms() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

int vb_io(struct vb_vq *vq, uint32_t type, uint64_t sector, uint64_t data_gpa,
	  uint32_t len, unsigned int layout, uint32_t *used_len)
{
	struct vb_req r = {
		.type = type, .sector = sector, .data_gpa = data_gpa,
		.data_len = len, .layout = layout,
	};
	int64_t end = vb_now_ms() + VB_TIMEOUT_MS;
	int ret;

	ret = vb_req_post(vq, &r);
	if (ret)
		return ret;
	vb_vq_kick(vq);
	while (!r.done) {
		ret = vb_vq_wait(vq, 1, end - vb_now_ms());
		if (ret) {
			/* never leave a stack request in inflight[] */
			vq->inflight[r.head] = NULL;
			return ret;
		}
	}
	if (used_len)
		*used_len = r.used_len;
	return r.status;
}

int vb_io_write_pattern(struct vb_vq *vq, uint64_t gpa, uint64_t sector,
			uint32_t len, uint32_t seed, uint32_t *used_len)
{
	uint8_t *p = malloc(len);

	if (!p)
		return -ENOMEM;
	vb_pattern(p, len, sector, seed);
	vb_write(&vq->dev->mem, gpa, p, len);
	free(p);
	return vb_io(vq, VIRTIO_BLK_T_OUT, sector, gpa, len, 0, used_len);
}

int vb_io_read_to(struct vb_vq *vq, uint64_t gpa, uint64_t sector,
		  uint32_t len, void *out, uint32_t *used_len)
{
	int ret;

	vb_fill(&vq->dev->mem, gpa, 0xaa, len);
	ret = vb_io(vq, VIRTIO_BLK_T_IN, sector, gpa, len, 0, used_len);
	vb_read(&vq->dev->mem, gpa, out, len);
	return ret;
}

int vb_discard_wz(struct vb_vq *vq, uint32_t type, uint64_t sector,
		  uint32_t nsect, uint32_t flags, uint32_t *used_len)
{
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = htole64(sector),
		.num_sectors = htole32(nsect),
		.flags = htole32(flags),
	};

	vb_write(&vq->dev->mem, vq->scratch_gpa, &seg, sizeof(seg));
	return vb_io(vq, type, 0, vq->scratch_gpa, sizeof(seg), 0, used_len);
}

/* --------------------------------------------------------------- helpers */

uint64_t vb_rand(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

bool vb_is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	while (len--)
		if (*b++)
			return false;
	return true;
}

void vb_pattern(void *buf, size_t len, uint64_t sector, uint32_t seed)
{
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / 8; i++) {
		uint64_t x = (sector + i / 64) * 0x9E3779B97F4A7C15ULL ^
			     ((uint64_t)seed << 32 | (i % 64));

		x ^= x >> 29;
		p[i] = x * 0xBF58476D1CE4E5B9ULL | 1;	/* never all-zero */
	}
}

/* -------------------------------------------------------------- backends */

char vb_ext4_shared[256];

static int vb_run(const char *cmd)
{
	int ret = system(cmd);

	return ret == 0 ? 0 : -EIO;
}

int vb_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int vb_read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	size_t n = 0;
	ssize_t got;

	if (fd < 0)
		return -errno;
	/* seq_file hands out a page or so per read: read to the end. */
	while (n < len - 1) {
		got = read(fd, buf + n, len - 1 - n);
		if (got < 0) {
			ret = -errno;
			break;
		}
		if (!got)
			break;
		n += got;
	}
	close(fd);
	if (ret)
		return ret;
	buf[n] = 0;
	return n;
}

int vb_fdinfo_read(int fd, char *text, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return vb_read_text(path, text, len);
}

const char *vb_fdinfo_get(const char *text, const char *key, char *val,
			  size_t len)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			const char *v = p + klen + 1, *end;

			v += strspn(v, " \t");
			end = strchrnul(v, '\n');
			snprintf(val, len, "%.*s", (int)(end - v), v);
			return val;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

long long vb_fdinfo_get_num(const char *text, const char *key)
{
	char val[128];

	if (!vb_fdinfo_get(text, key, val, sizeof(val)))
		return -1;
	return strtoll(val, NULL, 0);
}

long long vb_fdinfo_num(int fd, const char *key)
{
	char *text = malloc(VB_FDINFO_MAX);
	long long n = -1;

	if (text && vb_fdinfo_read(fd, text, VB_FDINFO_MAX) >= 0)
		n = vb_fdinfo_get_num(text, key);
	free(text);
	return n;
}

long long vb_fdinfo_vq_sum(int fd, const char *field)
{
	char key[64], *text = malloc(VB_FDINFO_MAX);
	long long sum = -1, n;
	unsigned int q;

	if (!text || vb_fdinfo_read(fd, text, VB_FDINFO_MAX) <= 0)
		goto out;
	for (sum = 0, q = 0; q < VHOST_BLK_MAX_QUEUES; q++) {
		snprintf(key, sizeof(key), "vq%u.%s", q, field);
		n = vb_fdinfo_get_num(text, key);
		if (n > 0)
			sum += n;
	}
out:
	free(text);
	return sum;
}

void vb_worker_name(char *name, size_t len, pid_t owner)
{
	snprintf(name, len, "vhost-blk-%d", owner);
	if (len > 16)
		name[15] = 0;
}

int vb_count_threads(const char *name, pid_t *tid)
{
	char path[64], comm[32];
	struct dirent *e;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		pid_t pid = atoi(e->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (vb_read_text(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = 0;
		if (strcmp(comm, name))
			continue;
		n++;
		if (tid)
			*tid = pid;
	}
	closedir(d);
	return n;
}

int vb_wait_threads(const char *name, int want, pid_t *tid)
{
	int i, n = vb_count_threads(name, tid);

	for (i = 0; i < 1000 && n != want; i++) {
		usleep(10000);
		n = vb_count_threads(name, tid);
	}
	return n;
}

static int vb_write_attr(const char *dir, const char *attr, const char *val)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	return vb_write_text(path, val);
}

static int vb_wait_path(const char *path)
{
	int i;

	for (i = 0; i < 200; i++) {
		if (!access(path, F_OK))
			return 0;
		usleep(10000);
	}
	return -ENOENT;
}

/* A directory on tmpfs: /dev/shm if it is one, else our own mount. */
static int vb_tmpfs_dir(char *dir, size_t len, char *mnt, size_t mlen)
{
	struct statfs sf;

	mnt[0] = 0;
	if (!statfs("/dev/shm", &sf) && sf.f_type == TMPFS_MAGIC &&
	    !access("/dev/shm", W_OK)) {
		snprintf(dir, len, "/dev/shm");
		return 0;
	}
	snprintf(mnt, mlen, "/tmp/vbt-tmpfs-XXXXXX");
	if (!mkdtemp(mnt))
		return -errno;
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256m")) {
		int ret = -errno;

		rmdir(mnt);
		mnt[0] = 0;
		return ret;
	}
	snprintf(dir, len, "%s", mnt);
	return 0;
}

static int vb_make_file(char *path, size_t plen, const char *dir,
			uint64_t size)
{
	int fd;

	snprintf(path, plen, "%s/vhost-blk-test-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		int ret = -errno;

		close(fd);
		unlink(path);
		return ret;
	}
	close(fd);
	return 0;
}

int vb_loop_attach(const char *file, char *dev, size_t dlen)
{
	struct loop_info64 li = { .lo_flags = LO_FLAGS_AUTOCLEAR };
	int ctl, n, lfd, ffd, ret = 0;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0 && vb_run("modprobe loop 2>/dev/null") == 0)
		ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	close(ctl);
	if (n < 0)
		return -errno;
	snprintf(dev, dlen, "/dev/loop%d", n);
	if (vb_wait_path(dev))
		return -ENOENT;
	lfd = open(dev, O_RDWR | O_CLOEXEC);
	ffd = open(file, O_RDWR | O_CLOEXEC);
	if (lfd < 0 || ffd < 0) {
		ret = -errno;
		goto out;
	}
	if (ioctl(lfd, LOOP_SET_FD, ffd) ||
	    ioctl(lfd, LOOP_SET_STATUS64, &li))
		ret = -errno;
out:
	/* autoclear: the loop device goes away with its last opener */
	if (ffd >= 0)
		close(ffd);
	if (lfd >= 0 && ret) {
		ioctl(lfd, LOOP_CLR_FD, 0);
		close(lfd);
		return ret;
	}
	return lfd;
}

static uint64_t vb_fd_size(int fd)
{
	struct stat st;
	uint64_t sz = 0;

	if (fstat(fd, &st))
		return 0;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &sz))
			return 0;
		return sz;
	}
	return st.st_size;
}

static bool vb_bdev_discard_zeroes(const char *dev)
{
	char path[256], buf[64];
	const char *name = strrchr(dev, '/');

	snprintf(path, sizeof(path), "/sys/block/%s/queue/discard_max_bytes",
		 name ? name + 1 : dev);
	if (vb_read_text(path, buf, sizeof(buf)) < 0)
		return false;
	return strtoull(buf, NULL, 0) > 0;
}

/* Wait for the node of null_blk @b (configfs index @idx) into b->path. */
static int vb_nullb_node(struct vb_backend *b, int idx)
{
	int i;

	/* newer null_blk names the disk after the configfs item */
	for (i = 0; i < 200; i++) {
		snprintf(b->path, sizeof(b->path), "/dev/%s",
			 strrchr(b->aux, '/') + 1);
		if (!access(b->path, F_OK))
			return 0;
		snprintf(b->path, sizeof(b->path), "/dev/nullb%d", idx);
		if (!access(b->path, F_OK))
			return 0;
		usleep(10000);
	}
	return -ENOENT;
}

int vb_nullb_power(struct vb_backend *b, bool on)
{
	char val[300], idx[32];
	int ret;

	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	ret = vb_write_attr(b->aux, "power", on ? "1" : "0");
	if (ret || !on)
		return ret;
	snprintf(val, sizeof(val), "%s/index", b->aux);
	ret = vb_read_text(val, idx, sizeof(idx));
	if (ret < 0)
		return ret;
	return vb_nullb_node(b, atoi(idx));
}

int vb_nullb_create(struct vb_backend *b, uint64_t size, const char *badblocks,
		    int oflags, const char **why)
{
	char attr[300];
	const char *attrs[2];

	if (!badblocks)
		return vb_nullb_create_attrs(b, size, NULL, oflags, why);
	snprintf(attr, sizeof(attr), "badblocks=%s", badblocks);
	attrs[0] = attr;
	attrs[1] = NULL;
	return vb_nullb_create_attrs(b, size, attrs, oflags, why);
}

int vb_nullb_create_attrs(struct vb_backend *b, uint64_t size,
			  const char *const *attrs, int oflags,
			  const char **why)
{
	static int seq;
	char val[300], idx[32], name[64];
	int ret, i;

	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->kind = "nullb";
	if (access("/sys/kernel/config", F_OK))
		vb_run("mount -t configfs none /sys/kernel/config 2>/dev/null");
	if (access("/sys/kernel/config/nullb", F_OK)) {
		vb_run("modprobe null_blk nr_devices=0 2>/dev/null");
		if (access("/sys/kernel/config", F_OK) ||
		    access("/sys/kernel/config/nullb", F_OK))
			vb_run("mount -t configfs none /sys/kernel/config 2>/dev/null");
	}
	if (access("/sys/kernel/config/nullb", F_OK)) {
		*why = "null_blk with configfs not available";
		return -ENOENT;
	}
	snprintf(b->aux, sizeof(b->aux), "/sys/kernel/config/nullb/vbt%d_%d",
		 getpid(), seq++);
	if (mkdir(b->aux, 0755)) {
		*why = "cannot create a null_blk configfs device";
		return -errno;
	}
	snprintf(val, sizeof(val), "%llu", (unsigned long long)(size >> 20));
	ret = vb_write_attr(b->aux, "size", val);
	ret = ret ?: vb_write_attr(b->aux, "blocksize", "512");
	ret = ret ?: vb_write_attr(b->aux, "memory_backed", "1");
	ret = ret ?: vb_write_attr(b->aux, "discard", "1");
	for (i = 0; !ret && attrs && attrs[i]; i++) {
		const char *eq = strchr(attrs[i], '=');

		if (!eq || eq - attrs[i] >= (int)sizeof(name)) {
			ret = -EINVAL;
			break;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - attrs[i]),
			 attrs[i]);
		ret = vb_write_attr(b->aux, name, eq + 1);
	}
	ret = ret ?: vb_write_attr(b->aux, "power", "1");
	if (ret) {
		*why = "null_blk configfs attribute write failed";
		goto fail;
	}
	snprintf(val, sizeof(val), "%s/index", b->aux);
	ret = vb_read_text(val, idx, sizeof(idx));
	if (ret < 0) {
		*why = "null_blk index unreadable";
		goto fail;
	}
	if (vb_nullb_node(b, atoi(idx))) {
		*why = "null_blk device node did not appear";
		ret = -ENOENT;
		goto fail;
	}
	b->fd = open(b->path, O_RDWR | O_CLOEXEC | oflags);
	if (b->fd < 0) {
		ret = -errno;
		*why = "cannot open null_blk device";
		goto fail;
	}
	b->size = vb_fd_size(b->fd);
	b->discard_zeroes = vb_bdev_discard_zeroes(b->path);
	b->can_discard = b->discard_zeroes;
	return b->fd;
fail:
	vb_write_attr(b->aux, "power", "0");
	rmdir(b->aux);
	b->aux[0] = 0;
	return ret < 0 ? ret : -EIO;
}

int vb_nullb_create_slow(struct vb_backend *b, uint64_t size,
			 unsigned int completion_ms, unsigned int depth,
			 const char **why)
{
	char nsec[48], qd[48];
	const char *const attrs[] = { "irqmode=2", nsec, qd, NULL };

	snprintf(nsec, sizeof(nsec), "completion_nsec=%llu",
		 completion_ms * 1000000ULL);
	snprintf(qd, sizeof(qd), "hw_queue_depth=%u", depth);
	return vb_nullb_create_attrs(b, size, attrs, 0, why);
}

static int vb_brd_create(struct vb_backend *b, int oflags, const char **why)
{
	if (access("/dev/ram0", F_OK) &&
	    vb_run("modprobe brd rd_nr=1 rd_size=65536 max_part=0 2>/dev/null")) {
		*why = "brd not available";
		return -ENOENT;
	}
	snprintf(b->path, sizeof(b->path), "/dev/ram0");
	if (vb_wait_path(b->path)) {
		*why = "/dev/ram0 did not appear";
		return -ENOENT;
	}
	b->fd = open(b->path, O_RDWR | O_CLOEXEC | oflags);
	if (b->fd < 0) {
		*why = "cannot open /dev/ram0";
		return -errno;
	}
	b->size = vb_fd_size(b->fd);
	b->discard_zeroes = vb_bdev_discard_zeroes(b->path);
	b->can_discard = b->discard_zeroes;
	return b->fd;
}

/*
 * kind: "tmpfs" (file on tmpfs), "ext4" or "xfs" (file on that file system
 * on a loop device), "loop" (loop device over a tmpfs file), "brd",
 * "nullb".
 * oflags are added to O_RDWR (e.g. O_DIRECT).
 */
int vb_backend_create(struct vb_backend *b, const char *kind, uint64_t size,
		      int oflags, const char **why)
{
	char dir[256], mnt[256] = "", cmd[640];
	bool xfs = !strcmp(kind, "xfs");
	const char *fs = xfs ? "xfs" : "ext4";
	uint64_t img;
	int ret, lfd;

	if (!strcmp(kind, "nullb"))
		return vb_nullb_create(b, size, NULL, oflags, why);
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->kind = kind;
	if (!strcmp(kind, "brd"))
		return vb_brd_create(b, oflags, why);

	ret = vb_tmpfs_dir(dir, sizeof(dir), mnt, sizeof(mnt));
	if (ret) {
		*why = "no tmpfs available";
		return ret;
	}
	if (!strcmp(kind, "tmpfs")) {
		snprintf(b->aux, sizeof(b->aux), "%s", mnt);
		ret = vb_make_file(b->path, sizeof(b->path), dir, size);
		if (ret) {
			*why = "cannot create a tmpfs file";
			return ret;
		}
		b->fd = open(b->path, O_RDWR | O_CLOEXEC | oflags);
		if (b->fd < 0) {
			*why = oflags & O_DIRECT ?
			       "tmpfs does not support O_DIRECT on this kernel" :
			       "cannot open the tmpfs file";
			return -errno;
		}
		b->size = size;
		b->can_discard = true;
		b->discard_zeroes = true;
		return b->fd;
	}
	if (strcmp(kind, "loop") && strcmp(kind, "ext4") && !xfs) {
		*why = "unknown backend kind";
		return -EINVAL;
	}
	if (!strcmp(kind, "ext4") && vb_ext4_shared[0]) {
		struct statfs sf;

		/* one file system for all tests of a program: mkfs is slow */
		snprintf(b->aux, sizeof(b->aux), "%s", vb_ext4_shared);
		b->shared_fs = true;
		if (!statfs(b->aux, &sf) && sf.f_type == EXT4_SUPER_MAGIC) {
			if (mnt[0]) {
				umount2(mnt, MNT_DETACH);
				rmdir(mnt);
			}
			goto ext4_file;
		}
		mkdir(b->aux, 0700);
	}
	/*
	 * loop device over a tmpfs file; for ext4 the file system's image,
	 * which, shared, must also hold the larger files of later tests
	 * (tmpfs only keeps what is written).
	 */
	img = size;
	if (!strcmp(kind, "ext4"))
		img = b->shared_fs && size + 32 * MiB < 160 * MiB ?
		      160 * MiB : size + 32 * MiB;
	/* mkfs.xfs refuses less than 300 MiB; tmpfs keeps what it writes */
	if (xfs)
		img = size + 32 * MiB < 320 * MiB ? 320 * MiB : size + 32 * MiB;
	ret = vb_make_file(cmd, sizeof(cmd), dir, img);
	if (ret) {
		*why = "cannot create the loop backing file";
		return ret;
	}
	lfd = vb_loop_attach(cmd, b->loopdev, sizeof(b->loopdev));
	unlink(cmd);	/* the loop device holds the file */
	if (lfd < 0) {
		*why = "loop devices not available";
		return lfd;
	}
	if (!strcmp(kind, "loop")) {
		b->fd = lfd;
		snprintf(b->path, sizeof(b->path), "%s", b->loopdev);
		b->size = vb_fd_size(lfd);
		/* loop discards by punching the tmpfs file: zeroes */
		b->discard_zeroes = vb_bdev_discard_zeroes(b->path);
		b->can_discard = b->discard_zeroes;
		if (oflags) {
			b->fd = open(b->path, O_RDWR | O_CLOEXEC | oflags);
			close(lfd);
		}
		if (mnt[0])
			umount2(mnt, MNT_DETACH);
		return b->fd;
	}
	snprintf(cmd, sizeof(cmd), "/sbin/mkfs.%s", fs);
	if (access(cmd, X_OK)) {
		snprintf(cmd, sizeof(cmd), "/usr/sbin/mkfs.%s", fs);
		if (access(cmd, X_OK)) {
			close(lfd);
			*why = xfs ? "mkfs.xfs not installed (apt-get install xfsprogs)" :
				     "mkfs.ext4 not installed";
			return -ENOENT;
		}
	}
	if (xfs)
		snprintf(cmd, sizeof(cmd), "mkfs.xfs -q -f -K %s >/dev/null 2>&1",
			 b->loopdev);
	else
		snprintf(cmd, sizeof(cmd),
			 "mkfs.ext4 -q -F -E nodiscard %s >/dev/null 2>&1",
			 b->loopdev);
	if (vb_run(cmd)) {
		close(lfd);
		*why = xfs ? "mkfs.xfs failed" : "mkfs.ext4 failed";
		return -EIO;
	}
	snprintf(cmd, sizeof(cmd), "modprobe %s 2>/dev/null", fs);
	vb_run(cmd);
	if (!b->shared_fs)
		snprintf(b->aux, sizeof(b->aux), "/tmp/vbt-%s-XXXXXX", fs);
	if ((!b->shared_fs && !mkdtemp(b->aux)) ||
	    mount(b->loopdev, b->aux, fs, 0, NULL)) {
		ret = -errno;
		close(lfd);
		rmdir(b->aux);
		b->aux[0] = 0;
		*why = xfs ? "cannot mount xfs (not in this kernel?)" :
			     "cannot mount ext4 (module missing?)";
		return ret;
	}
	close(lfd);	/* the mount holds the loop device now */
	if (mnt[0])
		umount2(mnt, MNT_DETACH);
ext4_file:
	ret = vb_make_file(b->path, sizeof(b->path), b->aux, size);
	if (ret) {
		*why = "cannot create the image file";
		return ret;
	}
	b->fd = open(b->path, O_RDWR | O_CLOEXEC | oflags);
	if (b->fd < 0) {
		*why = "cannot open the image file";
		return -errno;
	}
	b->size = size;
	b->can_discard = true;
	b->discard_zeroes = true;
	return b->fd;
}

void vb_ext4_shared_done(void)
{
	if (!vb_ext4_shared[0])
		return;
	umount2(vb_ext4_shared, MNT_DETACH);
	rmdir(vb_ext4_shared);
}

int vb_backend_reopen(struct vb_backend *b, int flags)
{
	int fd = open(b->path, flags | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = fd;
	return fd;
}

void vb_backend_destroy(struct vb_backend *b)
{
	if (!b->kind)
		return;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	if (!strcmp(b->kind, "nullb") && b->aux[0]) {
		vb_write_attr(b->aux, "power", "0");
		rmdir(b->aux);
	} else if (!strcmp(b->kind, "tmpfs")) {
		unlink(b->path);
		if (b->aux[0]) {
			umount2(b->aux, MNT_DETACH);
			rmdir(b->aux);
		}
	} else if (!strcmp(b->kind, "ext4") && b->shared_fs) {
		unlink(b->path);
	} else if ((!strcmp(b->kind, "ext4") || !strcmp(b->kind, "xfs")) &&
		   b->aux[0]) {
		unlink(b->path);
		umount2(b->aux, MNT_DETACH);
		rmdir(b->aux);
	}
	b->kind = NULL;
}

/* ------------------------------------------------------ device-mapper */

bool vb_have_dmsetup(void)
{
	return !access("/sbin/dmsetup", X_OK) ||
	       !access("/usr/sbin/dmsetup", X_OK);
}

/*
 * Create dm device @name from @table and open it O_RDWR.  Without udev
 * there is no /dev/mapper/<name>: open /dev/dm-N, which devtmpfs makes.
 */
int vb_dm_create(struct vb_dm *dm, const char *name, const char *table,
		 const char **why)
{
	char cmd[1024], out[64], link[256];
	unsigned int maj, min;
	FILE *f;
	int i;

	dm->fd = -1;
	dm->name[0] = 0;
	if (!vb_have_dmsetup()) {
		*why = "dmsetup not installed (apt-get install dmsetup)";
		return -ENOENT;
	}
	if (system("modprobe dm_mod 2>/dev/null"))
		; /* built in, or dmsetup will say */
	snprintf(dm->name, sizeof(dm->name), "%s-%d", name, getpid());
	snprintf(cmd, sizeof(cmd),
		 "printf '%s' | dmsetup create --noudevsync %s >/dev/null 2>&1",
		 table, dm->name);
	if (system(cmd)) {
		dm->name[0] = 0;
		*why = "dmsetup create failed (no device-mapper?)";
		return -EIO;
	}
	snprintf(cmd, sizeof(cmd),
		 "dmsetup info -c --noheadings -o major,minor --separator ' ' %s",
		 dm->name);
	f = popen(cmd, "r");
	if (!f || !fgets(out, sizeof(out), f) ||
	    sscanf(out, "%u %u", &maj, &min) != 2) {
		if (f)
			pclose(f);
		*why = "dmsetup info failed";
		return -EIO;
	}
	pclose(f);
	snprintf(cmd, sizeof(cmd), "/sys/dev/block/%u:%u", maj, min);
	i = readlink(cmd, link, sizeof(link) - 1);
	if (i <= 0) {
		*why = "no sysfs entry for the dm device";
		return -ENOENT;
	}
	link[i] = 0;
	snprintf(dm->path, sizeof(dm->path), "/dev/%s", strrchr(link, '/') + 1);
	for (i = 0; i < 200 && access(dm->path, F_OK); i++)
		usleep(10000);
	dm->fd = open(dm->path, O_RDWR | O_CLOEXEC);
	if (dm->fd < 0) {
		*why = "cannot open the dm device";
		return -errno;
	}
	return dm->fd;
}

void vb_dm_destroy(struct vb_dm *dm)
{
	char cmd[256];
	int i;

	if (dm->fd >= 0)
		close(dm->fd);
	dm->fd = -1;
	if (!dm->name[0])
		return;
	snprintf(cmd, sizeof(cmd),
		 "dmsetup remove --noudevsync %s >/dev/null 2>&1", dm->name);
	/* the device may still be closing */
	for (i = 0; i < 50 && system(cmd); i++)
		usleep(20000);
	dm->name[0] = 0;
}

void vb_delay_init(struct vb_delay *dl)
{
	dl->disk.kind = NULL;
	dl->dm.fd = -1;
	dl->dm.name[0] = 0;
	dl->sectors = 0;
}

int vb_delay_create(struct vb_delay *dl, const char *name, uint64_t size,
		    const char *const *attrs, unsigned int delay_ms,
		    const char **why)
{
	char table[512];
	int ret;

	vb_delay_init(dl);
	ret = vb_nullb_create_attrs(&dl->disk, size, attrs, 0, why);
	if (ret < 0)
		return ret;
	dl->sectors = size / VB_SECTOR;
	if (vb_run("modprobe dm_delay 2>/dev/null"))
		; /* built in, or dmsetup will say */
	snprintf(table, sizeof(table), "0 %llu delay %s 0 %u",
		 (unsigned long long)dl->sectors, dl->disk.path, delay_ms);
	return vb_dm_create(&dl->dm, name, table, why);
}

int vb_dm_reload(const struct vb_dm *dm, const char *table)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "dmsetup suspend %s && dmsetup reload %s --table '%s' && dmsetup resume %s",
		 dm->name, dm->name, table, dm->name);
	return vb_run(cmd) ? -EIO : 0;
}

int vb_delay_release(struct vb_delay *dl)
{
	char table[512];

	snprintf(table, sizeof(table), "0 %llu linear %s 0",
		 (unsigned long long)dl->sectors, dl->disk.path);
	return vb_dm_reload(&dl->dm, table);
}

void vb_delay_destroy(struct vb_delay *dl)
{
	vb_dm_destroy(&dl->dm);
	vb_backend_destroy(&dl->disk);
}

/* Read the backend's content behind the device's back (page cache safe). */
int vb_backend_read(const struct vb_backend *b, uint64_t off, void *buf,
		    size_t len)
{
	struct stat st;
	void *bounce;
	int fd, ret = 0;

	fd = open(b->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		/* the device writes bios below the bdev page cache: drop it */
		close(fd);
		fd = open(b->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
		if (fd < 0)
			return -errno;
	}
	if (posix_memalign(&bounce, PAGE, vb_align_up(len, PAGE))) {
		close(fd);
		return -ENOMEM;
	}
	if (pread(fd, bounce, len, off) != (ssize_t)len)
		ret = -EIO;
	else
		memcpy(buf, bounce, len);
	free(bounce);
	close(fd);
	return ret;
}

int vb_backend_write(const struct vb_backend *b, uint64_t off,
		     const void *buf, size_t len)
{
	struct stat st;
	void *bounce;
	int fd, ret = 0, fl = O_WRONLY | O_CLOEXEC;

	if (stat(b->path, &st))
		return -errno;
	if (S_ISBLK(st.st_mode))
		fl |= O_DIRECT;
	fd = open(b->path, fl);
	if (fd < 0)
		return -errno;
	if (posix_memalign(&bounce, PAGE, vb_align_up(len, PAGE))) {
		close(fd);
		return -ENOMEM;
	}
	memcpy(bounce, buf, len);
	if (pwrite(fd, bounce, len, off) != (ssize_t)len || fsync(fd))
		ret = -EIO;
	free(bounce);
	close(fd);
	return ret;
}

/* ------------------------------------------------------------ dirty log */

int vb_log_init(struct vb_log *l, const struct vb_mem *m)
{
	uint64_t top = 0;
	int i;

	for (i = 0; i < m->nregions; i++)
		if (m->r[i].gpa + m->r[i].size > top)
			top = m->r[i].gpa + m->r[i].size;
	l->len = (top / VB_LOG_PAGE + 7) / 8;
	l->map_len = vb_align_up(l->len, PAGE) + PAGE;
	l->fd = -1;
	l->bits = mmap(NULL, l->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->bits == MAP_FAILED) {
		l->bits = NULL;
		return -errno;
	}
	/* A write past the bitmap's pages faults instead of landing. */
	if (mprotect(l->bits + l->map_len - PAGE, PAGE, PROT_NONE))
		return -errno;
	l->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return l->fd < 0 ? -errno : 0;
}

void vb_log_free(struct vb_log *l)
{
	if (l->bits)
		munmap(l->bits, l->map_len);
	if (l->fd >= 0)
		close(l->fd);
	l->bits = NULL;
	l->fd = -1;
}

int vb_vring_log(struct vb_dev *d, struct vb_vq *vq, bool on, uint64_t gpa)
{
	struct vhost_vring_addr a = {
		.index = vq->idx,
		.flags = on ? 1u << VHOST_VRING_F_LOG : 0,
		.desc_user_addr = (uintptr_t)vq->desc,
		.avail_user_addr = (uintptr_t)vq->avail,
		.used_user_addr = (uintptr_t)vq->used,
		.log_guest_addr = gpa,
	};

	return vb_ioctl(d->fd, VHOST_SET_VRING_ADDR, &a);
}

int vb_log_start(struct vb_dev *d, struct vb_log *l)
{
	uint64_t base = (uintptr_t)l->bits, f = d->features |
		       (1ULL << VHOST_F_LOG_ALL);
	unsigned int i;
	int ret;

	ret = vb_ioctl(d->fd, VHOST_SET_LOG_BASE, &base);
	if (!ret)
		ret = vb_ioctl(d->fd, VHOST_SET_LOG_FD, &l->fd);
	if (!ret)
		ret = vb_ioctl(d->fd, VHOST_SET_FEATURES, &f);
	for (i = 0; !ret && i < d->nvqs; i++)
		ret = vb_vring_log(d, &d->vq[i], true, d->vq[i].used_gpa);
	return ret;
}

int vb_log_stop(struct vb_dev *d)
{
	uint64_t f = d->features & ~(1ULL << VHOST_F_LOG_ALL);
	unsigned int i;
	int ret;

	ret = vb_ioctl(d->fd, VHOST_SET_FEATURES, &f);
	for (i = 0; !ret && i < d->nvqs; i++)
		ret = vb_vring_log(d, &d->vq[i], false, 0);
	return ret;
}

bool vb_log_test(const struct vb_log *l, uint64_t gpa)
{
	uint64_t pfn = gpa / VB_LOG_PAGE;

	return pfn / 8 < l->len &&
	       (__atomic_load_n(&l->bits[pfn / 8], __ATOMIC_ACQUIRE) >>
		(pfn % 8)) & 1;
}

void vb_log_clear(struct vb_log *l)
{
	size_t i;

	/* As QEMU does: atomically, the device may be setting bits. */
	for (i = 0; i < l->len; i++)
		__atomic_store_n(&l->bits[i], 0, __ATOMIC_RELEASE);
}

uint64_t vb_log_next(const struct vb_log *l, uint64_t gpa)
{
	uint64_t pfn;

	for (pfn = gpa / VB_LOG_PAGE; pfn / 8 < l->len; pfn++)
		if (vb_log_test(l, pfn * VB_LOG_PAGE))
			return pfn * VB_LOG_PAGE;
	return UINT64_MAX;
}

unsigned int vb_log_count(const struct vb_log *l)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < l->len; i++)
		n += __builtin_popcount(__atomic_load_n(&l->bits[i],
							__ATOMIC_ACQUIRE));
	return n;
}

uint64_t vb_log_signals(const struct vb_log *l)
{
	uint64_t v;

	return read(l->fd, &v, sizeof(v)) == sizeof(v) ? v : 0;
}

uint64_t vb_user_top(void)
{
	uint64_t top56 = (1ULL << 56) - PAGE;
	void *p;

	/* Only an address space that big takes a mapping this high. */
	p = mmap((void *)(uintptr_t)(top56 - PAGE), PAGE, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == (void *)(uintptr_t)(top56 - PAGE)) {
		munmap(p, PAGE);
		return top56;
	}
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	return (1ULL << 47) - PAGE;
}
