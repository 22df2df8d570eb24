// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk broken rings: every malformed descriptor chain must signal the
 * queue's error eventfd once and stop the queue, after completing what came
 * before it; the queue serves again once it is set up again, and other
 * queues never notice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define NUM		16
#define RAW		8	/* raw descriptors use table slots RAW..NUM-1 */

FIXTURE(ring) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t hdr, status, data, table;
	struct vb_req before, after;
	bool has_before;
};

FIXTURE_SETUP(ring)
{
	struct vb_opts o = { .nvqs = 2, .num = NUM };
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN, .sector = 0 };
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->has_before = false;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = self->b.fd;
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	/* the freelist must never hand out the raw slots */
	self->vq->nfree = RAW;
	self->hdr = vb_alloc(&self->d.mem, 0, 4096, 4096);
	self->status = self->hdr + 64;
	self->data = vb_alloc_data(&self->d.mem, 65536);
	self->table = vb_alloc_data(&self->d.mem, 1025 * 16);
	ASSERT_NE(0, self->hdr);
	ASSERT_NE(0, self->data);
	ASSERT_NE(0, self->table);
	vb_write(&self->d.mem, self->hdr, &h, sizeof(h));
}

FIXTURE_TEARDOWN(ring)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
}

static void desc(FIXTURE_DATA(ring) *self, unsigned int i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc *d = &self->vq->desc[i];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static struct vring_desc *table(FIXTURE_DATA(ring) *self, unsigned int n)
{
	return vb_hva(&self->d.mem, self->table, 16ULL * n);
}

/* A good read posted before the broken chain. */
static void post_before(struct __test_metadata *_metadata,
			FIXTURE_DATA(ring) *self)
{
	self->before = (struct vb_req){ .type = VIRTIO_BLK_T_IN, .sector = 8,
					.data_gpa = self->data + 32768,
					.data_len = 4096,
					.layout = VB_L_INDIRECT };
	ASSERT_EQ(0, vb_req_post(self->vq, &self->before));
	self->has_before = true;
}

/*
 * Post a good read after the broken chain, kick, and check: the error
 * eventfd fires once, the earlier request completed OK, the later one is
 * never served and nothing else lands in the used ring.
 */
static void expect_broken(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ring) *self)
{
	struct vb_vq *vq = self->vq;

	self->after = (struct vb_req){ .type = VIRTIO_BLK_T_IN, .sector = 16,
				       .data_gpa = self->data + 49152,
				       .data_len = 4096,
				       .layout = VB_L_INDIRECT };
	ASSERT_EQ(0, vb_req_post(vq, &self->after));
	vb_vq_kick(vq);
	ASSERT_EQ(1, vb_wait_fd(vq->err, VB_TIMEOUT_MS))
		TH_LOG("error eventfd not signalled");
	if (self->has_before) {
		ASSERT_EQ(0, vb_vq_poll_used(vq, 1, VB_TIMEOUT_MS))
			TH_LOG("request before the broken one not completed");
		ASSERT_EQ(VIRTIO_BLK_S_OK, self->before.status);
		ASSERT_EQ(4097, self->before.used_len);
	}
	vb_vq_kick(vq);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_LE(0, vb_vq_collect(vq)) TH_LOG("device completed a broken chain");
	ASSERT_FALSE(self->after.done) TH_LOG("stopped queue served a request");
	ASSERT_EQ(self->has_before ? 1 : 0, vq->completed);
	ASSERT_FALSE(vb_fd_signalled(vq->err)) TH_LOG("error signalled twice");
}

/* A valid 3-descriptor read at RAW, RAW+1, RAW+2 (helpers tweak it). */
static void good_chain(FIXTURE_DATA(ring) *self)
{
	desc(self, RAW, self->hdr, 16, VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->data, 4096,
	     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, RAW + 2);
	desc(self, RAW + 2, self->status, 1, VRING_DESC_F_WRITE, 0);
}

TEST_F(ring, valid_raw_chain_is_served)
{
	/* sanity check of the raw helpers themselves */
	post_before(_metadata, self);
	good_chain(self);
	vb_vq_publish(self->vq, RAW);
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_wait_used_idx(self->vq, 2, VB_TIMEOUT_MS));
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
	/* entries in completion order: find the raw one */
	for (int i = 0; i < 2; i++) {
		struct vring_used_elem *e = &self->vq->used->ring[i];
		uint8_t st = 0xff;

		if (e->id != RAW)
			continue;
		ASSERT_EQ(4097, e->len);
		vb_read(&self->d.mem, self->status, &st, 1);
		ASSERT_EQ(VIRTIO_BLK_S_OK, st);
		return;
	}
	ASSERT_TRUE(false) TH_LOG("raw chain head not in the used ring");
}

TEST_F(ring, head_index_out_of_range_breaks_ring)
{
	post_before(_metadata, self);
	vb_vq_publish(self->vq, NUM);
	expect_broken(_metadata, self);
}

TEST_F(ring, head_index_0xffff_breaks_ring)
{
	post_before(_metadata, self);
	vb_vq_publish(self->vq, 0xffff);
	expect_broken(_metadata, self);
}

TEST_F(ring, next_index_out_of_range_breaks_ring)
{
	post_before(_metadata, self);
	good_chain(self);
	self->vq->desc[RAW].next = NUM;
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, descriptor_loop_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, self->hdr, 16, VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->data, 512, VRING_DESC_F_NEXT, RAW);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, writable_descriptor_loop_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, self->hdr, 16, VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->data, 512,
	     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, RAW + 2);
	desc(self, RAW + 2, self->data + 512, 512,
	     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, RAW + 1);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, loop_inside_indirect_table_breaks_ring)
{
	struct vring_desc *t = table(self, 3);

	post_before(_metadata, self);
	t[0] = (struct vring_desc){ self->hdr, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ self->data, 512, VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ self->data, 512, VRING_DESC_F_NEXT, 1 };
	desc(self, RAW, self->table, 48, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, next_out_of_indirect_table_breaks_ring)
{
	struct vring_desc *t = table(self, 2);

	post_before(_metadata, self);
	t[0] = (struct vring_desc){ self->hdr, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ self->status, 1,
				    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	desc(self, RAW, self->table, 32, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

static void bad_data_addr(struct __test_metadata *_metadata,
			  FIXTURE_DATA(ring) *self, uint64_t addr, uint32_t len)
{
	post_before(_metadata, self);
	good_chain(self);
	self->vq->desc[RAW + 1].addr = addr;
	self->vq->desc[RAW + 1].len = len;
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, data_below_all_regions_breaks_ring)
{
	bad_data_addr(_metadata, self, 0, 512);
}

TEST_F(ring, data_between_regions_breaks_ring)
{
	bad_data_addr(_metadata, self, 0x80000000ULL, 512);
}

TEST_F(ring, data_past_last_region_breaks_ring)
{
	struct vb_region *r = &self->d.mem.r[2];

	bad_data_addr(_metadata, self, r->gpa + r->size, 512);
}

TEST_F(ring, data_spanning_into_a_gap_breaks_ring)
{
	struct vb_region *r = &self->d.mem.r[1];

	bad_data_addr(_metadata, self, r->gpa + r->size - 512, 1024);
}

TEST_F(ring, data_address_plus_length_overflow_breaks_ring)
{
	bad_data_addr(_metadata, self, ~0ULL - 511, 1024);
}

TEST_F(ring, header_outside_memory_breaks_ring)
{
	post_before(_metadata, self);
	good_chain(self);
	self->vq->desc[RAW].addr = 0x1000;
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, status_outside_memory_breaks_ring)
{
	post_before(_metadata, self);
	good_chain(self);
	self->vq->desc[RAW + 2].addr = ~0ULL;
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_table_outside_memory_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, 0x2000, 48, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

static void indirect_read(FIXTURE_DATA(ring) *self, struct vring_desc *t)
{
	t[0] = (struct vring_desc){ self->hdr, 16, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ self->data, 512,
				    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ self->status, 1, VRING_DESC_F_WRITE, 0 };
}

TEST_F(ring, indirect_with_next_flag_breaks_ring)
{
	post_before(_metadata, self);
	indirect_read(self, table(self, 3));
	desc(self, RAW, self->table, 48,
	     VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->status, 1, VRING_DESC_F_WRITE, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_inside_indirect_breaks_ring)
{
	struct vring_desc *t = table(self, 3);

	post_before(_metadata, self);
	indirect_read(self, t);
	t[1].flags |= VRING_DESC_F_INDIRECT;
	t[1].addr = self->table;
	t[1].len = 48;
	desc(self, RAW, self->table, 48, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_table_of_length_0_breaks_ring)
{
	post_before(_metadata, self);
	indirect_read(self, table(self, 3));
	desc(self, RAW, self->table, 0, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_length_not_multiple_of_16_breaks_ring)
{
	post_before(_metadata, self);
	indirect_read(self, table(self, 3));
	desc(self, RAW, self->table, 40, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_table_over_1024_entries_breaks_ring)
{
	struct vring_desc *t = table(self, 1025);

	post_before(_metadata, self);
	memset(t, 0, 1025 * 16);
	indirect_read(self, t);
	desc(self, RAW, self->table, 1025 * 16, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, indirect_table_of_1024_entries_is_served)
{
	struct vring_desc *t = table(self, 1024);
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_IN };
	unsigned int i;

	/* header split over 16 one-byte descriptors, 1007 of 64 data bytes */
	vb_write(&self->d.mem, self->hdr, &h, sizeof(h));
	for (i = 0; i < 16; i++)
		t[i] = (struct vring_desc){ self->hdr + i, 1,
					    VRING_DESC_F_NEXT, i + 1 };
	for (i = 16; i < 1023; i++)
		t[i] = (struct vring_desc){ self->data + (i - 16) * 64, 64,
					    VRING_DESC_F_WRITE |
					    VRING_DESC_F_NEXT, i + 1 };
	/* 1007 * 64 is not a multiple of 512: make the last data desc fit */
	t[1022].len = 64 + 1024 - (1007 * 64) % 512;
	t[1023] = (struct vring_desc){ self->status, 1, VRING_DESC_F_WRITE, 0 };
	desc(self, RAW, self->table, 1024 * 16, VRING_DESC_F_INDIRECT, 0);
	vb_vq_publish(self->vq, RAW);
	vb_vq_kick(self->vq);
	/* a file backend takes any segment alignment */
	ASSERT_EQ(0, vb_wait_used_idx(self->vq, 1, VB_TIMEOUT_MS));
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
	ASSERT_EQ(RAW, self->vq->used->ring[0].id);
	ASSERT_EQ(1006 * 64 + t[1022].len + 1, self->vq->used->ring[0].len);
}

TEST_F(ring, readable_after_writable_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, self->hdr, 16, VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->status, 1,
	     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, RAW + 2);
	desc(self, RAW + 2, self->data, 512, 0, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, no_writable_status_byte_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, self->hdr, 16, VRING_DESC_F_NEXT, RAW + 1);
	desc(self, RAW + 1, self->status, 1, 0, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, header_only_chain_breaks_ring)
{
	post_before(_metadata, self);
	desc(self, RAW, self->hdr, 16, 0, 0);
	vb_vq_publish(self->vq, RAW);
	expect_broken(_metadata, self);
}

TEST_F(ring, avail_index_jumping_past_num_breaks_ring)
{
	/* nothing before: the jump is seen before any head is read */
	self->vq->avail_idx += NUM + 1;
	__atomic_store_n(&self->vq->avail->idx, self->vq->avail_idx,
			 __ATOMIC_RELEASE);
	expect_broken(_metadata, self);
}

/* Make a ring page inaccessible after publishing a valid request. */
/*
 * Fault the ring page @page with @prot.  @taken: whether the worker can
 * take the request before it meets the fault (a used ring it cannot write
 * is found only after the request went to the backend); such a request
 * completes normally, and does so into the ring if it ends after the test
 * gave the page back its write access.
 */
static void expect_fault(struct __test_metadata *_metadata,
			 FIXTURE_DATA(ring) *self, void *page, int prot,
			 bool taken)
{
	struct vhost_vring_file kick = { .index = 0, .fd = self->vq->kick };
	unsigned int base;

	/*
	 * Stop the queue while the request is published and the page is
	 * protected, so that no pass of the worker can serve it before;
	 * SET_VRING_KICK starts the queue again and it meets the fault.
	 */
	good_chain(self);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	vb_vq_publish(self->vq, RAW);
	ASSERT_EQ(0, mprotect(page, 4096, prot));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_SET_VRING_KICK, &kick));
	ASSERT_EQ(1, vb_wait_fd(self->vq->err, VB_TIMEOUT_MS))
		TH_LOG("error eventfd not signalled");
	ASSERT_EQ(0, mprotect(page, 4096, PROT_READ | PROT_WRITE));
	usleep(VB_QUIET_MS * 1000);
	if (!taken || !vb_used_idx(self->vq)) {
		ASSERT_EQ(0, vb_used_idx(self->vq));
		return;
	}
	ASSERT_EQ(1, vb_used_idx(self->vq));
	ASSERT_EQ(RAW, self->vq->used->ring[0].id);
	ASSERT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)vb_hva(&self->d.mem,
						      self->status, 1));
}

TEST_F(ring, unreadable_descriptor_table_breaks_ring)
{
	expect_fault(_metadata, self, self->vq->desc, PROT_NONE, false);
}

TEST_F(ring, unreadable_avail_ring_breaks_ring)
{
	expect_fault(_metadata, self, self->vq->avail, PROT_NONE, false);
}

TEST_F(ring, read_only_used_ring_breaks_ring)
{
	expect_fault(_metadata, self, self->vq->used, PROT_READ, true);
}

TEST_F(ring, broken_queue_serves_again_after_setup)
{
	unsigned int base;
	uint32_t ul;

	post_before(_metadata, self);
	vb_vq_publish(self->vq, NUM + 3);
	expect_broken(_metadata, self);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(0, vb_vq_init_ring(&self->d, self->vq));
	ASSERT_EQ(0, vb_vq_start(&self->d, self->vq, 0));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0,
					 self->data, 4096, 0, &ul));
	ASSERT_EQ(4097, ul);
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

TEST_F(ring, broken_queue_leaves_other_queue_serving)
{
	struct vb_vq *q1 = &self->d.vq[1];
	uint32_t ul;

	post_before(_metadata, self);
	vb_vq_publish(self->vq, NUM);
	expect_broken(_metadata, self);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(q1, VIRTIO_BLK_T_IN, 0, self->data,
					 4096, VB_L_DATA_STATUS, &ul));
	ASSERT_EQ(4097, ul);
	ASSERT_FALSE(vb_fd_signalled(q1->err));
}

TEST_HARNESS_MAIN
