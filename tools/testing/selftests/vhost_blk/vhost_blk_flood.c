// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_flood BACKEND [NQUEUES]: keep every queue of a vhost-blk device
 * full of 64 KiB reads and writes to BACKEND (a block device or file) until
 * killed.  Prints "ready" once requests are in flight.  Used by
 * owner_kill_test.sh to SIGKILL an owner with I/O in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost_blk_lib.h"

#define NUM	64
#define LEN	65536

int main(int argc, char **argv)
{
	static struct vb_req r[VHOST_BLK_MAX_QUEUES][NUM];
	static bool posted[VHOST_BLK_MAX_QUEUES][NUM];
	struct vb_opts o = { .num = NUM };
	unsigned int q, i, round = 0;
	uint64_t data, sectors;
	struct vb_dev d;
	int fd, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s BACKEND [NQUEUES]\n", argv[0]);
		return 2;
	}
	o.nvqs = argc > 2 ? atoi(argv[2]) : 4;
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	sectors = lseek(fd, 0, SEEK_END) / VB_SECTOR;
	if (sectors < LEN / VB_SECTOR * NUM) {
		fprintf(stderr, "%s: too small\n", argv[1]);
		return 1;
	}
	o.backend = fd;
	ret = vb_dev_setup(&d, &o);
	if (ret) {
		fprintf(stderr, "device setup: %s\n", strerror(-ret));
		return 1;
	}
	data = vb_alloc_data(&d.mem, LEN * NUM);
	for (;;) {
		for (q = 0; q < d.nvqs; q++) {
			struct vb_vq *vq = &d.vq[q];

			vb_vq_collect(vq);
			for (i = 0; i < NUM; i++) {
				if ((posted[q][i] && !r[q][i].done) ||
				    !vq->nfree)
					continue;
				posted[q][i] = true;
				r[q][i] = (struct vb_req){
					.type = (i + round) % 2,
					.sector = (uint64_t)i * (LEN / VB_SECTOR),
					.data_gpa = data + (uint64_t)i * LEN,
					.data_len = LEN,
					.layout = VB_L_INDIRECT,
				};
				vb_req_post(vq, &r[q][i]);
			}
			vb_vq_kick(vq);
		}
		if (!round++) {
			printf("ready\n");
			fflush(stdout);
		}
		usleep(1000);
	}
}
