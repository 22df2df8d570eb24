// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_soak: several devices of two queues each, every one owned by a
 * process of its own that drives verified I/O on it, while a scheduler
 * injects faults round by round:
 *
 *   kill      the owner SIGKILLed with I/O in flight, a new one takes over
 *   error     dm-error swapped in under the device (dmsetup reload)
 *   flakey    dm-flakey swapped in: I/O fails one second in two
 *   delay     dm-delay swapped in: every bio held 200 ms
 *   dmremove  dmsetup remove --force under I/O, then a new dm device
 *             attached with VHOST_BLK_SET_BACKEND
 *   poweroff  the null_blk powered off through configfs under I/O, then on
 *             again and attached anew
 *   freeze    the ext4 holding the backend file frozen (FIFREEZE), thawed
 *   loopdetach LOOP_CLR_FD of the loop device under I/O (the kernel defers
 *             it to the last close: I/O goes on), then the file attached
 *             to a new loop device, and the old one must unbind
 *   memhigh   memory.high of the owner's cgroup below its usage
 *   rmmod     every owner stopped, vhost_blk unloaded and loaded again
 *
 * Each owner writes blocks whose every sector encodes (device, block,
 * sector, generation) and reads them back.  Per block, shared with the
 * parent and with the next owner, it records the last generation a write
 * of which completed with VIRTIO_BLK_S_OK (acked) and the last it issued:
 * a sector must read back as a generation between the two (issued > acked
 * only after a write failed with IOERR or its owner was killed), never
 * older, never something else.  After each round every owner reads every
 * block back.  A failed request is attributed to the fault whose window
 * (made to fail the backend: error, flakey, dmremove, poweroff) overlapped
 * its life; any other failure is a failure of the test, as are a mismatch,
 * a request not completed in 30 s, an owner that cannot be reaped, requests
 * still in flight (fdinfo) after a drain, and a module that does not
 * unload.  Exit status 0: pass, 1: failure, 4: nothing to run on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vhost_blk_lib.h"

#define SK_NDEV		4
#define SK_NVQS		2
#define SK_DEPTH	8		/* requests in flight per queue */
#define SK_BLOCK	4096
#define SK_SPB		(SK_BLOCK / VB_SECTOR)
#define SK_NBLK		512		/* blocks under test per device */
#define SK_DISK		(16ULL << 20)
#define SK_REQ_MS	30000		/* a request not done by then: hung */
#define SK_CMD_MS	60000		/* an owner not answering by then */
#define SK_MAGIC	0x4b414f5342484b56ULL
#define SK_FLUSH	(-1)

enum sk_mode { SK_RUN, SK_VERIFY, SK_STOP };

enum sk_fault {
	F_NONE, F_KILL, F_ERROR, F_FLAKEY, F_DELAY, F_DMREMOVE, F_POWEROFF,
	F_FREEZE, F_LOOPDETACH, F_MEMHIGH, F_RMMOD, F_NR
};

static const char *const sk_fault_name[F_NR] = {
	"none", "kill", "error", "flakey", "delay", "dmremove", "poweroff",
	"freeze", "loopdetach", "memhigh", "rmmod",
};

enum sk_kind { K_DM, K_NULLB, K_EXT4, K_LOOP };

/* One device, shared by the parent and its owner of the moment. */
struct sk_dev {
	char path[256];		/* the backend the owner opens */
	/* parent -> owner */
	unsigned int cmd_seq;
	int mode;
	unsigned int rebind_seq;
	unsigned int fault_seq;	/* odd: a fault failing the backend is on */
	int fault_kind;		/* the last such fault */
	/* owner -> parent */
	unsigned int ack_seq;
	unsigned int rebind_ack;
	int ready;
	int failed;		/* the owner saw a failure, said in why */
	char why[200];
	unsigned long long served, ioerr, attributed, unattributed;
	unsigned long long mismatches, verified, inflight_left;
	unsigned long long attributed_to[F_NR];
	/* the oracle */
	uint32_t acked[SK_NBLK];
	uint32_t issued[SK_NBLK];
};

struct sk_shared {
	struct sk_dev dev[SK_NDEV];
};

static struct sk_shared *sk;

/* ------------------------------------------------------------- helpers */

static int64_t sk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sk_msleep(unsigned int ms)
{
	usleep(ms * 1000);
}

#define SK_LOAD(x)	__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define SK_STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void sk_fail(struct sk_dev *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!s->failed)
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	fprintf(stderr, "soak: dev%ld: ", (long)(s - sk->dev));
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	SK_STORE(s->failed, 1);
}

/* The tag of sector @i of block @blk of device @di. */
static uint64_t sk_tag(int di, int blk, int i)
{
	return (uint64_t)di << 48 | (uint64_t)blk << 8 | i;
}

static void sk_fill(uint8_t *buf, int di, int blk, uint32_t gen)
{
	int i;

	for (i = 0; i < SK_SPB; i++) {
		uint64_t *w = (uint64_t *)(buf + i * VB_SECTOR);

		w[0] = SK_MAGIC;
		w[1] = sk_tag(di, blk, i);
		w[2] = gen;
		vb_pattern(&w[3], VB_SECTOR - 24,
			   (uint64_t)blk * SK_SPB + i, gen);
	}
}

/*
 * Check block @blk read back into @buf against the oracle: each sector a
 * generation from acked to issued (0 is the zeroes the disk started with).
 */
static bool sk_check(struct sk_dev *s, int di, int blk, const uint8_t *buf)
{
	uint32_t lo = SK_LOAD(s->acked[blk]), hi = SK_LOAD(s->issued[blk]);
	uint64_t expect[VB_SECTOR / 8];
	int i;

	for (i = 0; i < SK_SPB; i++) {
		const uint64_t *w = (const uint64_t *)(buf + i * VB_SECTOR);
		uint64_t gen = 0;
		bool ok = true;

		if (!vb_is_zero(w, VB_SECTOR)) {
			gen = w[2];
			ok = w[0] == SK_MAGIC && w[1] == sk_tag(di, blk, i) &&
			     gen <= UINT32_MAX;
			if (ok) {
				vb_pattern(expect, VB_SECTOR - 24,
					   (uint64_t)blk * SK_SPB + i, gen);
				ok = !memcmp(&w[3], expect, VB_SECTOR - 24);
			}
		}
		if (ok && gen >= lo && gen <= hi)
			continue;
		if (s->mismatches++ < 10)
			fprintf(stderr,
				"soak: dev%d block %d sector %d: %s gen %llu, acked %u issued %u\n",
				di, blk, i, ok ? "stale or future" : "corrupt",
				(unsigned long long)gen, lo, hi);
		return false;
	}
	return true;
}

/* What the parent knows of a device. */
struct sk_devctl {
	bool present;
	enum sk_kind kind;
	const char *name;
	pid_t owner;
	/* sk_wait() reaped the owner, which exited with @status */
	bool reaped;
	int status;
	struct vb_backend disk;	/* null_blk or the ext4 file */
	struct vb_dm dm;	/* K_DM: the dm device over disk */
	int dm_gen;
	char file[256];		/* K_LOOP: the file under the loop device */
	char loop[64];		/* K_LOOP: the loop device attached */
	int loopfd;		/* and our fd of it, which keeps it bound */
	uint64_t sectors;
	bool faults[F_NR];
};

static struct sk_devctl ctl[SK_NDEV];

/* --------------------------------------------------------------- owner */

struct sk_slot {
	struct vb_req r;
	uint64_t gpa;
	int blk;		/* or SK_FLUSH */
	uint32_t gen;		/* of a write; 0 for a read */
	bool busy, verify;
	unsigned int fseq;	/* fault_seq at submission */
	int fkind;		/* and fault_kind */
	int64_t t0;
};

struct sk_owner {
	int di;
	struct sk_dev *s;
	struct vb_dev d;
	int backend;
	struct sk_slot slot[SK_NVQS][SK_DEPTH];
	uint8_t busy_blk[SK_NBLK];
	unsigned int inflight;
	uint64_t rng;
};

static void sk_complete(struct sk_owner *o, struct sk_slot *sl)
{
	struct sk_dev *s = o->s;
	uint8_t st = sl->r.status;

	if (st == VIRTIO_BLK_S_OK) {
		s->served++;
		if (sl->blk == SK_FLUSH)
			;
		else if (sl->gen)
			SK_STORE(s->acked[sl->blk], sl->gen);
		else if (sk_check(s, o->di, sl->blk,
				  vb_hva(&o->d.mem, sl->gpa, SK_BLOCK)) &&
			 sl->verify)
			s->verified++;
	} else {
		unsigned int now = SK_LOAD(s->fault_seq);

		if (st == VIRTIO_BLK_S_IOERR)
			s->ioerr++;
		if (st == VIRTIO_BLK_S_IOERR && ((sl->fseq & 1) || now != sl->fseq)) {
			s->attributed++;
			s->attributed_to[sl->fseq & 1 ? sl->fkind :
					 SK_LOAD(s->fault_kind)]++;
		} else {
			s->unattributed++;
			sk_fail(s, "%s of block %d: status %u with no fault to blame",
				sl->blk == SK_FLUSH ? "flush" :
				sl->gen ? "write" : "read", sl->blk, st);
		}
	}
	if (sl->blk >= 0)
		o->busy_blk[sl->blk] = 0;
	sl->busy = false;
	o->inflight--;
}

/* Post a request on slot @sl of queue @q: block @blk, written if @write. */
static int sk_post(struct sk_owner *o, int q, struct sk_slot *sl, int blk,
		   bool write, bool verify)
{
	struct sk_dev *s = o->s;
	uint8_t *p = vb_hva(&o->d.mem, sl->gpa, SK_BLOCK);
	int ret;

	memset(&sl->r, 0, sizeof(sl->r));
	sl->blk = blk;
	sl->gen = 0;
	sl->verify = verify;
	if (blk == SK_FLUSH) {
		sl->r.type = VIRTIO_BLK_T_FLUSH;
	} else if (write) {
		/* issued first: a kill from here on leaves the block unknown */
		sl->gen = s->issued[blk] + 1;
		SK_STORE(s->issued[blk], sl->gen);
		sk_fill(p, o->di, blk, sl->gen);
		sl->r.type = VIRTIO_BLK_T_OUT;
	} else {
		memset(p, 0xaa, SK_BLOCK);
		sl->r.type = VIRTIO_BLK_T_IN;
	}
	if (blk != SK_FLUSH) {
		sl->r.sector = (uint64_t)blk * SK_SPB;
		sl->r.data_gpa = sl->gpa;
		sl->r.data_len = SK_BLOCK;
		o->busy_blk[blk] = 1;
	}
	sl->fseq = SK_LOAD(s->fault_seq);
	sl->fkind = SK_LOAD(s->fault_kind);
	sl->t0 = sk_now_ms();
	ret = vb_req_post(&o->d.vq[q], &sl->r);
	if (ret) {
		sk_fail(s, "posting a request: %s", strerror(-ret));
		return ret;
	}
	sl->busy = true;
	o->inflight++;
	return 0;
}

/* Collect completions, waiting up to @ms for one; 0 or -errno. */
static int sk_reap(struct sk_owner *o, int ms)
{
	struct pollfd p[SK_NVQS];
	int64_t now;
	int q, i, ret;

	for (q = 0; q < SK_NVQS; q++)
		p[q] = (struct pollfd){ .fd = o->d.vq[q].call, .events = POLLIN };
	if (poll(p, SK_NVQS, ms) < 0 && errno != EINTR)
		return -errno;
	now = sk_now_ms();
	for (q = 0; q < SK_NVQS; q++) {
		vb_fd_signalled(o->d.vq[q].call);
		ret = vb_vq_collect(&o->d.vq[q]);
		if (ret < 0) {
			sk_fail(o->s, "queue %d: bogus used entry", q);
			return ret;
		}
		for (i = 0; i < SK_DEPTH; i++) {
			struct sk_slot *sl = &o->slot[q][i];

			if (!sl->busy)
				continue;
			if (sl->r.done) {
				sk_complete(o, sl);
			} else if (now - sl->t0 > SK_REQ_MS) {
				sk_fail(o->s, "queue %d: request on block %d not done in %d s",
					q, sl->blk, SK_REQ_MS / 1000);
				return -ETIMEDOUT;
			}
		}
	}
	return 0;
}

static int sk_drain(struct sk_owner *o)
{
	int ret;

	while (o->inflight) {
		ret = sk_reap(o, 20);
		if (ret)
			return ret;
	}
	return 0;
}

static struct sk_slot *sk_free_slot(struct sk_owner *o, int *q)
{
	int i, k;

	for (k = 0; k < SK_NVQS; k++) {
		int qq = (*q + k) % SK_NVQS;

		for (i = 0; i < SK_DEPTH; i++)
			if (!o->slot[qq][i].busy) {
				*q = qq;
				return &o->slot[qq][i];
			}
	}
	return NULL;
}

/* Kick each queue of @o that @posted says got a request. */
static void sk_kick_posted(struct sk_owner *o, const bool *posted)
{
	int q;

	for (q = 0; q < SK_NVQS; q++)
		if (posted[q])
			vb_vq_kick(&o->d.vq[q]);
}

/* Random I/O until there is no room, then kick. */
static int sk_fill_queues(struct sk_owner *o)
{
	bool posted[SK_NVQS] = { false };
	struct sk_slot *sl;
	int q = vb_rand(&o->rng) % SK_NVQS, ret;

	while ((sl = sk_free_slot(o, &q))) {
		uint64_t r = vb_rand(&o->rng);
		int blk = (r >> 8) % SK_NBLK, tries = 0;

		while (o->busy_blk[blk] && tries++ < 8)
			blk = (blk + 1) % SK_NBLK;
		if (o->busy_blk[blk])
			break;
		if (r % 32 == 0)
			blk = SK_FLUSH;
		ret = sk_post(o, q, sl, blk, r % 8 < 5, false);
		if (ret)
			return ret;
		posted[q] = true;
		q = (q + 1) % SK_NVQS;
	}
	sk_kick_posted(o, posted);
	return 0;
}

/* Read every block back, SK_DEPTH at a time per queue. */
static int sk_verify(struct sk_owner *o)
{
	struct sk_slot *sl;
	int blk = 0, q = 0, ret;

	ret = sk_drain(o);
	while (!ret && (blk < SK_NBLK || o->inflight)) {
		bool posted[SK_NVQS] = { false };

		while (blk < SK_NBLK && (sl = sk_free_slot(o, &q))) {
			ret = sk_post(o, q, sl, blk++, false, true);
			if (ret)
				return ret;
			posted[q] = true;
			q = (q + 1) % SK_NVQS;
		}
		sk_kick_posted(o, posted);
		ret = sk_reap(o, 20);
	}
	return ret;
}

/* After a drain: what the module still counts in flight (fdinfo). */
static void sk_check_inflight(struct sk_owner *o)
{
	long long n = vb_fdinfo_vq_sum(o->d.fd, "inflight");

	if (n < 0) {
		sk_fail(o->s, "fdinfo unreadable");
	} else if (n) {
		o->s->inflight_left += n;
		sk_fail(o->s, "%lld requests in flight (fdinfo) after a drain", n);
	}
}

static int sk_rebind(struct sk_owner *o)
{
	int fd = open(o->s->path, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0) {
		sk_fail(o->s, "cannot open the new backend %s: %s", o->s->path,
			strerror(errno));
		return -errno;
	}
	ret = vb_set_backend(&o->d, fd);
	if (ret) {
		close(fd);
		sk_fail(o->s, "VHOST_BLK_SET_BACKEND of %s: %s", o->s->path,
			strerror(-ret));
		return ret;
	}
	close(o->backend);
	o->backend = fd;
	return 0;
}

static const char *sk_cgroup_dir(int di, char *buf, size_t len);

static int sk_owner_main(int di)
{
	struct sk_owner *o = calloc(1, sizeof(*o));
	struct vb_opts opts = { .nvqs = SK_NVQS, .num = 64 };
	struct sk_dev *s = &sk->dev[di];
	char path[300], cg[256], pid[32];
	unsigned int seen_cmd, q, i;
	int ret;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!o)
		return 1;
	/* the parent's loop device fds: it alone keeps them bound */
	for (i = 0; i < SK_NDEV; i++)
		if (ctl[i].loopfd > 0)
			close(ctl[i].loopfd);
	/* before the device exists, so that its worker is charged here too */
	if (sk_cgroup_dir(di, cg, sizeof(cg))) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
		snprintf(pid, sizeof(pid), "%d", getpid());
		vb_write_text(path, pid);
	}
	o->di = di;
	o->s = s;
	o->rng = sk_now_ms() * 2654435761ULL + getpid();
	o->backend = open(s->path, O_RDWR | O_CLOEXEC);
	if (o->backend < 0) {
		sk_fail(s, "cannot open %s: %s", s->path, strerror(errno));
		return 1;
	}
	opts.backend = o->backend;
	ret = vb_dev_setup(&o->d, &opts);
	if (ret) {
		sk_fail(s, "device setup: %s", strerror(-ret));
		return 1;
	}
	for (q = 0; q < SK_NVQS; q++)
		for (i = 0; i < SK_DEPTH; i++)
			o->slot[q][i].gpa = vb_alloc_data(&o->d.mem, SK_BLOCK);
	SK_STORE(s->rebind_ack, SK_LOAD(s->rebind_seq));
	seen_cmd = SK_LOAD(s->ack_seq);
	SK_STORE(s->ready, 1);

	for (;;) {
		unsigned int cmd = SK_LOAD(s->cmd_seq);
		unsigned int rb = SK_LOAD(s->rebind_seq);
		int mode = SK_LOAD(s->mode);

		if (rb != SK_LOAD(s->rebind_ack)) {
			if (sk_rebind(o))
				return 1;
			SK_STORE(s->rebind_ack, rb);
		}
		if (cmd != seen_cmd) {
			seen_cmd = cmd;
			if (mode == SK_VERIFY || mode == SK_STOP) {
				if (sk_verify(o))
					return 1;
				sk_check_inflight(o);
			}
			if (mode == SK_STOP) {
				vb_dev_teardown(&o->d);
				close(o->backend);
				SK_STORE(s->ack_seq, cmd);
				return s->failed;
			}
			SK_STORE(s->ack_seq, cmd);
		}
		if (mode == SK_RUN && sk_fill_queues(o))
			return 1;
		if (o->inflight) {
			if (sk_reap(o, 20))
				return 1;
		} else {
			sk_msleep(5);
		}
	}
}

/* -------------------------------------------------------------- parent */

static unsigned long long sk_injected[F_NR];
static const char *sk_missing[F_NR];
static char sk_cgroup[128];
static int sk_failures;
static unsigned long long sk_memhigh_events;

static const char *sk_cgroup_dir(int di, char *buf, size_t len)
{
	if (!sk_cgroup[0])
		return NULL;
	snprintf(buf, len, "%s/dev%d", sk_cgroup, di);
	return buf;
}

static void sk_parent_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "soak: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	sk_failures++;
}

static void sk_watchdog(int sig)
{
	static const char msg[] = "soak: watchdog: the run did not end in time\n";
	int i;

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0)
		;
	for (i = 0; i < SK_NDEV; i++)
		if (ctl[i].owner > 0)
			kill(ctl[i].owner, SIGKILL);
	_exit(1);
}

/* Wait up to @ms for child @pid: its wait status, or -1. */
static int sk_waitpid(pid_t pid, int ms)
{
	int64_t end = sk_now_ms() + ms;
	int status;

	do {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		sk_msleep(10);
	} while (sk_now_ms() < end);
	return -1;
}

static int sk_start_owner(int di)
{
	struct sk_dev *s = &sk->dev[di];
	int64_t end = sk_now_ms() + SK_CMD_MS;
	pid_t pid;

	SK_STORE(s->ready, 0);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid)
		_exit(sk_owner_main(di));
	ctl[di].owner = pid;
	while (!SK_LOAD(s->ready)) {
		if (SK_LOAD(s->failed) || sk_now_ms() > end ||
		    waitpid(pid, NULL, WNOHANG) == pid) {
			sk_parent_fail("dev%d: a new owner did not get ready", di);
			return -EIO;
		}
		sk_msleep(5);
	}
	return 0;
}

/* Kill @di's owner, check it and its worker went away, start another. */
static int sk_kill_owner(int di)
{
	char name[32];
	pid_t pid = ctl[di].owner;

	vb_worker_name(name, sizeof(name), pid);
	kill(pid, SIGKILL);
	if (sk_waitpid(pid, SK_CMD_MS) < 0) {
		sk_parent_fail("dev%d: SIGKILLed owner %d not reaped in %d s",
			       di, pid, SK_CMD_MS / 1000);
		return -EIO;
	}
	ctl[di].owner = 0;
	if (vb_wait_threads(name, 0, NULL)) {
		sk_parent_fail("dev%d: worker %s outlived its killed owner", di,
			       name);
		return -EIO;
	}
	return sk_start_owner(di);
}

/* Send @mode to the owner of @di. */
static void sk_send(int di, int mode)
{
	struct sk_dev *s = &sk->dev[di];

	SK_STORE(s->mode, mode);
	SK_STORE(s->cmd_seq, SK_LOAD(s->cmd_seq) + 1);
}

/* Wait for the owner of @di to be done with the last command. */
static int sk_wait(int di)
{
	struct sk_dev *s = &sk->dev[di];
	unsigned int seq = SK_LOAD(s->cmd_seq);
	int mode = SK_LOAD(s->mode);
	int64_t end = sk_now_ms() + SK_CMD_MS;

	while (SK_LOAD(s->ack_seq) != seq) {
		bool gone = false;

		if (!SK_LOAD(s->failed) && sk_now_ms() <= end) {
			gone = waitpid(ctl[di].owner, &ctl[di].status,
				       WNOHANG) == ctl[di].owner;
			if (!gone) {
				sk_msleep(5);
				continue;
			}
		}
		/*
		 * An owner told to stop acknowledges and exits at once: it
		 * may have done both since the loop's test.
		 */
		if (gone && mode == SK_STOP && !SK_LOAD(s->failed) &&
		    SK_LOAD(s->ack_seq) == seq) {
			ctl[di].reaped = true;
			break;
		}
		if (gone)
			sk_parent_fail("dev%d: owner exited during command %d, status %#x",
				       di, mode, ctl[di].status);
		else
			sk_parent_fail("dev%d: owner failed command %d%s%s", di,
				       mode, s->failed ? ": " : "",
				       s->failed ? s->why : "");
		return -EIO;
	}
	return 0;
}

static int sk_command(int di, int mode)
{
	sk_send(di, mode);
	return sk_wait(di);
}

static int sk_stop_owner(int di)
{
	int ret = sk_command(di, SK_STOP), status;
	char name[32];

	vb_worker_name(name, sizeof(name), ctl[di].owner);
	status = ctl[di].reaped ? ctl[di].status :
				  sk_waitpid(ctl[di].owner, SK_CMD_MS);
	ctl[di].reaped = false;
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		sk_parent_fail("dev%d: stopped owner did not exit cleanly", di);
		ret = -EIO;
	} else if (vb_wait_threads(name, 0, NULL)) {
		sk_parent_fail("dev%d: worker %s outlived its owner", di, name);
		ret = -EIO;
	}
	ctl[di].owner = 0;
	return ret;
}

static int sk_rebind_owner(int di)
{
	struct sk_dev *s = &sk->dev[di];
	unsigned int seq = SK_LOAD(s->rebind_seq) + 1;
	int64_t end = sk_now_ms() + SK_CMD_MS;

	SK_STORE(s->rebind_seq, seq);
	while (SK_LOAD(s->rebind_ack) != seq) {
		if (SK_LOAD(s->failed) || sk_now_ms() > end) {
			sk_parent_fail("dev%d: owner did not attach %s", di,
				       s->path);
			return -EIO;
		}
		sk_msleep(5);
	}
	return 0;
}

static int sk_run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) ? -EIO : 0;
}

static int sk_dm_new(struct sk_devctl *c, int di)
{
	char name[32], table[400];
	const char *why = "";
	int fd;

	snprintf(name, sizeof(name), "vbsoak%dg%d", di, c->dm_gen++);
	snprintf(table, sizeof(table), "0 %llu linear %s 0",
		 (unsigned long long)c->sectors, c->disk.path);
	fd = vb_dm_create(&c->dm, name, table, &why);
	if (fd < 0) {
		fprintf(stderr, "soak: dev%d: %s\n", di, why);
		vb_dm_destroy(&c->dm);
		return fd;
	}
	close(fd);
	c->dm.fd = -1;
	snprintf(sk->dev[di].path, sizeof(sk->dev[di].path), "%s", c->dm.path);
	return 0;
}

/*
 * Device @di's disk was made (@made >= 0, an open fd we do not keep) with
 * @fault for it, or not, for @why: the fault is then missing.
 */
static void sk_dev_made(int di, int made, const char *why, int fault)
{
	struct sk_devctl *c = &ctl[di];

	if (made < 0) {
		fprintf(stderr, "soak: dev%d: %s\n", di, why);
		sk_missing[fault] = why;
		return;
	}
	close(c->disk.fd);
	c->disk.fd = -1;
	snprintf(sk->dev[di].path, sizeof(sk->dev[di].path), "%s",
		 c->disk.path);
	c->present = true;
	c->faults[fault] = true;
}

/*
 * A loop device over the file of @c (made on first use) for @di, in
 * c->loopfd, which the caller closes when it is done with the old one.
 */
static int sk_loop_new(struct sk_devctl *c, int di)
{
	int fd;

	if (!c->file[0]) {
		snprintf(c->file, sizeof(c->file), "/tmp/vbsoak-loop-XXXXXX");
		fd = mkstemp(c->file);
		if (fd < 0 || ftruncate(fd, SK_DISK)) {
			fprintf(stderr, "soak: dev%d: cannot make %s\n", di,
				c->file);
			if (fd >= 0)
				close(fd);
			unlink(c->file);
			c->file[0] = 0;
			return -EIO;
		}
		close(fd);
	}
	fd = vb_loop_attach(c->file, c->loop, sizeof(c->loop));
	if (fd < 0) {
		fprintf(stderr, "soak: dev%d: no loop device: %s\n", di,
			strerror(-fd));
		return fd;
	}
	/* autoclear: bound as long as someone holds it, we do */
	c->loopfd = fd;
	snprintf(sk->dev[di].path, sizeof(sk->dev[di].path), "%s", c->loop);
	return 0;
}

/* Whether loop device @dev is bound, from sysfs. */
static bool sk_loop_bound(const char *dev)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		 strrchr(dev, '/') + 1);
	return !access(path, F_OK);
}

static int sk_loop_detach(const char *dev)
{
	int fd = open(dev, O_RDWR | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, LOOP_CLR_FD, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static bool sk_dm_target(const char *target)
{
	char cmd[128];

	sk_run("modprobe dm_%s 2>/dev/null", target);
	snprintf(cmd, sizeof(cmd),
		 "dmsetup targets 2>/dev/null | grep -q '^%s '", target);
	return !system(cmd);
}

static void sk_setup(void)
{
	const char *why = "";
	char path[300];
	int i, made;

	for (i = 0; i < SK_NDEV; i++)
		ctl[i].dm.name[0] = 0;

	/* dev0: dm-linear over a null_blk, for the dm faults */
	ctl[0].kind = K_DM;
	ctl[0].name = "dm-linear/null_blk";
	if (!vb_have_dmsetup()) {
		for (i = F_ERROR; i <= F_DMREMOVE; i++)
			sk_missing[i] = "dmsetup not installed";
	} else if (vb_nullb_create(&ctl[0].disk, SK_DISK, NULL, 0, &why) < 0) {
		fprintf(stderr, "soak: dev0: %s\n", why);
	} else {
		close(ctl[0].disk.fd);
		ctl[0].disk.fd = -1;
		ctl[0].sectors = SK_DISK / VB_SECTOR;
		if (!sk_dm_new(&ctl[0], 0)) {
			ctl[0].present = true;
			ctl[0].faults[F_ERROR] = sk_dm_target("error");
			ctl[0].faults[F_FLAKEY] = sk_dm_target("flakey");
			ctl[0].faults[F_DELAY] = sk_dm_target("delay");
			ctl[0].faults[F_DMREMOVE] = true;
			if (!ctl[0].faults[F_ERROR])
				sk_missing[F_ERROR] = "no dm-error target";
			if (!ctl[0].faults[F_FLAKEY])
				sk_missing[F_FLAKEY] = "no dm-flakey target";
			if (!ctl[0].faults[F_DELAY])
				sk_missing[F_DELAY] = "no dm-delay target";
		} else {
			vb_backend_destroy(&ctl[0].disk);
		}
	}

	/* dev1: a null_blk alone, powered off and on */
	ctl[1].kind = K_NULLB;
	ctl[1].name = "null_blk";
	made = vb_nullb_create(&ctl[1].disk, SK_DISK, NULL, 0, &why);
	sk_dev_made(1, made, why, F_POWEROFF);

	/* dev2: a file on ext4, frozen and thawed */
	ctl[2].kind = K_EXT4;
	ctl[2].name = "file on ext4";
	made = vb_backend_create(&ctl[2].disk, "ext4", SK_DISK, 0, &why);
	sk_dev_made(2, made, why, F_FREEZE);

	/* dev3: a loop device over a file on tmpfs, detached under I/O */
	ctl[3].kind = K_LOOP;
	ctl[3].name = "loop";
	if (sk_loop_new(&ctl[3], 3)) {
		sk_missing[F_LOOPDETACH] = "no loop device";
	} else {
		ctl[3].present = true;
		ctl[3].faults[F_LOOPDETACH] = true;
	}

	/* memory.high needs the memory controller for our children */
	snprintf(sk_cgroup, sizeof(sk_cgroup), "/sys/fs/cgroup/vbsoak%d",
		 getpid());
	vb_write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
	if (mkdir(sk_cgroup, 0755) ||
	    (snprintf(path, sizeof(path), "%s/cgroup.subtree_control",
		      sk_cgroup),
	     vb_write_text(path, "+memory"))) {
		rmdir(sk_cgroup);
		sk_cgroup[0] = 0;
		sk_missing[F_MEMHIGH] = "no cgroup2 memory controller";
	}
	for (i = 0; i < SK_NDEV; i++) {
		ctl[i].faults[F_NONE] = true;
		ctl[i].faults[F_KILL] = true;
		if (sk_cgroup[0]) {
			snprintf(path, sizeof(path), "%s/dev%d", sk_cgroup, i);
			ctl[i].faults[F_MEMHIGH] = !mkdir(path, 0755);
		}
	}
	if (!ctl[2].present)
		sk_missing[F_FREEZE] = sk_missing[F_FREEZE] ?: "no ext4";
}

static void sk_teardown(void)
{
	char path[300], ev[512], *p;
	int i;

	for (i = 0; i < SK_NDEV; i++) {
		if (ctl[i].kind == K_LOOP && ctl[i].loopfd > 0)
			close(ctl[i].loopfd);
		if (ctl[i].kind == K_LOOP && ctl[i].file[0])
			unlink(ctl[i].file);
		/* how often the owners went over memory.high */
		snprintf(path, sizeof(path), "%s/dev%d/memory.events",
			 sk_cgroup, i);
		p = NULL;
		if (sk_cgroup[0] && vb_read_text(path, ev, sizeof(ev)) >= 0)
			p = strstr(ev, "\nhigh ");
		if (p)
			sk_memhigh_events += atoll(p + 6);
		if (ctl[i].kind == K_DM)
			vb_dm_destroy(&ctl[i].dm);
		vb_backend_destroy(&ctl[i].disk);
		if (sk_cgroup[0]) {
			snprintf(path, sizeof(path), "%s/dev%d", sk_cgroup, i);
			rmdir(path);
		}
	}
	if (sk_cgroup[0])
		rmdir(sk_cgroup);
}

static int sk_memhigh(int di, bool on)
{
	char path[300], val[64];
	long long cur;

	snprintf(path, sizeof(path), "%s/dev%d/memory.current", sk_cgroup, di);
	if (vb_read_text(path, val, sizeof(val)) < 0)
		return -EIO;
	cur = atoll(val);
	snprintf(path, sizeof(path), "%s/dev%d/memory.high", sk_cgroup, di);
	if (!on)
		return vb_write_text(path, "max");
	snprintf(val, sizeof(val), "%lld", cur / 2 > 65536 ? cur / 2 : 65536);
	return vb_write_text(path, val);
}

static int sk_freeze(int di, bool on)
{
	int fd = open(ctl[di].disk.aux, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = ioctl(fd, on ? FIFREEZE : FITHAW, 0) ? -errno : 0;
	close(fd);
	return ret;
}

static int sk_dm_table(int di, enum sk_fault f)
{
	struct sk_devctl *c = &ctl[di];
	unsigned long long n = c->sectors;
	char table[400];

	switch (f) {
	case F_ERROR:
		snprintf(table, sizeof(table), "0 %llu error", n);
		break;
	case F_FLAKEY:
		snprintf(table, sizeof(table), "0 %llu flakey %s 0 1 1", n,
			 c->disk.path);
		break;
	case F_DELAY:
		snprintf(table, sizeof(table), "0 %llu delay %s 0 200", n,
			 c->disk.path);
		break;
	default:
		snprintf(table, sizeof(table), "0 %llu linear %s 0", n,
			 c->disk.path);
		break;
	}
	return vb_dm_reload(&c->dm, table);
}

static bool sk_fails_backend(enum sk_fault f)
{
	return f == F_ERROR || f == F_FLAKEY || f == F_DMREMOVE ||
	       f == F_POWEROFF;
}

static int sk_inject(int di, enum sk_fault f)
{
	struct sk_devctl *c = &ctl[di];
	char cmd[300];

	if (sk_fails_backend(f)) {
		SK_STORE(sk->dev[di].fault_kind, f);
		__atomic_add_fetch(&sk->dev[di].fault_seq, 1, __ATOMIC_SEQ_CST);
	}
	switch (f) {
	case F_ERROR:
	case F_FLAKEY:
	case F_DELAY:
		return sk_dm_table(di, f);
	case F_DMREMOVE:
		snprintf(cmd, sizeof(cmd),
			 "dmsetup remove --force --noudevsync %s >/dev/null 2>&1",
			 c->dm.name);
		/* still open by the device: left with an error table */
		system(cmd);
		return 0;
	case F_POWEROFF:
		return vb_nullb_power(&c->disk, false);
	case F_LOOPDETACH:
		return sk_loop_detach(c->loop);
	case F_FREEZE:
		return sk_freeze(di, true);
	case F_MEMHIGH:
		return sk_memhigh(di, true);
	default:
		return 0;
	}
}

static int sk_clear(int di, enum sk_fault f)
{
	struct sk_devctl *c = &ctl[di];
	char oldloop[64];
	struct vb_dm old;
	int ret = 0, fd, i;

	switch (f) {
	case F_ERROR:
	case F_FLAKEY:
	case F_DELAY:
		ret = sk_dm_table(di, F_NONE);
		break;
	case F_DMREMOVE:
		old = c->dm;
		ret = sk_dm_new(c, di);
		ret = ret ?: sk_rebind_owner(di);
		/* the old device, closed now, can go */
		vb_dm_destroy(&old);
		break;
	case F_POWEROFF:
		ret = vb_nullb_power(&c->disk, true);
		if (!ret)
			snprintf(sk->dev[di].path, sizeof(sk->dev[di].path),
				 "%s", c->disk.path);
		ret = ret ?: sk_rebind_owner(di);
		break;
	case F_FREEZE:
		ret = sk_freeze(di, false);
		break;
	case F_LOOPDETACH:
		snprintf(oldloop, sizeof(oldloop), "%s", c->loop);
		fd = c->loopfd;
		ret = sk_loop_new(c, di);
		if (ret)
			return ret;
		ret = sk_rebind_owner(di);
		close(fd);
		/* the module let the old one go: autoclear unbinds it */
		for (i = 0; !ret && i < 500 && sk_loop_bound(oldloop); i++)
			sk_msleep(10);
		if (!ret && sk_loop_bound(oldloop)) {
			sk_parent_fail("dev%d: %s still bound after the swap",
				       di, oldloop);
			ret = -EBUSY;
		}
		break;
	case F_MEMHIGH:
		ret = sk_memhigh(di, false);
		break;
	default:
		break;
	}
	if (sk_fails_backend(f))
		__atomic_add_fetch(&sk->dev[di].fault_seq, 1, __ATOMIC_SEQ_CST);
	return ret;
}

static int sk_reload_module(void)
{
	const char *ko = getenv("VHOST_BLK_MODULE");
	int i;

	for (i = 0; i < 20 && sk_run("rmmod vhost_blk 2>/dev/null"); i++)
		sk_msleep(100);
	if (vb_module_loaded()) {
		sk_parent_fail("rmmod vhost_blk failed with every owner gone");
		return -EBUSY;
	}
	if (ko && *ko ? sk_run("insmod %s", ko) :
			sk_run("modprobe vhost_blk")) {
		sk_parent_fail("cannot load vhost_blk again");
		return -EIO;
	}
	for (i = 0; i < 500 && access(VB_DEV_PATH, F_OK); i++)
		sk_msleep(10);
	return 0;
}

/*
 * The fault of @di for @round: every kind of the device in turn, from a
 * random start per device, so that a short run has them all.
 */
static enum sk_fault sk_pick(int di, unsigned int round, uint64_t *rng)
{
	static unsigned int start[SK_NDEV];
	enum sk_fault list[F_NR];
	int n = 0, f;

	for (f = 0; f < F_NR; f++)
		if (ctl[di].faults[f])
			list[n++] = f;
	if (!start[di])
		start[di] = 1 + vb_rand(rng) % n;
	return list[(start[di] + round) % n];
}

static void sk_usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--time SECONDS] [--seed N] [--no-rmmod]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "time", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "no-rmmod", no_argument, NULL, 'n' },
		{ }
	};
	unsigned long long served = 0, ioerr = 0, attr = 0, unattr = 0;
	unsigned long long mism = 0, verified = 0, left = 0;
	unsigned int seconds = 180, rounds = 0, ndev = 0;
	bool rmmod = true, reloaded = false;
	uint64_t seed = 0, rng;
	int64_t start = sk_now_ms(), end;
	int c, i, f;

	while ((c = getopt_long(argc, argv, "t:s:n", lopts, NULL)) != -1) {
		switch (c) {
		case 't':
			seconds = atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			rmmod = false;
			break;
		default:
			sk_usage(argv[0]);
		}
	}
	if (!seed)
		seed = time(NULL) ^ getpid();
	rng = seed | 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!vb_module_loaded() || access(VB_DEV_PATH, F_OK)) {
		printf("soak: vhost_blk is not loaded\n");
		return 4;
	}
	if (rmmod && !getenv("VHOST_BLK_MODULE")) {
		printf("soak: no VHOST_BLK_MODULE: rmmod faults off\n");
		rmmod = false;
	}
	sk = mmap(NULL, sizeof(*sk), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sk == MAP_FAILED)
		return 1;
	signal(SIGALRM, sk_watchdog);
	alarm(seconds + 300);
	printf("soak: %u s, seed %llu\n", seconds, (unsigned long long)seed);

	sk_setup();
	if (!rmmod)
		sk_missing[F_RMMOD] = "no VHOST_BLK_MODULE to load again";
	for (i = 0; i < SK_NDEV; i++) {
		if (!ctl[i].present)
			continue;
		ndev++;
		printf("soak: dev%d: %s (%s), %d queues, faults:", i,
		       ctl[i].name, sk->dev[i].path, SK_NVQS);
		for (f = 1; f < F_NR; f++)
			if (ctl[i].faults[f])
				printf(" %s", sk_fault_name[f]);
		printf("\n");
		if (sk_start_owner(i))
			goto out;
	}
	if (!ndev) {
		printf("soak: no backend could be made\n");
		sk_teardown();
		return 4;
	}

	start = sk_now_ms();
	end = start + seconds * 1000LL;
	while (sk_now_ms() < end && !sk_failures) {
		enum sk_fault fault[SK_NDEV] = { F_NONE };
		int64_t t0, tr = sk_now_ms(), tc, tv, kill_at[SK_NDEV];

		rounds++;
		/* the module reloaded halfway and every tenth round */
		if (rmmod && (rounds % 10 == 0 ||
			      (!reloaded && sk_now_ms() > start + (end - start) / 2))) {
			for (i = 0; i < SK_NDEV; i++)
				if (ctl[i].present && sk_stop_owner(i))
					goto out;
			if (sk_reload_module())
				goto out;
			sk_injected[F_RMMOD]++;
			reloaded = true;
			for (i = 0; i < SK_NDEV; i++)
				if (ctl[i].present && sk_start_owner(i))
					goto out;
		}
		for (i = 0; i < SK_NDEV; i++)
			if (ctl[i].present && sk_command(i, SK_RUN))
				goto out;
		sk_msleep(300 + vb_rand(&rng) % 700);
		for (i = 0; i < SK_NDEV; i++) {
			if (!ctl[i].present)
				continue;
			fault[i] = sk_pick(i, rounds, &rng);
			/* a kill comes at a random time of the window */
			kill_at[i] = sk_now_ms() + vb_rand(&rng) % 1800;
			if (fault[i] == F_KILL)
				continue;
			if (sk_inject(i, fault[i])) {
				sk_parent_fail("dev%d: injecting %s failed", i,
					       sk_fault_name[fault[i]]);
				goto out;
			}
			sk_injected[fault[i]]++;
		}
		t0 = sk_now_ms();
		/* the window, and every kill due (a slow kernel may overrun) */
		for (;;) {
			bool due = false;

			for (i = 0; i < SK_NDEV; i++)
				due |= fault[i] == F_KILL && kill_at[i];
			if (!due && sk_now_ms() >= t0 + 2000)
				break;
			for (i = 0; i < SK_NDEV; i++) {
				if (fault[i] != F_KILL || !kill_at[i] ||
				    sk_now_ms() < kill_at[i])
					continue;
				kill_at[i] = 0;		/* done */
				sk_injected[F_KILL]++;
				if (sk_kill_owner(i) || sk_command(i, SK_RUN))
					goto out;
			}
			sk_msleep(100);
		}
		tc = sk_now_ms();
		for (i = 0; i < SK_NDEV; i++) {
			if (!ctl[i].present || fault[i] == F_KILL)
				continue;
			if (sk_clear(i, fault[i])) {
				sk_parent_fail("dev%d: clearing %s failed", i,
					       sk_fault_name[fault[i]]);
				goto out;
			}
		}
		sk_msleep(300);
		tv = sk_now_ms();
		for (i = 0; i < SK_NDEV; i++)
			if (ctl[i].present)
				sk_send(i, SK_VERIFY);
		for (i = 0; i < SK_NDEV; i++)
			if (ctl[i].present && sk_wait(i))
				goto out;
		printf("soak: round %u (%lld ms, faults cleared in %lld, verified in %lld):",
		       rounds, (long long)(sk_now_ms() - tr),
		       (long long)(tv - tc), (long long)(sk_now_ms() - tv));
		for (i = 0; i < SK_NDEV; i++)
			if (ctl[i].present)
				printf(" dev%d %s (served %llu, failed %llu, verified %llu)",
				       i, sk_fault_name[fault[i]],
				       sk->dev[i].served, sk->dev[i].ioerr,
				       sk->dev[i].verified);
		printf("\n");
		for (i = 0; i < SK_NDEV; i++)
			if (sk->dev[i].failed)
				sk_parent_fail("dev%d: %s", i, sk->dev[i].why);
	}

out:
	for (i = 0; i < SK_NDEV; i++) {
		if (ctl[i].owner > 0 && sk_stop_owner(i)) {
			kill(ctl[i].owner, SIGKILL);
			sk_waitpid(ctl[i].owner, SK_CMD_MS);
		}
	}
	/* every owner gone: the module must unload */
	if (rmmod && !sk_reload_module())
		sk_injected[F_RMMOD]++;
	sk_teardown();

	for (i = 0; i < SK_NDEV; i++) {
		struct sk_dev *s = &sk->dev[i];

		served += s->served;
		ioerr += s->ioerr;
		attr += s->attributed;
		unattr += s->unattributed;
		mism += s->mismatches;
		verified += s->verified;
		left += s->inflight_left;
		if (s->failed && !strstr(s->why, "with no fault"))
			sk_failures++;
	}
	printf("soak: rounds: %u in %lld s, %u devices x %d queues\n", rounds,
	       (long long)(sk_now_ms() - start) / 1000, ndev, SK_NVQS);
	printf("soak: faults injected:");
	for (f = 1; f < F_NR; f++)
		if (!sk_missing[f])
			printf(" %s %llu", sk_fault_name[f], sk_injected[f]);
	printf("\n");
	for (f = 1; f < F_NR; f++)
		if (sk_missing[f])
			printf("soak: fault %s skipped: %s\n", sk_fault_name[f],
			       sk_missing[f]);
	if (!sk_missing[F_MEMHIGH])
		printf("soak: memory.high: owners' cgroups over it %llu times\n",
		       sk_memhigh_events);
	printf("soak: failed requests by the fault they fell in:");
	for (f = 1; f < F_NR; f++) {
		unsigned long long n = 0;

		for (i = 0; i < SK_NDEV; i++)
			n += sk->dev[i].attributed_to[f];
		if (n)
			printf(" %s %llu", sk_fault_name[f], n);
	}
	printf("\n");
	printf("soak: requests served %llu, failed %llu ", served, ioerr);
	printf("(attributed to an injected fault %llu, unattributed %llu)\n",
	       attr, unattr);
	printf("soak: blocks verified %llu, mismatches %llu, requests left in flight %llu\n",
	       verified, mism, left);
	if (mism || unattr || left || sk_failures || !rounds) {
		printf("soak: FAIL\n");
		return 1;
	}
	printf("soak: PASS\n");
	return 0;
}
