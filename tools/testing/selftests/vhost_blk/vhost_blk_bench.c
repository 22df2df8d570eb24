// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_bench [-q QUEUES] [-w] [-p POLL_US] [-s] [-k] [-d] BACKEND
 *                 [SECONDS [QD [BS [rw]]]]
 *
 * Drive QUEUES queues of a vhost-blk device from user space, the way a
 * guest driver would, one thread per queue, each keeping QD random
 * BS-byte reads (or writes, "write") of BACKEND in flight for SECONDS,
 * and print one line:
 *
 *   iops=N queues=Q workers=W qd=QD bs=BS rw=read|write poll_us=P seconds=S
 *   requests=N errors=N kicks=N worker_cpu_s=C cpu_s_per_mreq=M
 *
 * -w gives every queue a worker of its own (VHOST_NEW_WORKER and
 * VHOST_ATTACH_VRING_WORKER); by default the device's one worker serves
 * them all.  -p sets VHOST_SET_VRING_BUSYLOOP_TIMEOUT on every queue (default: leave
 * the module's poll_us).  Kicks honour the device's avail event
 * (EVENT_IDX), as a guest's do; -k kicks after every batch instead.  -s
 * spins on the used ring instead of sleeping on the call eventfd, as a
 * guest's poll queue would.  -d opens BACKEND with O_DIRECT (a file's
 * requests then go to the backend asynchronously).  worker_cpu_s is the
 * user + system time of the device's worker threads over the run (from
 * /proc), and cpu_s_per_mreq that per million requests.
 *
 * Not a test: a measuring tool whose numbers only mean something as a
 * ratio against another run on the same machine in the same boot.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>

#include "vhost_blk_lib.h"

#define NUM	128

struct job {
	struct vb_vq *vq;
	uint64_t data;
	uint64_t blocks;
	unsigned int qd, bs;
	bool write, spin, always_kick;
	double end;
	unsigned long long done, errors, kicks;
	int ret;
	pthread_t thread;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kick unless the device's avail event says it is not listening. */
static void kick(struct job *j, uint16_t old)
{
	struct vb_vq *vq = j->vq;
	uint16_t event;

	if (!j->always_kick &&
	    (vq->dev->features & (1ULL << VIRTIO_RING_F_EVENT_IDX))) {
		/* Publish avail->idx before reading the avail event. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		event = le16toh(__atomic_load_n(vb_avail_event(vq),
						__ATOMIC_ACQUIRE));
		if (!vring_need_event(event, vq->avail_idx, old))
			return;
	}
	j->kicks++;
	vb_vq_kick(vq);
}

static void *run(void *arg)
{
	struct job *j = arg;
	struct vb_req *r = calloc(j->qd, sizeof(*r));
	bool *busy = calloc(j->qd, sizeof(*busy));
	uint64_t seed = 1 + j->vq->idx;
	unsigned int i;
	int ret;

	if (!r || !busy) {
		j->ret = -ENOMEM;
		return NULL;
	}
	for (;;) {
		uint16_t old = j->vq->avail_idx;
		bool posted = false;

		for (i = 0; i < j->qd; i++) {
			if (busy[i] && !r[i].done)
				continue;
			if (busy[i]) {
				j->done++;
				j->errors += r[i].status != VIRTIO_BLK_S_OK;
				busy[i] = false;
			}
			if (now() >= j->end)
				continue;
			r[i] = (struct vb_req){
				.type = j->write ? VIRTIO_BLK_T_OUT :
						   VIRTIO_BLK_T_IN,
				.sector = vb_rand(&seed) % j->blocks *
					  (j->bs / VB_SECTOR),
				.data_gpa = j->data + (uint64_t)i * j->bs,
				.data_len = j->bs,
			};
			if (vb_req_post(j->vq, &r[i])) {
				fprintf(stderr, "ring full\n");
				j->ret = -ENOSPC;
				return NULL;
			}
			busy[i] = true;
			posted = true;
		}
		if (posted)
			kick(j, old);
		else if (now() >= j->end && vb_vq_pending(j->vq) == 0)
			break;
		if (j->spin)
			ret = vb_vq_collect(j->vq) < 0 ? -EIO : 0;
		else
			ret = vb_vq_wait(j->vq, 1, VB_TIMEOUT_MS);
		if (ret && ret != -ETIMEDOUT) {
			fprintf(stderr, "wait: %s\n", strerror(-ret));
			j->ret = ret;
			return NULL;
		}
	}
	free(r);
	free(busy);
	return NULL;
}

/* User + system seconds of our workers: threads named vhost-blk-<pid>. */
static double worker_cpu(void)
{
	char name[32], path[300], buf[1024], *p;
	unsigned long ut, st, ticks = 0;
	struct dirent *e;
	DIR *d;
	int i;

	snprintf(name, sizeof(name), "(vhost-blk-%d", getpid());
	name[16] = 0;	/* "(" + TASK_COMM_LEN - 1 */
	d = opendir("/proc");
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (atoi(e->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if (vb_read_text(path, buf, sizeof(buf)) <= 0)
			continue;
		p = strchr(buf, '(');
		if (!p || strncmp(p, name, strlen(name)) ||
		    p[strlen(name)] != ')')
			continue;
		p = strrchr(buf, ')');
		/* after ")": state(3) ... utime(14) stime(15) */
		for (i = 0; i < 12 && p; i++)
			p = strchr(p + 1, ' ');
		if (p && sscanf(p + 1, "%lu %lu", &ut, &st) == 2)
			ticks += ut + st;
	}
	closedir(d);
	return (double)ticks / sysconf(_SC_CLK_TCK);
}

static void print_help(const char *argv0)
{
	fprintf(stderr, "usage: %s [-q QUEUES<=%u] [-w] [-p POLL_US] [-s] [-k] [-d]\n"
		"\tBACKEND [SECONDS [QD<=%u [BS [read|write]]]]\n",
		argv0, VHOST_BLK_MAX_QUEUES, NUM);
}

int main(int argc, char **argv)
{
	static struct job jobs[VHOST_BLK_MAX_QUEUES];
	struct vb_opts o = { .num = NUM };
	unsigned long long done = 0, errors = 0, kicks = 0;
	unsigned int nq = 1, qd, bs, i;
	bool spin = false, always_kick = false, per_queue = false, write;
	double seconds, start, end, cpu;
	int poll_us = -1, oflags = O_RDWR | O_CLOEXEC, fd, ret, c;
	uint64_t blocks;
	struct vb_dev d;

	while ((c = getopt(argc, argv, "q:wp:skd")) != -1) {
		switch (c) {
		case 'q':
			nq = atoi(optarg);
			break;
		case 'w':
			per_queue = true;
			break;
		case 'p':
			poll_us = atoi(optarg);
			break;
		case 's':
			spin = true;
			break;
		case 'k':
			always_kick = true;
			break;
		case 'd':
			oflags |= O_DIRECT;
			break;
		default:
			print_help(argv[0]);
			return 2;
		}
	}
	argv += optind - 1;
	argc -= optind - 1;
	seconds = argc > 2 ? atof(argv[2]) : 5;
	qd = argc > 3 ? atoi(argv[3]) : 1;
	bs = argc > 4 ? atoi(argv[4]) : 4096;
	write = argc > 5 && !strcmp(argv[5], "write");
	if (argc < 2 || !qd || qd > NUM || !bs || bs % VB_SECTOR || !nq ||
	    nq > VHOST_BLK_MAX_QUEUES) {
		print_help(argv[-optind + 1]);
		return 2;
	}
	fd = open(argv[1], oflags);
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
	o.nvqs = nq;
	/* Room for every queue's buffers, and the 2 pages each has around. */
	o.data_mem = ((uint64_t)bs + 8192) * qd * nq;
	if (o.data_mem < (40ULL << 20))
		o.data_mem = 0;
	ret = vb_dev_setup(&d, &o);
	if (ret) {
		fprintf(stderr, "device setup: %s\n", strerror(-ret));
		return 1;
	}
	for (i = 1; i < nq && per_queue; i++) {
		struct vhost_worker_state ws = { 0 };
		struct vhost_vring_worker vw = { .index = i };

		if (ioctl(d.fd, VHOST_NEW_WORKER, &ws)) {
			perror("VHOST_NEW_WORKER");
			return 1;
		}
		vw.worker_id = ws.worker_id;
		if (ioctl(d.fd, VHOST_ATTACH_VRING_WORKER, &vw)) {
			perror("VHOST_ATTACH_VRING_WORKER");
			return 1;
		}
	}
	for (i = 0; i < nq && poll_us >= 0; i++) {
		struct vhost_vring_state s = { .index = i, .num = poll_us };

		if (ioctl(d.fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &s)) {
			perror("VHOST_SET_VRING_BUSYLOOP_TIMEOUT");
			return 1;
		}
	}
	if (poll_us < 0) {
		struct vhost_vring_state s = { .index = 0 };

		if (!ioctl(d.fd, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, &s))
			poll_us = s.num;
	}

	cpu = worker_cpu();
	start = now();
	for (i = 0; i < nq; i++) {
		struct job *j = &jobs[i];

		*j = (struct job){
			.vq = &d.vq[i], .blocks = blocks, .qd = qd, .bs = bs,
			.write = write, .spin = spin,
			.always_kick = always_kick, .end = start + seconds,
		};
		j->data = vb_alloc_data(&d.mem, bs * qd);
		if (!j->data) {
			fprintf(stderr, "no guest memory for %u x %u bytes\n",
				qd, bs);
			return 1;
		}
		if (pthread_create(&j->thread, NULL, run, j)) {
			perror("pthread_create");
			return 1;
		}
	}
	for (i = 0; i < nq; i++) {
		pthread_join(jobs[i].thread, NULL);
		if (jobs[i].ret)
			return 1;
		done += jobs[i].done;
		errors += jobs[i].errors;
		kicks += jobs[i].kicks;
	}
	end = now();
	cpu = worker_cpu() - cpu;
	printf("iops=%.0f queues=%u workers=%u qd=%u bs=%u rw=%s poll_us=%d ",
	       done / (end - start), nq, per_queue ? nq : 1, qd, bs,
	       write ? "write" : "read", poll_us);
	printf("seconds=%.2f requests=%llu errors=%llu kicks=%llu ",
	       end - start, done, errors, kicks);
	printf("worker_cpu_s=%.2f cpu_s_per_mreq=%.1f\n",
	       cpu, done ? cpu * 1e6 / done : 0);
	vb_dev_teardown(&d);
	return errors ? 1 : 0;
}
