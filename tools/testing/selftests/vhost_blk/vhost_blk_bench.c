// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_bench BACKEND [SECONDS [QD [BS [rw]]]]: drive one queue of a
 * vhost-blk device from user space, the way a guest driver would, with QD
 * random BS-byte reads (or writes, "write") of BACKEND kept in flight for
 * SECONDS, and print one line:
 *
 *   iops=N qd=QD bs=BS rw=read|write seconds=S requests=N errors=N
 *
 * Not a test: a measuring tool whose numbers only mean something as a
 * ratio against another run on the same machine in the same boot.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhost_blk_lib.h"

#define NUM	128

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct vb_req r[NUM];
	static bool busy[NUM];
	struct vb_opts o = { .num = NUM, .nvqs = 1 };
	double seconds = argc > 2 ? atof(argv[2]) : 5;
	unsigned int qd = argc > 3 ? atoi(argv[3]) : 1;
	unsigned int bs = argc > 4 ? atoi(argv[4]) : 4096;
	bool write = argc > 5 && !strcmp(argv[5], "write");
	unsigned long long done = 0, errors = 0;
	uint64_t data, blocks, seed = 1;
	double start, end;
	struct vb_vq *vq;
	struct vb_dev d;
	unsigned int i;
	int fd, ret;

	if (argc < 2 || !qd || qd > NUM || !bs || bs % VB_SECTOR) {
		fprintf(stderr, "usage: %s BACKEND [SECONDS [QD<=%u [BS [read|write]]]]\n",
			argv[0], NUM);
		return 2;
	}
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	blocks = lseek(fd, 0, SEEK_END) / bs;
	if (!blocks) {
		fprintf(stderr, "%s: empty\n", argv[1]);
		return 1;
	}
	o.backend = fd;
	ret = vb_dev_setup(&d, &o);
	if (ret) {
		fprintf(stderr, "device setup: %s\n", strerror(-ret));
		return 1;
	}
	vq = &d.vq[0];
	data = vb_alloc_data(&d.mem, bs * qd);
	if (!data) {
		fprintf(stderr, "no guest memory for %u x %u bytes\n", qd, bs);
		return 1;
	}

	start = now();
	end = start + seconds;
	for (;;) {
		bool posted = false;

		for (i = 0; i < qd; i++) {
			if (busy[i] && !r[i].done)
				continue;
			if (busy[i]) {
				done++;
				errors += r[i].status != VIRTIO_BLK_S_OK;
				busy[i] = false;
			}
			if (now() >= end)
				continue;
			r[i] = (struct vb_req){
				.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
				.sector = vb_rand(&seed) % blocks * (bs / VB_SECTOR),
				.data_gpa = data + (uint64_t)i * bs,
				.data_len = bs,
			};
			if (vb_req_post(vq, &r[i])) {
				fprintf(stderr, "ring full\n");
				return 1;
			}
			busy[i] = true;
			posted = true;
		}
		if (posted)
			vb_vq_kick(vq);
		else if (now() >= end && vb_vq_pending(vq) == 0)
			break;
		ret = vb_vq_wait(vq, 1, VB_TIMEOUT_MS);
		if (ret && ret != -ETIMEDOUT) {
			fprintf(stderr, "wait: %s\n", strerror(-ret));
			return 1;
		}
	}
	end = now();
	printf("iops=%.0f qd=%u bs=%u rw=%s seconds=%.2f requests=%llu errors=%llu\n",
	       done / (end - start), qd, bs, write ? "write" : "read",
	       end - start, done, errors);
	vb_dev_teardown(&d);
	return errors ? 1 : 0;
}
