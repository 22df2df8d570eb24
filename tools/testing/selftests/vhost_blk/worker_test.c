// SPDX-License-Identifier: GPL-2.0
/*
 * vhost-blk's worker kthread: VHOST_SET_OWNER starts one per device, named
 * vhost-blk-<owner pid> and placed in the owner's cgroups, so that cgroup v2
 * io.stat counts the guest's I/O and io.max limits it; RESET_OWNER and
 * close stop it.  The cgroup tests move the test process into fresh cgroups
 * under the cgroup2 root (mounting cgroup2 when nobody did) and skip where
 * cgroup2 or its io controller is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "vhost_blk_lib.h"
#include "../kselftest_harness.h"

#define DISK_SIZE	(32ULL << 20)
#define IO_LEN		(256 * 1024)
#define IO_COUNT	4
#define PF_KTHREAD	0x00200000

/* ------------------------------------------------------------- threads */

/* Field 9 of /proc/<tid>/stat: the task's PF_* flags. */
static unsigned long task_flags(pid_t tid)
{
	char path[64], buf[1024], *p;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", tid);
	if (vb_read_text(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ')');	/* comm may contain spaces */
	if (!p)
		return 0;
	/* after ")": state(3) ppid pgrp session tty tpgid flags(9) */
	for (i = 0; i < 7 && p; i++)
		p = strchr(p + 1, ' ');
	return p ? strtoul(p + 1, NULL, 10) : 0;
}

static int task_cgroup(pid_t tid, char *buf, size_t len)
{
	char path[64];

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", tid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	return vb_read_text(path, buf, len);
}

/* ------------------------------------------------------------- cgroups */

/*
 * The cgroup2 root: where the runner mounted it, else our own mount.
 * Returns 0, or a reason to skip in *why.
 */
static int cgroup2_root(char *root, size_t len, bool *mounted,
			const char **why)
{
	char line[1024], mnt[200], fstype[64];
	FILE *f;

	*mounted = false;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		*why = "no /proc/self/mountinfo";
		return -ENOENT;
	}
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep, " - %63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %199s", mnt) == 1) {
			fclose(f);
			snprintf(root, len, "%s", mnt);
			return 0;
		}
	}
	fclose(f);
	snprintf(root, len, "/tmp/vbt-cgroup2-XXXXXX");
	if (!mkdtemp(root)) {
		*why = "cannot make a cgroup2 mount point";
		return -errno;
	}
	if (mount("cgroup2", root, "cgroup2", 0, NULL)) {
		rmdir(root);
		*why = "cgroup2 not available";
		return -errno;
	}
	*mounted = true;
	return 0;
}

/* The device's budget of pinned pages, raised by one test (see there). */
#define CG_PINS_PARAM	"/sys/module/vhost_blk/parameters/max_pinned_pages"

/* A cgroup directory's counters in io.stat for device @dev. */
struct io_stat {
	unsigned long long rbytes, wbytes, rios, wios;
};

static int read_io_stat(const char *cg, dev_t dev, struct io_stat *s)
{
	char path[600], buf[8192], want[32], *line, *save;

	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "%s/io.stat", cg);
	if (vb_read_text(path, buf, sizeof(buf)) < 0)
		return -errno;
	snprintf(want, sizeof(want), "%u:%u ", major(dev), minor(dev));
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, want, strlen(want)))
			continue;
		if (sscanf(line + strlen(want),
			   "rbytes=%llu wbytes=%llu rios=%llu wios=%llu",
			   &s->rbytes, &s->wbytes, &s->rios, &s->wios) != 4)
			return -EPROTO;
	}
	return 0;
}

FIXTURE(cg) {
	char root[256];
	bool mounted;
	char cg[2][320];	/* fresh cgroups A and B */
	char home[320];		/* where the test process was */
	struct vb_dev d;
	struct vb_backend b;
	dev_t dev;
	uint64_t buf;
	uint8_t *tmp;
	bool buffered;		/* a file in the page cache, the disk below */
	bool memcg;		/* the memory controller is on in cg[] */
	char old_pins[32];	/* max_pinned_pages to put back, if set */
};

FIXTURE_VARIANT(cg) {
	const char *kind;
};

FIXTURE_VARIANT_ADD(cg, brd) { .kind = "brd" };
FIXTURE_VARIANT_ADD(cg, nullb) { .kind = "nullb" };
/*
 * An image file on ext4, opened without O_DIRECT: the module serves its
 * requests from the workqueue, and what reaches the disk is the page
 * cache's writeback, which must be charged to the owner all the same.
 */
FIXTURE_VARIANT_ADD(cg, ext4_buffered) { .kind = "ext4" };

static int cg_enter(const char *cg)
{
	char path[400], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	return vb_write_text(path, pid);
}

FIXTURE_SETUP(cg)
{
	char path[400], line[512], ctl[256];
	const char *why = "";
	struct stat st;
	int i, ret;

	memset(&self->d, 0, sizeof(self->d));
	self->d.fd = -1;
	self->b.kind = NULL;
	self->cg[0][0] = 0;
	self->cg[1][0] = 0;
	self->home[0] = 0;
	self->mounted = false;
	self->tmp = NULL;
	self->old_pins[0] = 0;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (cgroup2_root(self->root, sizeof(self->root), &self->mounted, &why))
		SKIP(return, "%s", why);
	snprintf(path, sizeof(path), "%s/cgroup.controllers", self->root);
	if (vb_read_text(path, ctl, sizeof(ctl)) < 0 || !strstr(ctl, "io"))
		SKIP(return, "the cgroup2 io controller is not available (v1 holds it?)");
	self->buffered = !strcmp(variant->kind, "ext4");
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", self->root);
	if (vb_write_text(path, "+io"))
		SKIP(return, "cannot enable the io controller in %s", path);
	self->memcg = strstr(ctl, "memory") && !vb_write_text(path, "+memory");
	if (self->buffered && !self->memcg)
		SKIP(return, "cannot enable the memory controller in %s", path);
	/* "0::/some/path": where to go back to */
	ASSERT_LT(0, task_cgroup(0, line, sizeof(line)));
	line[strcspn(line, "\n")] = 0;
	snprintf(self->home, sizeof(self->home), "%s%s", self->root,
		 strstr(line, "::") ? strstr(line, "::") + 2 : "/");
	for (i = 0; i < 2; i++) {
		snprintf(self->cg[i], sizeof(self->cg[i]), "%s/vbt-%d-%c",
			 self->root, getpid(), 'a' + i);
		ASSERT_EQ(0, mkdir(self->cg[i], 0755))
			TH_LOG("mkdir %s: %s", self->cg[i], strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/io.stat", self->cg[0]);
	if (access(path, F_OK))
		SKIP(return, "no io.stat in a fresh cgroup");
	/*
	 * A before the backend and SET_OWNER: the worker is created there,
	 * and a new file's inode is written back for the cgroup that made it.
	 */
	ASSERT_EQ(0, cg_enter(self->cg[0]));
	ret = vb_backend_create(&self->b, variant->kind, DISK_SIZE, 0, &why);
	if (ret < 0)
		SKIP(return, "%s: %s (%s)", variant->kind, why, strerror(-ret));
	/* For a file, the counters are the disk's under its file system. */
	ret = self->buffered ? stat(self->b.loopdev, &st) :
			       fstat(self->b.fd, &st);
	ASSERT_EQ(0, ret);
	self->dev = st.st_rdev;
	self->tmp = malloc(IO_LEN);
	ASSERT_NE(NULL, self->tmp);
}

FIXTURE_TEARDOWN(cg)
{
	int i, j;

	vb_dev_teardown(&self->d);
	vb_backend_destroy(&self->b);
	if (self->old_pins[0])
		vb_write_text(CG_PINS_PARAM, self->old_pins);
	free(self->tmp);
	if (self->home[0])
		cg_enter(self->home);
	/* a stopped worker leaves its cgroup a little after close */
	for (i = 0; i < 2; i++)
		for (j = 0; self->cg[i][0] && j < 200; j++) {
			if (!rmdir(self->cg[i]) || errno == ENOENT)
				break;
			usleep(10000);
		}
	if (self->mounted) {
		umount2(self->root, MNT_DETACH);
		rmdir(self->root);
	}
}

static void cg_setup_device(struct __test_metadata *_metadata,
			    FIXTURE_DATA(cg) *self)
{
	struct vb_opts o = { .num = 64, .backend = self->b.fd };
	int ret;

	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	self->buf = vb_alloc_data(&self->d.mem, IO_COUNT * IO_LEN);
	ASSERT_NE(0, self->buf);
}

/* IO_COUNT requests of IO_LEN in flight at once; all must succeed. */
static void cg_io(struct __test_metadata *_metadata, FIXTURE_DATA(cg) *self,
		  uint32_t type, uint64_t sector, unsigned int count)
{
	struct vb_req r[16];
	unsigned int i;

	for (i = 0; i < count; i++) {
		vb_pattern(self->tmp, IO_LEN, sector + i * (IO_LEN / 512), 5);
		vb_write(&self->d.mem, self->buf + (uint64_t)(i % IO_COUNT) *
			 IO_LEN, self->tmp, IO_LEN);
		r[i] = (struct vb_req){
			.type = type, .sector = sector + i * (IO_LEN / 512),
			.data_gpa = self->buf + (uint64_t)(i % IO_COUNT) *
				    IO_LEN,
			.data_len = IO_LEN, .layout = VB_L_INDIRECT,
		};
		ASSERT_EQ(0, vb_req_post(&self->d.vq[0], &r[i]));
	}
	vb_vq_kick(&self->d.vq[0]);
	ASSERT_EQ(0, vb_vq_wait(&self->d.vq[0], count, 3 * VB_TIMEOUT_MS));
	for (i = 0; i < count; i++)
		ASSERT_EQ(VIRTIO_BLK_S_OK, r[i].status) TH_LOG("request %u", i);
	/*
	 * The page cache: the guest's flush writes its writes back, and
	 * reads reach the disk once the clean pages are dropped.
	 */
	if (self->buffered && type == VIRTIO_BLK_T_OUT)
		ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(&self->d.vq[0],
						 VIRTIO_BLK_T_FLUSH, 0, 0, 0,
						 0, NULL));
}

/* Before the guest reads: what it wrote is on the disk, not in memory. */
static void cg_drop_caches(struct __test_metadata *_metadata,
			   FIXTURE_DATA(cg) *self)
{
	if (!self->buffered)
		return;
	ASSERT_EQ(0, vb_write_text("/proc/sys/vm/drop_caches", "1"));
}

TEST_F(cg, worker_is_in_the_cgroup_of_the_owner)
{
	char name[32], want[512], got[512];
	pid_t tid = 0;

	cg_setup_device(_metadata, self);
	vb_worker_name(name, sizeof(name), getpid());
	ASSERT_EQ(1, vb_count_threads(name, &tid));
	ASSERT_LT(0, task_cgroup(0, want, sizeof(want)));
	ASSERT_LT(0, task_cgroup(tid, got, sizeof(got)));
	ASSERT_STREQ(want, got);
	ASSERT_NE(NULL, strstr(got, strrchr(self->cg[0], '/')));
}

TEST_F(cg, guest_io_is_counted_in_the_owner_cgroup_io_stat)
{
	struct io_stat s0, s1;

	cg_setup_device(_metadata, self);
	ASSERT_EQ(0, read_io_stat(self->cg[0], self->dev, &s0));
	cg_io(_metadata, self, VIRTIO_BLK_T_OUT, 2048, IO_COUNT);
	cg_drop_caches(_metadata, self);
	cg_io(_metadata, self, VIRTIO_BLK_T_IN, 2048, IO_COUNT);
	ASSERT_EQ(0, read_io_stat(self->cg[0], self->dev, &s1));
	ASSERT_LE(s0.wbytes + IO_COUNT * IO_LEN, s1.wbytes)
		TH_LOG("wbytes %llu -> %llu", s0.wbytes, s1.wbytes);
	/*
	 * drop_caches leaves a page now and then (one still in a per-CPU
	 * LRU batch): once 1018880 of the 1 MiB read back came from the
	 * disk.  Half is still nothing like a worker counted elsewhere.
	 */
	ASSERT_LE(s0.rbytes + (self->buffered ? IO_COUNT * IO_LEN / 2 :
			       IO_COUNT * IO_LEN), s1.rbytes)
		TH_LOG("rbytes %llu -> %llu", s0.rbytes, s1.rbytes);
	ASSERT_LT(s0.wios, s1.wios);
	ASSERT_LT(s0.rios, s1.rios);
}

TEST_F(cg, guest_io_stays_in_the_set_owner_cgroup_after_the_vmm_moves)
{
	struct io_stat a0, a1, b0, b1;

	cg_setup_device(_metadata, self);
	/* the VMM moves on; the worker stays where SET_OWNER put it */
	ASSERT_EQ(0, cg_enter(self->cg[1]));
	ASSERT_EQ(0, read_io_stat(self->cg[0], self->dev, &a0));
	ASSERT_EQ(0, read_io_stat(self->cg[1], self->dev, &b0));
	cg_io(_metadata, self, VIRTIO_BLK_T_OUT, 4096, IO_COUNT);
	cg_drop_caches(_metadata, self);
	cg_io(_metadata, self, VIRTIO_BLK_T_IN, 4096, IO_COUNT);
	ASSERT_EQ(0, read_io_stat(self->cg[0], self->dev, &a1));
	ASSERT_EQ(0, read_io_stat(self->cg[1], self->dev, &b1));
	ASSERT_LE(a0.wbytes + IO_COUNT * IO_LEN, a1.wbytes);
	ASSERT_LE(a0.rbytes + IO_COUNT * IO_LEN, a1.rbytes);
	ASSERT_EQ(b0.wbytes, b1.wbytes);
	ASSERT_EQ(b0.rbytes, b1.rbytes);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

TEST_F(cg, io_max_of_the_owner_cgroup_limits_guest_writes)
{
	char path[400], limit[96];
	long long t0, ms;

	snprintf(path, sizeof(path), "%s/io.max", self->cg[0]);
	if (access(path, F_OK))
		SKIP(return, "no io.max (CONFIG_BLK_DEV_THROTTLING off)");
	/*
	 * 1 MiB/s: the 2 MiB below take about 2 s, unthrottled a few ms (for
	 * a file, the 2 MiB of writes and the flush that writes them back).
	 */
	snprintf(limit, sizeof(limit), "%u:%u wbps=1048576", major(self->dev),
		 minor(self->dev));
	ASSERT_EQ(0, vb_write_text(path, limit));
	cg_setup_device(_metadata, self);
	t0 = now_ms();
	cg_io(_metadata, self, VIRTIO_BLK_T_OUT, 0, 8);
	ms = now_ms() - t0;
	TH_LOG("2 MiB at wbps=1 MiB/s took %lld ms", ms);
	ASSERT_LE(1000, ms);
	/* reads are not limited, and detaching drains without a hang */
	cg_io(_metadata, self, VIRTIO_BLK_T_IN, 0, IO_COUNT);
	ASSERT_EQ(0, vb_set_backend(&self->d, -1));
}

static long long cg_memory_current(const char *cg)
{
	char path[400], val[64];

	snprintf(path, sizeof(path), "%s/memory.current", cg);
	if (vb_read_text(path, val, sizeof(val)) <= 0)
		return -1;
	return strtoll(val, NULL, 10);
}

/*
 * The worker allocates each request's arrays with __GFP_ACCOUNT, which a
 * kthread charges to nobody unless it names a memcg: with CG_QUEUES *
 * CG_REQS 1 MiB reads held for 4 s by a slow null_blk, the owner's
 * memory.current must hold their page and bio_vec arrays (6 KiB each).
 * Their 102,400 pinned pages need more than the default pin budget.  (With
 * 2 s, a suite VM beside two others under TCG once had the first requests
 * complete before the worker had taken the last ones; null_blk's request
 * timeout, 5 s, fails a request held longer.)
 */
#define CG_QUEUES	4
#define CG_REQS		100

/*
 * 400 requests held 4 s each by null_blk: on the sanitizer kernel under
 * TCG, with the machine busy, more than the harness's default 30 s.
 */
TEST_F_TIMEOUT(cg, worker_allocations_are_charged_to_the_owner_memcg, 120)
{
	static const char *const attrs[] = {
		"irqmode=2", "completion_nsec=4000000000",
		"hw_queue_depth=1024", "max_sectors=2048", NULL,
	};
	static struct vb_req r[CG_QUEUES][CG_REQS];
	struct vb_opts o = { .nvqs = CG_QUEUES, .num = 128 };
	struct vb_backend slow = { .kind = NULL };
	long long before, during;
	const char *why = "";
	unsigned int q, i;
	uint64_t data;
	int ret;

	if (!self->memcg)
		SKIP(return, "no cgroup2 memory controller");
	if (strcmp(variant->kind, "nullb"))
		SKIP(return, "runs once, in the nullb variant");
	ret = vb_nullb_create_attrs(&slow, DISK_SIZE, attrs, 0, &why);
	if (ret < 0)
		SKIP(return, "slow null_blk: %s (%s)", why, strerror(-ret));
	o.backend = slow.fd;
	ASSERT_LT(0, vb_read_text(CG_PINS_PARAM, self->old_pins,
				  sizeof(self->old_pins)));
	ASSERT_EQ(0, vb_write_text(CG_PINS_PARAM, "524288"));
	ret = vb_dev_setup(&self->d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	data = vb_alloc_data(&self->d.mem, 1 << 20);
	ASSERT_NE(0, data);
	/* Guest memory the pins would fault in is the owner's already. */
	ASSERT_EQ(0, vb_fill(&self->d.mem, data, 0x5a, 1 << 20));
	before = cg_memory_current(self->cg[0]);
	ASSERT_LT(0, before);
	for (q = 0; q < CG_QUEUES; q++) {
		for (i = 0; i < CG_REQS; i++) {
			r[q][i] = (struct vb_req){
				.type = VIRTIO_BLK_T_IN, .sector = 0,
				.data_gpa = data, .data_len = 1 << 20,
				.layout = VB_L_INDIRECT,
			};
			ASSERT_EQ(0, vb_req_post(&self->d.vq[q], &r[q][i]));
		}
		vb_vq_kick(&self->d.vq[q]);
	}
	for (i = 0; i < VB_TIMEOUT_MS / 10; i++) {
		if (vb_fdinfo_vq_sum(self->d.fd, "inflight") ==
		    CG_QUEUES * CG_REQS)
			break;
		usleep(10000);
	}
	ASSERT_EQ(CG_QUEUES * CG_REQS, vb_fdinfo_vq_sum(self->d.fd, "inflight"));
	during = cg_memory_current(self->cg[0]);
	TH_LOG("memory.current %lld -> %lld with %d requests in flight",
	       before, during, CG_QUEUES * CG_REQS);
	ASSERT_LE(before + (3 << 19), during);
	for (q = 0; q < CG_QUEUES; q++) {
		ASSERT_EQ(0, vb_vq_wait(&self->d.vq[q], CG_REQS,
					3 * VB_TIMEOUT_MS));
		for (i = 0; i < CG_REQS; i++)
			ASSERT_EQ(VIRTIO_BLK_S_OK, r[q][i].status);
	}
	vb_dev_teardown(&self->d);
	vb_backend_destroy(&slow);
}

/*
 * libvirt runs QEMU as a user of its own in a cgroup with the cpuset
 * controller on.  Moving a task into such a cgroup checks that the mover
 * may set the task's scheduling (cpuset_can_attach() ->
 * security_task_setscheduler()), which an unprivileged owner may not do
 * to a kthread: the worker must join the owner's cgroups itself, as
 * vhost's kthreads did.  The child drops to nobody with the device open
 * (as libvirt's QEMU with an fd it was given, or a node of group kvm),
 * joins a fresh cpuset cgroup and sets the owner: it must get a worker,
 * and the worker must be in that cgroup.  Exits: 0 done, 10 + errno of
 * SET_OWNER, 2 no worker, 3 the worker elsewhere, 4 setup.
 */
static int unpriv_owner(int fd, const char *cg)
{
	char name[32], want[512], got[512];
	pid_t tid = 0;

	if (cg_enter(cg) || setresgid(65534, 65534, 65534) ||
	    setresuid(65534, 65534, 65534))
		return 4;
	if (ioctl(fd, VHOST_SET_OWNER, NULL))
		return 10 + errno;
	vb_worker_name(name, sizeof(name), getpid());
	if (vb_count_threads(name, &tid) != 1)
		return 2;
	if (task_cgroup(0, want, sizeof(want)) <= 0 ||
	    task_cgroup(tid, got, sizeof(got)) <= 0 || strcmp(want, got))
		return 3;
	return 0;
}

TEST(unprivileged_owner_in_a_cpuset_cgroup_gets_its_worker_there)
{
	char root[256], path[400], ctl[256], cg[320];
	const char *why = "";
	bool mounted = false;
	int fd, status, i;
	pid_t pid;

	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	if (cgroup2_root(root, sizeof(root), &mounted, &why))
		SKIP(return, "%s", why);
	snprintf(path, sizeof(path), "%s/cgroup.controllers", root);
	if (vb_read_text(path, ctl, sizeof(ctl)) < 0 || !strstr(ctl, "cpuset"))
		SKIP(return, "the cgroup2 cpuset controller is not available");
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	if (vb_write_text(path, "+cpuset"))
		SKIP(return, "cannot enable the cpuset controller in %s", path);
	fd = vb_open();
	ASSERT_LE(0, fd);
	snprintf(cg, sizeof(cg), "%s/vbt-%d-cpuset", root, getpid());
	ASSERT_EQ(0, mkdir(cg, 0755)) TH_LOG("mkdir %s: %s", cg, strerror(errno));
	pid = fork();
	if (!pid)
		_exit(unpriv_owner(fd, cg));
	if (pid > 0 && waitpid(pid, &status, 0) != pid)
		pid = -1;
	close(fd);
	for (i = 0; i < 200 && rmdir(cg) && errno != ENOENT; i++)
		usleep(10000);
	if (mounted) {
		umount2(root, MNT_DETACH);
		rmdir(root);
	}
	ASSERT_LT(0, pid) TH_LOG("fork or waitpid: %s", strerror(errno));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("%s", WEXITSTATUS(status) >= 10 ?
		       strerror(WEXITSTATUS(status) - 10) :
		       WEXITSTATUS(status) == 2 ? "no worker" :
		       WEXITSTATUS(status) == 3 ? "the worker is elsewhere" :
		       "cannot join the cgroup or drop to nobody");
}

/* -------------------------------------------------- worker lifetime */

FIXTURE(life) {
	int fd, fd2;
	char name[32];
};

FIXTURE_SETUP(life)
{
	self->fd = -1;
	self->fd2 = -1;
	if (access(VB_DEV_PATH, F_OK))
		SKIP(return, "%s missing: vhost_blk not loaded", VB_DEV_PATH);
	vb_worker_name(self->name, sizeof(self->name), getpid());
	self->fd = vb_open();
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(life)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->fd2 >= 0)
		close(self->fd2);
}

TEST_F(life, no_worker_before_set_owner)
{
	ASSERT_EQ(0, vb_count_threads(self->name, NULL));
}

TEST_F(life, set_owner_starts_one_kthread_named_after_the_owner)
{
	pid_t tid = 0;

	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(1, vb_count_threads(self->name, &tid));
	ASSERT_NE(getpid(), tid);
	ASSERT_TRUE(task_flags(tid) & PF_KTHREAD)
		TH_LOG("thread %d is not a kernel thread", tid);
}

TEST_F(life, failed_second_set_owner_starts_no_second_worker)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(-1, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(EBUSY, errno);
	ASSERT_EQ(1, vb_count_threads(self->name, NULL));
}

TEST_F(life, each_device_has_its_own_worker)
{
	self->fd2 = vb_open();
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, ioctl(self->fd2, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(2, vb_count_threads(self->name, NULL));
	close(self->fd2);
	self->fd2 = -1;
	ASSERT_EQ(1, vb_wait_threads(self->name, 1, NULL));
}

TEST_F(life, close_stops_the_worker)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(1, vb_count_threads(self->name, NULL));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, vb_wait_threads(self->name, 0, NULL));
}

TEST_F(life, close_of_a_serving_device_stops_the_worker)
{
	struct vb_backend b;
	struct vb_opts o = { .num = 16 };
	const char *why = "";
	struct vb_dev d;
	int ret;

	close(self->fd);
	self->fd = -1;
	ret = vb_backend_create(&b, "tmpfs", 1 << 20, 0, &why);
	if (ret < 0)
		SKIP(return, "%s", why);
	o.backend = b.fd;
	ret = vb_dev_setup(&d, &o);
	ASSERT_EQ(0, ret) TH_LOG("device setup: %s", strerror(-ret));
	ASSERT_EQ(VIRTIO_BLK_S_OK, vb_io(&d.vq[0], VIRTIO_BLK_T_FLUSH, 0, 0,
					 0, 0, NULL));
	ASSERT_EQ(1, vb_count_threads(self->name, NULL));
	vb_dev_teardown(&d);
	vb_backend_destroy(&b);
	ASSERT_EQ(0, vb_wait_threads(self->name, 0, NULL));
}

TEST_F(life, reset_owner_stops_the_worker_and_set_owner_restarts_it)
{
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_RESET_OWNER, NULL));
	ASSERT_EQ(0, vb_wait_threads(self->name, 0, NULL));
	ASSERT_EQ(0, ioctl(self->fd, VHOST_SET_OWNER, NULL));
	ASSERT_EQ(1, vb_count_threads(self->name, NULL));
}

static int child_set_owner(int fd)
{
	char name[32];

	if (ioctl(fd, VHOST_SET_OWNER, NULL))
		return 1;
	vb_worker_name(name, sizeof(name), getpid());
	return vb_count_threads(name, NULL) == 1 ? 0 : 2;
}

TEST_F(life, worker_is_named_after_the_process_that_set_the_owner)
{
	/* a forked child owns the device; the parent's name is not used */
	ASSERT_EQ(0, vb_run_in_child(child_set_owner, self->fd));
	ASSERT_EQ(0, vb_count_threads(self->name, NULL));
}

TEST_HARNESS_MAIN
