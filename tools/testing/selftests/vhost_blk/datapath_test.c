// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk data path: every request type and layout against a tmpfs file,
 * request-level errors (status bytes), notifications, GET_VRING_BASE,
 * RESET_OWNER, memory-table and backend changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(16ULL << 20)
#define DISK_SECTORS	(DISK_SIZE / VB_SECTOR)
#define BUF_SIZE	(1U << 20)
#define BIG		VHOST_BLK_MAX_REQUEST_BYTES

FIXTURE(dp) {
	struct vb_dev d;
	struct vb_backend b;
	struct vb_vq *vq;
	uint64_t buf, buf2, big;
	uint8_t *tmp, *tmp2;
};

static void dp_start(struct __test_metadata *_metadata,
		     FIXTURE_DATA(dp) *self, uint64_t features,
		     unsigned int num)
{
	struct vb_opts o = { .num = num, .features = features,
			     .backend = self->b.fd };
	int ret;

	vb_dev_teardown(&self->d);
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->vq = &self->d.vq[0];
	self->buf = vb_alloc_data(&self->d.mem, BUF_SIZE);
	self->buf2 = vb_alloc_data(&self->d.mem, BUF_SIZE);
	self->big = vb_alloc_data(&self->d.mem, BIG + VB_SECTOR);
	ASSERT_NE(0, self->buf);
	ASSERT_NE(0, self->buf2);
	ASSERT_NE(0, self->big);
}

FIXTURE_SETUP(dp)
{
	const char *why = "";
	int ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	ret = vb_backend_create(&self->b, "tmpfs", DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	self->tmp = malloc(BIG + VB_SECTOR);
	self->tmp2 = malloc(BIG + VB_SECTOR);
	ASSERT_NE(NULL, self->tmp);
	ASSERT_NE(NULL, self->tmp2);
	dp_start(_metadata, self, 0, 128);
}

FIXTURE_TEARDOWN(dp)
{
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	free(self->tmp);
	free(self->tmp2);
}

/* Write len bytes of pattern(seed) at sector through the device. */
static void dp_write(struct __test_metadata *_metadata,
		     FIXTURE_DATA(dp) *self, uint64_t sector, uint32_t len,
		     uint32_t seed, unsigned int layout)
{
	uint32_t ul = 0;

	vb_pattern(self->tmp, len, sector, seed);
	vb_write(&self->d.mem, self->buf, self->tmp, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, sector,
					 self->buf, len, layout, &ul));
	ASSERT_EQ(1, ul);
}

/* Read len bytes at sector through the device; expect pattern(seed). */
static void dp_check(struct __test_metadata *_metadata,
		     FIXTURE_DATA(dp) *self, uint64_t sector, uint32_t len,
		     uint32_t seed, unsigned int layout)
{
	uint32_t ul = 0;

	vb_fill(&self->d.mem, self->buf2, 0xaa, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, sector,
					 self->buf2, len, layout, &ul));
	ASSERT_EQ(len + 1, ul);
	vb_pattern(self->tmp, len, sector, seed);
	vb_read(&self->d.mem, self->buf2, self->tmp2, len);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, len)) {
		uint32_t i = 0;

		while (self->tmp[i] == self->tmp2[i])
			i++;
		TH_LOG("mismatch: sector %llu len %u layout %#x byte %u: %02x, want %02x",
		       (unsigned long long)sector, len, layout, i,
		       self->tmp2[i], self->tmp[i]);
	}
}

TEST_F(dp, write_then_read_returns_data_in_every_layout)
{
	unsigned int layout;

	for (layout = 0; layout <= VB_L_ALL; layout++) {
		uint64_t sector = 64 + layout * 24;

		dp_write(_metadata, self, sector, 8192, layout, layout);
		dp_check(_metadata, self, sector, 8192, layout, layout);
		/* read back once more in a different layout */
		dp_check(_metadata, self, sector, 8192, layout,
			 VB_L_ALL & ~layout);
	}
}

TEST_F(dp, backend_file_holds_written_data)
{
	dp_write(_metadata, self, 100, 4096, 7, 0);
	ASSERT_EQ(0, vb_backend_read(&self->b, 100 * 512, self->tmp2, 4096));
	vb_pattern(self->tmp, 4096, 100, 7);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 4096));
}

TEST_F(dp, read_returns_data_written_behind_the_device)
{
	vb_pattern(self->tmp, 65536, 2048, 3);
	ASSERT_EQ(0, vb_backend_write(&self->b, 2048 * 512, self->tmp, 65536));
	dp_check(_metadata, self, 2048, 65536, 3, 0);
}

TEST_F(dp, buffer_spanning_two_regions_works_both_ways)
{
	uint64_t span = vb_alloc_span(&self->d.mem, 65536);
	uint32_t ul;

	ASSERT_NE(0, span);
	ASSERT_EQ(NULL, vb_hva(&self->d.mem, span, 65536));
	vb_pattern(self->tmp, 65536, 300, 11);
	vb_write(&self->d.mem, span, self->tmp, 65536);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, 300, span,
					 65536, 0, &ul));
	dp_check(_metadata, self, 300, 65536, 11, 0);
	vb_fill(&self->d.mem, span, 0, 65536);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 300, span,
					 65536, VB_L_INDIRECT, &ul));
	ASSERT_EQ(65537, ul);
	vb_read(&self->d.mem, span, self->tmp2, 65536);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 65536));
}

TEST_F(dp, request_of_one_part_of_8mib_succeeds)
{
	uint32_t ul;

	vb_pattern(self->tmp, BIG, 0, 5);
	vb_write(&self->d.mem, self->big, self->tmp, BIG);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, 0,
					 self->big, BIG, 0, &ul));
	vb_fill(&self->d.mem, self->big, 0, BIG);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 0,
					 self->big, BIG, VB_L_DATA_SPLIT, &ul));
	ASSERT_EQ(BIG + 1, ul);
	vb_read(&self->d.mem, self->big, self->tmp2, BIG);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, BIG));
}

/* One sector more than a part: served in two (backends_test has more). */
TEST_F(dp, request_over_8mib_is_served_in_two_parts)
{
	uint32_t ul;

	vb_pattern(self->tmp, BIG + VB_SECTOR, 3, 6);
	vb_write(&self->d.mem, self->big, self->tmp, BIG + VB_SECTOR);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_OUT, 3,
					 self->big, BIG + VB_SECTOR,
					 VB_L_DATA_ODD, &ul));
	ASSERT_EQ(1, ul);
	vb_fill(&self->d.mem, self->big, 0, BIG + VB_SECTOR);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 3,
					 self->big, BIG + VB_SECTOR, 0, &ul));
	ASSERT_EQ(BIG + VB_SECTOR + 1, ul);
	vb_read(&self->d.mem, self->big, self->tmp2, BIG + VB_SECTOR);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, BIG + VB_SECTOR));
}

/*
 * With VHOST_BLK_SET_SEG_MAX a request of more than seg_max + 2
 * descriptors fails with IOERR (the guest broke a limit it was told, as
 * with a bad length: the ring stays up); 0 lifts the limit again.
 */
TEST_F(dp, more_descriptors_than_seg_max_fails_with_ioerr)
{
	unsigned int layouts[] = { VB_L_DATA_SPLIT,
				   VB_L_DATA_SPLIT | VB_L_INDIRECT };
	uint32_t seg_max = 8, ul, i;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SEG_MAX, &seg_max));
	ASSERT_EQ(8, vb_fdinfo_num(self->d.fd, "seg_max"));
	dp_write(_metadata, self, 0, 8 * VB_SECTOR, 1, 0);
	for (i = 0; i < 2; i++) {
		/* 8 data descriptors, header and status: seg_max + 2. */
		dp_check(_metadata, self, 0, 8 * VB_SECTOR, 1, layouts[i]);
		dp_write(_metadata, self, 0, 8 * VB_SECTOR, 1, layouts[i]);
		/* One more data descriptor: IOERR, read or write. */
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, 0, self->buf2,
				9 * VB_SECTOR, layouts[i], &ul));
		ASSERT_EQ(1, ul);
		vb_pattern(self->tmp, 9 * VB_SECTOR, 0, 7);
		vb_write(&self->d.mem, self->buf, self->tmp, 9 * VB_SECTOR);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, 0, self->buf,
				9 * VB_SECTOR, layouts[i], &ul));
		ASSERT_EQ(1, ul);
	}
	/* Nothing was written, and the queue goes on serving. */
	dp_check(_metadata, self, 0, 8 * VB_SECTOR, 1, 0);
	ASSERT_EQ(0, vb_backend_read(&self->b, 8 * VB_SECTOR, self->tmp2,
				     VB_SECTOR));
	vb_pattern(self->tmp, 9 * VB_SECTOR, 0, 7);
	ASSERT_NE(0, memcmp(self->tmp + 8 * VB_SECTOR, self->tmp2,
			    VB_SECTOR));
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
	seg_max = 0;
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SEG_MAX, &seg_max));
	dp_write(_metadata, self, 0, 9 * VB_SECTOR, 2, VB_L_DATA_SPLIT);
	dp_check(_metadata, self, 0, 9 * VB_SECTOR, 2, VB_L_DATA_SPLIT);
}

TEST_F(dp, seg_max_above_1022_fails_with_einval)
{
	uint32_t seg_max = VHOST_BLK_MAX_SEG_MAX + 1;

	ASSERT_EQ(-1, ioctl(self->d.fd, VHOST_BLK_SET_SEG_MAX, &seg_max));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, ioctl(self->d.fd, VHOST_BLK_SET_SEG_MAX, NULL));
	ASSERT_EQ(EFAULT, errno);
	seg_max = VHOST_BLK_MAX_SEG_MAX;
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SEG_MAX, &seg_max));
	dp_write(_metadata, self, 0, 4096, 3, VB_L_DATA_SPLIT);
}

TEST_F(dp, flush_succeeds_with_used_len_1)
{
	uint32_t ul = 0;

	dp_write(_metadata, self, 8, 4096, 1, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0,
					 VB_L_INDIRECT | VB_L_HDR_SPLIT, &ul));
	ASSERT_EQ(1, ul);
}

TEST_F(dp, get_id_returns_serial_with_used_len_21)
{
	static const char serial[VIRTIO_BLK_ID_BYTES] = "vhost-blk-serial-123";
	char got[VIRTIO_BLK_ID_BYTES];
	uint32_t ul = 0;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SERIAL, serial));
	vb_fill(&self->d.mem, self->buf2, 0, 512);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_GET_ID, 0,
					 self->buf2, 20, 0, &ul));
	ASSERT_EQ(21, ul);
	vb_read(&self->d.mem, self->buf2, got, sizeof(got));
	ASSERT_EQ(0, memcmp(serial, got, sizeof(got)));
}

TEST_F(dp, get_id_into_8_bytes_returns_prefix_with_used_len_9)
{
	static const char serial[VIRTIO_BLK_ID_BYTES] = "ABCDEFGHIJKLMNOPQRST";
	char got[16];
	uint32_t ul = 0;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SERIAL, serial));
	vb_fill(&self->d.mem, self->buf2, 0x55, 16);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_GET_ID, 0,
					 self->buf2, 8, VB_L_DATA_STATUS, &ul));
	ASSERT_EQ(9, ul);
	vb_read(&self->d.mem, self->buf2, got, sizeof(got));
	ASSERT_EQ(0, memcmp(serial, got, 8));
	/* got[8] is the status byte (shared descriptor), then untouched */
	ASSERT_EQ(VIRTIO_BLK_S_OK, got[8]);
	ASSERT_EQ(0x55, (uint8_t)got[9]);
}

TEST_F(dp, get_id_into_512_bytes_writes_only_20_with_used_len_21)
{
	static const char serial[VIRTIO_BLK_ID_BYTES] = "short";
	uint8_t got[512];
	uint32_t ul = 0;

	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_SERIAL, serial));
	vb_fill(&self->d.mem, self->buf2, 0x55, 512);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_GET_ID, 0,
					 self->buf2, 512, 0, &ul));
	ASSERT_EQ(21, ul);
	vb_read(&self->d.mem, self->buf2, got, sizeof(got));
	ASSERT_EQ(0, memcmp(serial, got, VIRTIO_BLK_ID_BYTES));
}

TEST_F(dp, unknown_request_types_return_unsupp)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_SCSI_CMD, 3, 5, 14, 0x80000000u, 0xffffffffu,
	};
	unsigned int i;
	uint32_t ul;

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		ul = 0;
		ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
			  vb_io(self->vq, types[i], 0, self->buf, 512, 0, &ul))
			TH_LOG("type %#x", types[i]);
		ASSERT_EQ(1, ul);
	}
}

static void dp_zeroes_test(struct __test_metadata *_metadata,
			   FIXTURE_DATA(dp) *self, uint32_t type,
			   uint32_t flags)
{
	uint32_t ul = 0;

	dp_write(_metadata, self, 1000, 16384, 9, 0);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_discard_wz(self->vq, type, 1004, 8,
						 flags, &ul));
	ASSERT_EQ(1, ul);
	vb_fill(&self->d.mem, self->buf2, 0xaa, 16384);
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_IN, 1000,
					 self->buf2, 16384, 0, &ul));
	vb_read(&self->d.mem, self->buf2, self->tmp2, 16384);
	vb_pattern(self->tmp, 16384, 1000, 9);
	ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 4 * 512));
	ASSERT_TRUE(vb_is_zero(self->tmp2 + 4 * 512, 8 * 512));
	ASSERT_EQ(0, memcmp(self->tmp + 12 * 512, self->tmp2 + 12 * 512,
			    4 * 512));
}

TEST_F(dp, write_zeroes_zeroes_exactly_the_range)
{
	dp_zeroes_test(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 0);
}

TEST_F(dp, write_zeroes_with_unmap_zeroes_exactly_the_range)
{
	dp_zeroes_test(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES,
		       VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
}

TEST_F(dp, discard_on_file_zeroes_exactly_the_range)
{
	dp_zeroes_test(_metadata, self, VIRTIO_BLK_T_DISCARD, 0);
}

TEST_F(dp, discard_with_any_flag_returns_unsupp)
{
	uint32_t ul;

	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, 0, 8,
				VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, 0, 8, 0x80,
				&ul));
}

TEST_F(dp, write_zeroes_with_unknown_flag_returns_unsupp)
{
	uint32_t ul;

	ASSERT_EQ(VIRTIO_BLK_S_UNSUPP,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2,
				&ul));
	ASSERT_EQ(1, ul);
}

TEST_F(dp, discard_payload_of_wrong_size_fails_with_ioerr)
{
	static const uint32_t sizes[] = { 0, 8, 15, 17, 31, 17 * 16 };
	struct virtio_blk_discard_write_zeroes seg[17] = {};
	unsigned int i, t;
	uint32_t ul;

	for (i = 0; i < 17; i++) {
		seg[i].sector = 4096 + 8 * i;
		seg[i].num_sectors = 8;
	}
	vb_write(&self->d.mem, self->buf, seg, sizeof(seg));
	for (t = 0; t < 2; t++) {
		uint32_t type = t ? VIRTIO_BLK_T_WRITE_ZEROES :
				    VIRTIO_BLK_T_DISCARD;

		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			ul = 0;
			ASSERT_EQ(VIRTIO_BLK_S_IOERR,
				  vb_io(self->vq, type, 0, self->buf, sizes[i],
					0, &ul))
				TH_LOG("type %u payload %u", type, sizes[i]);
			ASSERT_EQ(1, ul);
		}
	}
}

TEST_F(dp, write_zeroes_with_16_segments_zeroes_all_of_them)
{
	struct virtio_blk_discard_write_zeroes seg[16] = {};
	uint32_t ul;
	unsigned int i;

	dp_write(_metadata, self, 4096, 32 * 16 * 512, 4, 0);
	for (i = 0; i < 16; i++) {
		seg[i].sector = 4096 + 32 * i;
		seg[i].num_sectors = 8;
	}
	vb_write(&self->d.mem, self->buf, seg, sizeof(seg));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(self->vq, VIRTIO_BLK_T_WRITE_ZEROES,
					 0, self->buf, sizeof(seg), 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(0, vb_backend_read(&self->b, 4096 * 512ULL, self->tmp2,
				     32 * 16 * 512));
	vb_pattern(self->tmp, 32 * 16 * 512, 4096, 4);
	for (i = 0; i < 16; i++) {
		ASSERT_TRUE(vb_is_zero(self->tmp2 + i * 32 * 512, 8 * 512));
		ASSERT_EQ(0, memcmp(self->tmp + (i * 32 + 8) * 512,
				    self->tmp2 + (i * 32 + 8) * 512, 24 * 512));
	}
}

/* A discard or write-zeroes of @n segments of @nsect sectors at 4096. */
static int dp_dwz_segs(FIXTURE_DATA(dp) *self, uint32_t type,
		       unsigned int n, uint32_t nsect)
{
	struct virtio_blk_discard_write_zeroes seg[VHOST_BLK_MAX_DISCARD_SEG] = {};
	unsigned int i;
	uint32_t ul = 0;
	int st;

	for (i = 0; i < n; i++) {
		seg[i].sector = htole64(4096 + 64 * i);
		seg[i].num_sectors = htole32(nsect);
	}
	vb_write(&self->d.mem, self->buf, seg, n * sizeof(seg[0]));
	st = vb_io(self->vq, type, 0, self->buf, n * sizeof(seg[0]), 0, &ul);
	return ul == 1 ? st : -1;
}

/*
 * With VHOST_BLK_SET_LIMITS a discard or write-zeroes past the limits the
 * guest was told fails with IOERR and does nothing: one guest cannot
 * make the device zero the whole disk in one request the VMM capped.
 * All zeroes lifts the limits again.
 */
TEST_F(dp, discard_and_write_zeroes_past_the_vmm_limits_fail_with_ioerr)
{
	struct vhost_blk_limits l = {
		.max_discard_sectors = 8, .max_discard_seg = 2,
		.max_write_zeroes_sectors = 16, .max_write_zeroes_seg = 1,
	};

	char *text = malloc(VB_FDINFO_MAX), val[64];

	ASSERT_NE(NULL, text);
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_LIMITS, &l));
	/* fdinfo shows what the VMM set. */
	ASSERT_LT(0, vb_fdinfo_read(self->d.fd, text, VB_FDINFO_MAX));
	ASSERT_NE(NULL, vb_fdinfo_get(text, "discard_limits", val, sizeof(val)));
	ASSERT_STREQ("8 2", val);
	ASSERT_NE(NULL, vb_fdinfo_get(text, "write_zeroes_limits", val,
				      sizeof(val)));
	ASSERT_STREQ("16 1", val);
	free(text);
	dp_write(_metadata, self, 4096, 64 * 4 * VB_SECTOR, 5, 0);
	/* Past a limit: nothing is zeroed. */
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dp_dwz_segs(self, VIRTIO_BLK_T_WRITE_ZEROES, 1, 17));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dp_dwz_segs(self, VIRTIO_BLK_T_WRITE_ZEROES, 2, 1));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dp_dwz_segs(self, VIRTIO_BLK_T_DISCARD, 1, 9));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  dp_dwz_segs(self, VIRTIO_BLK_T_DISCARD, 3, 1));
	dp_check(_metadata, self, 4096, 64 * 4 * VB_SECTOR, 5, 0);
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
	/* At the limits: done. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  dp_dwz_segs(self, VIRTIO_BLK_T_WRITE_ZEROES, 1, 16));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  dp_dwz_segs(self, VIRTIO_BLK_T_DISCARD, 2, 8));
	ASSERT_EQ(0, vb_backend_read(&self->b, 4096 * VB_SECTOR, self->tmp2,
				     16 * VB_SECTOR));
	ASSERT_TRUE(vb_is_zero(self->tmp2, 16 * VB_SECTOR));
	/* No limits: the device's own, 16 segments. */
	memset(&l, 0, sizeof(l));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_LIMITS, &l));
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  dp_dwz_segs(self, VIRTIO_BLK_T_WRITE_ZEROES,
			      VHOST_BLK_MAX_DISCARD_SEG, 64));
	ASSERT_EQ(0, vb_backend_read(&self->b, 4096 * VB_SECTOR, self->tmp2,
				     64 * 4 * VB_SECTOR));
	ASSERT_TRUE(vb_is_zero(self->tmp2, 64 * 4 * VB_SECTOR));
}

TEST_F(dp, limits_above_16_segments_fail_with_einval)
{
	struct vhost_blk_limits l = { .max_discard_seg =
					VHOST_BLK_MAX_DISCARD_SEG + 1 };

	ASSERT_EQ(-1, ioctl(self->d.fd, VHOST_BLK_SET_LIMITS, &l));
	ASSERT_EQ(EINVAL, errno);
	l.max_discard_seg = 0;
	l.max_write_zeroes_seg = VHOST_BLK_MAX_DISCARD_SEG + 1;
	ASSERT_EQ(-1, ioctl(self->d.fd, VHOST_BLK_SET_LIMITS, &l));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_EQ(-1, ioctl(self->d.fd, VHOST_BLK_SET_LIMITS, NULL));
	ASSERT_EQ(EFAULT, errno);
	/* Nothing was set: 16 segments still go through. */
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  dp_dwz_segs(self, VIRTIO_BLK_T_DISCARD,
			      VHOST_BLK_MAX_DISCARD_SEG, 8));
}

TEST_F(dp, discard_or_write_zeroes_past_the_end_fails_with_ioerr)
{
	uint32_t ul;

	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD,
				DISK_SECTORS - 4, 8, 0, &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES,
				DISK_SECTORS, 1, 0, &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES,
				~0ULL - 1, 4, 0, &ul));
	ASSERT_EQ(1, ul);
}

TEST_F(dp, header_shorter_than_16_bytes_fails_with_ioerr)
{
	struct vb_seg s[2];
	uint16_t head;
	uint8_t st = 0xff;
	uint64_t hdr = self->vq->scratch_gpa, status = hdr + 64;
	struct virtio_blk_outhdr h = { .type = VIRTIO_BLK_T_FLUSH };

	vb_write(&self->d.mem, hdr, &h, sizeof(h));
	vb_write(&self->d.mem, status, &st, 1);
	s[0] = (struct vb_seg){ hdr, 8, false };
	s[1] = (struct vb_seg){ status, 1, true };
	ASSERT_EQ(0, vb_vq_add(self->vq, s, 2, false, &head));
	vb_vq_publish(self->vq, head);
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_wait_used_idx(self->vq, 1, VB_TIMEOUT_MS));
	ASSERT_EQ(head, self->vq->used->ring[0].id);
	ASSERT_EQ(1, self->vq->used->ring[0].len);
	vb_read(&self->d.mem, status, &st, 1);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, st);
	ASSERT_FALSE(vb_fd_signalled(self->vq->err));
}

TEST_F(dp, data_not_a_multiple_of_512_fails_with_ioerr)
{
	static const uint32_t lens[] = { 1, 100, 511, 513, 4097 };
	unsigned int i;
	uint32_t ul;

	dp_write(_metadata, self, 0, 8192, 2, 0);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, 0, self->buf2,
				lens[i], 0, &ul));
		ASSERT_EQ(1, ul);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, 0, self->buf,
				lens[i], VB_L_DATA_SPLIT, &ul));
		ASSERT_EQ(1, ul);
	}
	/* nothing was written */
	dp_check(_metadata, self, 0, 8192, 2, 0);
}

TEST_F(dp, last_sector_is_readable_and_writable)
{
	dp_write(_metadata, self, DISK_SECTORS - 1, 512, 12, 0);
	dp_check(_metadata, self, DISK_SECTORS - 1, 512, 12, 0);
}

TEST_F(dp, io_past_the_end_fails_with_ioerr)
{
	static const uint64_t sectors[] = {
		DISK_SECTORS, DISK_SECTORS - 1, DISK_SECTORS + 1000,
		~0ULL, ~0ULL - 1, ~0ULL >> 9, (~0ULL >> 9) + 1, 1ULL << 63,
	};
	uint32_t ul;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sectors); i++) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_IN, sectors[i],
				self->buf2, 1024, 0, &ul))
			TH_LOG("read at sector %#llx",
			       (unsigned long long)sectors[i]);
		ASSERT_EQ(1, ul);
		ASSERT_EQ(VIRTIO_BLK_S_IOERR,
			  vb_io(self->vq, VIRTIO_BLK_T_OUT, sectors[i],
				self->buf, 1024, 0, &ul))
			TH_LOG("write at sector %#llx",
			       (unsigned long long)sectors[i]);
	}
	/* the file did not grow */
	ASSERT_EQ(DISK_SIZE, (uint64_t)lseek(self->b.fd, 0, SEEK_END));
}

TEST_F(dp, read_only_fd_rejects_writes_and_serves_reads)
{
	uint32_t ul;

	dp_write(_metadata, self, 0, 4096, 21, 0);
	ASSERT_LE(0, vb_backend_reopen(&self->b, O_RDONLY));
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	vb_pattern(self->tmp, 4096, 0, 22);
	vb_write(&self->d.mem, self->buf, self->tmp, 4096);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR, vb_io(self->vq, VIRTIO_BLK_T_OUT, 0,
					    self->buf, 4096, 0, &ul));
	ASSERT_EQ(1, ul);
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_DISCARD, 0, 8, 0, &ul));
	ASSERT_EQ(VIRTIO_BLK_S_IOERR,
		  vb_discard_wz(self->vq, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0,
				&ul));
	dp_check(_metadata, self, 0, 4096, 21, 0);
}

TEST_F(dp, detached_backend_never_completes_a_request_ok)
{
	struct vb_req r = { .type = VIRTIO_BLK_T_IN, .sector = 0,
			    .data_gpa = self->buf2, .data_len = 512 };

	dp_write(_metadata, self, 0, 512, 8, 0);
	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
	ASSERT_EQ(0, vb_req_post(self->vq, &r));
	vb_vq_kick(self->vq);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_LE(0, vb_vq_collect(self->vq));
	if (r.done) {
		ASSERT_EQ(VIRTIO_BLK_S_IOERR, r.status);
		ASSERT_EQ(1, r.used_len);
	}
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	vb_vq_kick(self->vq);
	if (!r.done) {
		ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
		ASSERT_EQ(VIRTIO_BLK_S_OK, r.status);
	}
	dp_check(_metadata, self, 0, 512, 8, 0);
}

TEST_F(dp, full_ring_of_requests_completes_with_matching_ids)
{
	static struct vb_req r[128];
	unsigned int i, num = self->vq->num;

	/* indirect: one descriptor per request, so the whole ring fits */
	for (i = 0; i < num; i++) {
		r[i] = (struct vb_req){
			.type = i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
			.sector = 8 * (i / 2),
			.data_gpa = self->buf + 4096 * (i / 2),
			.data_len = 4096,
			.layout = VB_L_INDIRECT,
		};
	}
	/* writes first, then reads of the same sectors in a second batch */
	for (i = 0; i < num; i += 2) {
		vb_pattern(self->tmp, 4096, r[i].sector, 31);
		vb_write(&self->d.mem, r[i].data_gpa, self->tmp, 4096);
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, num / 2, VB_TIMEOUT_MS));
	vb_fill(&self->d.mem, self->buf, 0, num / 2 * 4096);
	for (i = 1; i < num; i += 2)
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_wait(self->vq, num / 2, VB_TIMEOUT_MS));
	for (i = 0; i < num; i++) {
		ASSERT_TRUE(r[i].done);
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
		ASSERT_EQ(i % 2 ? 4097 : 1, r[i].used_len);
		if (i % 2) {
			vb_pattern(self->tmp, 4096, r[i].sector, 31);
			vb_read(&self->d.mem, r[i].data_gpa, self->tmp2, 4096);
			ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 4096));
		}
	}
}

TEST_F(dp, no_indirect_feature_still_serves_direct_chains)
{
	dp_start(_metadata, self, (1ULL << VIRTIO_F_VERSION_1) |
		 (1ULL << VIRTIO_F_ANY_LAYOUT), 64);
	dp_write(_metadata, self, 40, 8192, 40, VB_L_DATA_SPLIT);
	dp_check(_metadata, self, 40, 8192, 40, VB_L_HDR_SPLIT);
}

/* ---- notifications ---- */

#define F_NO_EVENT_IDX	((1ULL << VIRTIO_F_VERSION_1) | \
			 (1ULL << VIRTIO_F_ANY_LAYOUT) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1ULL << VIRTIO_BLK_F_FLUSH))

static void dp_post_reads(struct __test_metadata *_metadata,
			  FIXTURE_DATA(dp) *self, struct vb_req *r, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		r[i] = (struct vb_req){ .type = VIRTIO_BLK_T_IN,
					.sector = 8 * i,
					.data_gpa = self->buf2 + 4096 * i,
					.data_len = 4096 };
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
}

TEST_F(dp, event_idx_used_event_ahead_suppresses_call)
{
	struct vb_req r[4];

	/* like vhost, the first signal after setup may be unconditional */
	dp_post_reads(_metadata, self, r, 1);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
	self->vq->manual_used_event = true;
	*vb_used_event(self->vq) = 1000;
	vb_fd_signalled(self->vq->call);
	dp_post_reads(_metadata, self, r, 4);
	ASSERT_EQ(0, vb_vq_poll_used(self->vq, 4, VB_TIMEOUT_MS));
	ASSERT_EQ(0, vb_wait_fd(self->vq->call, VB_QUIET_MS));
}

TEST_F(dp, event_idx_used_event_crossed_signals_call)
{
	struct vb_req r[4];

	self->vq->manual_used_event = true;
	*vb_used_event(self->vq) = 2;
	vb_fd_signalled(self->vq->call);
	dp_post_reads(_metadata, self, r, 4);
	ASSERT_EQ(0, vb_vq_poll_used(self->vq, 4, VB_TIMEOUT_MS));
	ASSERT_EQ(1, vb_wait_fd(self->vq->call, VB_TIMEOUT_MS));
}

TEST_F(dp, event_idx_avail_event_is_published_when_idle)
{
	struct vb_req r[3];
	int i;

	dp_post_reads(_metadata, self, r, 3);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 3, VB_TIMEOUT_MS));
	for (i = 0; i < 100 && *vb_avail_event(self->vq) != 3; i++)
		usleep(10000);
	ASSERT_EQ(3, *vb_avail_event(self->vq));
}

TEST_F(dp, no_interrupt_flag_suppresses_call_without_event_idx)
{
	struct vb_req r[4];

	dp_start(_metadata, self, F_NO_EVENT_IDX, 128);
	self->vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vb_fd_signalled(self->vq->call);
	dp_post_reads(_metadata, self, r, 4);
	ASSERT_EQ(0, vb_vq_poll_used(self->vq, 4, VB_TIMEOUT_MS));
	ASSERT_EQ(0, vb_wait_fd(self->vq->call, VB_QUIET_MS));
}

TEST_F(dp, notify_on_empty_signals_despite_no_interrupt)
{
	struct vb_req r[4];

	dp_start(_metadata, self, F_NO_EVENT_IDX |
		 (1ULL << VIRTIO_F_NOTIFY_ON_EMPTY), 128);
	self->vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	vb_fd_signalled(self->vq->call);
	dp_post_reads(_metadata, self, r, 4);
	ASSERT_EQ(0, vb_vq_poll_used(self->vq, 4, VB_TIMEOUT_MS));
	ASSERT_EQ(1, vb_wait_fd(self->vq->call, VB_TIMEOUT_MS));
}

TEST_F(dp, call_signalled_for_every_batch_without_event_idx)
{
	struct vb_req r[4];
	int i;

	dp_start(_metadata, self, F_NO_EVENT_IDX, 128);
	for (i = 0; i < 20; i++) {
		dp_post_reads(_metadata, self, r, 1 + i % 4);
		ASSERT_EQ(0, vb_vq_wait(self->vq, 1 + i % 4, VB_TIMEOUT_MS));
	}
}

TEST_F(dp, used_no_notify_flag_clear_when_idle)
{
	struct vb_req r[2];
	int i;

	dp_start(_metadata, self, F_NO_EVENT_IDX, 128);
	dp_post_reads(_metadata, self, r, 2);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 2, VB_TIMEOUT_MS));
	for (i = 0; i < 100 && (self->vq->used->flags &
				VRING_USED_F_NO_NOTIFY); i++)
		usleep(10000);
	ASSERT_EQ(0, self->vq->used->flags & VRING_USED_F_NO_NOTIFY);
	/* and a kick after idle is served */
	dp_post_reads(_metadata, self, r, 1);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 1, VB_TIMEOUT_MS));
}

/* ---- stop, restart, reset ---- */

static void dp_post_writes(struct __test_metadata *_metadata,
			   FIXTURE_DATA(dp) *self, struct vb_req *r, int n,
			   uint32_t len)
{
	int i;

	for (i = 0; i < n; i++) {
		r[i] = (struct vb_req){ .type = VIRTIO_BLK_T_OUT,
					.sector = (uint64_t)i * len / 512,
					.data_gpa = self->big + (uint64_t)i * len,
					.data_len = len,
					.layout = VB_L_INDIRECT };
		vb_pattern(self->tmp, len, r[i].sector, 77);
		vb_write(&self->d.mem, r[i].data_gpa, self->tmp, len);
		ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
	}
	vb_vq_kick(self->vq);
}

TEST_F(dp, get_vring_base_drains_and_returns_completed_count)
{
	static struct vb_req r[64];
	unsigned int base = ~0u;
	uint16_t used;

	dp_post_writes(_metadata, self, r, 64, 65536);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	used = vb_used_idx(self->vq);
	ASSERT_EQ(base, used);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_EQ(used, vb_used_idx(self->vq));
	ASSERT_LE(0, vb_vq_collect(self->vq));
	for (unsigned int i = 0; i < 64; i++) {
		ASSERT_EQ(i < used, r[i].done);
		if (r[i].done)
			ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
	}
	/* stopped: kicks are ignored until the queue is set up again */
	vb_vq_kick(self->vq);
	usleep(VB_QUIET_MS * 1000);
	ASSERT_EQ(used, vb_used_idx(self->vq));
}

TEST_F(dp, restart_after_get_vring_base_serves_the_rest)
{
	static struct vb_req r[64];
	unsigned int base = ~0u, i;

	dp_post_writes(_metadata, self, r, 64, 65536);
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_LE(base, 64);
	ASSERT_EQ(0, vb_vq_start(&self->d, self->vq, base));
	vb_vq_kick(self->vq);
	ASSERT_EQ(0, vb_vq_poll_used(self->vq, 64, VB_TIMEOUT_MS));
	for (i = 0; i < 64; i++) {
		ASSERT_TRUE(r[i].done);
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
	}
	for (i = 0; i < 64; i += 9)
		dp_check(_metadata, self, i * 128, 65536, 77, 0);
}

TEST_F(dp, get_vring_base_on_idle_queue_returns_avail_index)
{
	unsigned int base = ~0u;
	struct vb_req r[5];

	dp_post_reads(_metadata, self, r, 5);
	ASSERT_EQ(0, vb_vq_wait(self->vq, 5, VB_TIMEOUT_MS));
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(5, base);
}

TEST_F(dp, rerunning_the_start_sequence_after_stop_works)
{
	unsigned int base;
	struct vhost_vring_file f = { .index = 0, .fd = -1 };

	dp_write(_metadata, self, 16, 4096, 16, 0);
	/* QEMU stop: GET_VRING_BASE, detach; then a guest reboot */
	ASSERT_EQ(0, vb_get_vring_base(&self->d, 0, &base));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_BLK_SET_BACKEND, &f));
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER, NULL));
	struct vb_opts o = { .backend = self->b.fd };

	ASSERT_EQ(0, vb_dev_sequence(&self->d, &o));
	dp_check(_metadata, self, 16, 4096, 16, 0);
}

TEST_F(dp, reset_owner_with_io_in_flight_then_resetup_works)
{
	static struct vb_req r[64];
	struct vb_opts o = { .backend = self->b.fd };

	dp_post_writes(_metadata, self, r, 64, 65536);
	ASSERT_EQ(0, ioctl(self->d.fd, VHOST_RESET_OWNER, NULL));
	ASSERT_EQ(0, vb_dev_sequence(&self->d, &o));
	self->vq = &self->d.vq[0];
	dp_write(_metadata, self, 3, 1024, 3, 0);
	dp_check(_metadata, self, 3, 1024, 3, 0);
}

/* ---- memory table and backend changes ---- */

TEST_F(dp, set_mem_table_again_keeps_serving)
{
	dp_write(_metadata, self, 0, 4096, 50, 0);
	ASSERT_EQ(0, vb_set_mem_table(&self->d));
	dp_check(_metadata, self, 0, 4096, 50, 0);
}

TEST_F(dp, set_mem_table_with_moved_region_uses_new_mapping)
{
	struct vb_region *r2 = &self->d.mem.r[2];
	uint8_t *old = r2->hva, *new;

	new = mmap(NULL, r2->size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, new);
	memcpy(new, old, r2->size);
	memset(old, 0x5a, r2->size);
	r2->hva = new;
	ASSERT_EQ(0, vb_set_mem_table(&self->d));
	dp_write(_metadata, self, 64, 8192, 51, 0);
	dp_check(_metadata, self, 64, 8192, 51, VB_L_INDIRECT);
	for (size_t i = 0; i < r2->size; i += 4096)
		ASSERT_EQ(0x5a, old[i]);
	munmap(old, r2->size);
}

TEST_F(dp, swapped_backend_serves_its_own_content)
{
	struct vb_backend b2;
	const char *why;

	ASSERT_LE(0, vb_backend_create(&b2, "tmpfs", DISK_SIZE, 0, &why));
	vb_pattern(self->tmp, 65536, 0, 61);
	ASSERT_EQ(0, vb_backend_write(&self->b, 0, self->tmp, 65536));
	vb_pattern(self->tmp, 65536, 0, 62);
	ASSERT_EQ(0, vb_backend_write(&b2, 0, self->tmp, 65536));
	dp_check(_metadata, self, 0, 65536, 61, 0);
	ASSERT_EQ(0, vb_set_backend(&self->d, b2.fd));
	dp_check(_metadata, self, 0, 65536, 62, 0);
	ASSERT_EQ(0, vb_set_backend(&self->d, self->b.fd));
	dp_check(_metadata, self, 0, 65536, 61, 0);
	vb_backend_destroy(&b2);
}

TEST_F(dp, queue_sizes_1_to_1024_all_serve_a_full_ring)
{
	static struct vb_req r[1024];
	unsigned int num, i;

	for (num = 1; num <= 1024; num *= 2) {
		dp_start(_metadata, self, 0, num);
		/* lap 1: a full ring of writes (indirect: one desc each) */
		for (i = 0; i < num; i++) {
			r[i] = (struct vb_req){
				.type = VIRTIO_BLK_T_OUT, .sector = i,
				.data_gpa = self->big + 512 * i,
				.data_len = 512, .layout = VB_L_INDIRECT,
			};
			vb_pattern(self->tmp, 512, i, num);
			vb_write(&self->d.mem, r[i].data_gpa, self->tmp, 512);
			ASSERT_EQ(0, vb_req_post(self->vq, &r[i]))
				TH_LOG("num %u req %u", num, i);
		}
		vb_vq_kick(self->vq);
		ASSERT_EQ(0, vb_vq_wait(self->vq, num, VB_TIMEOUT_MS))
			TH_LOG("num %u", num);
		for (i = 0; i < num; i++)
			ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
		vb_fill(&self->d.mem, self->big, 0, 512 * num);
		/* lap 2: direct 3-descriptor chains, as many as fit */
		for (i = 0; i < num / 3; i++) {
			r[i].type = VIRTIO_BLK_T_IN;
			r[i].layout = 0;
			ASSERT_EQ(0, vb_req_post(self->vq, &r[i]));
		}
		vb_vq_kick(self->vq);
		ASSERT_EQ(0, vb_vq_wait(self->vq, num / 3, VB_TIMEOUT_MS));
		/* lap 3: a full ring of reads; the ring indices wrap */
		for (i = num / 3; i < num + num / 3; i++) {
			r[i % num].type = VIRTIO_BLK_T_IN;
			r[i % num].layout = VB_L_INDIRECT;
			ASSERT_EQ(0, vb_req_post(self->vq, &r[i % num]));
		}
		vb_vq_kick(self->vq);
		ASSERT_EQ(0, vb_vq_wait(self->vq, num, VB_TIMEOUT_MS));
		for (i = 0; i < num; i++) {
			ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status);
			ASSERT_EQ(513, r[i].used_len);
			vb_pattern(self->tmp, 512, i, num);
			vb_read(&self->d.mem, r[i].data_gpa, self->tmp2, 512);
			ASSERT_EQ(0, memcmp(self->tmp, self->tmp2, 512))
				TH_LOG("num %u req %u", num, i);
		}
	}
}

TEST_HARNESS_MAIN
