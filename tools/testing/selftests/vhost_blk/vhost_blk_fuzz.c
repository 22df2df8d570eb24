// SPDX-License-Identifier: GPL-2.0
/*
 * vhost_blk_fuzz - a concurrent, coverage-guided fuzzer for /dev/vhost-blk.
 *
 * One case is one open device driven by six threads at once:
 *
 *   vmm      every ioctl the module accepts, and some it must refuse:
 *            features, memory tables (supersets with aliases, invalid and
 *            overlapping ones, reduced ones), backend swaps and detach,
 *            queue stop and restart, RESET_OWNER, close and reopen, the
 *            worker ioctls, busy polling, write-cache mode, serials;
 *   vmm2     the same, but only what leaves the oracle queue able to work;
 *   guest1   random descriptor tables, chains and indirect tables on vq 1,
 *   mutator  which rewrites vq 1's descriptors, indirect tables, headers
 *            and avail indices while the worker reads them;
 *   guest2   random tables with well-formed requests among them on vq 2,
 *            whose status bytes must read OK, IOERR or UNSUPP;
 *   oracle   well-formed writes, reads, write-zeroes, flushes and GET_ID
 *            on vq 0 over the top 4 MiB of the backend, which nothing
 *            else writes: data read back must be what was written.
 *
 * A vmm operation that would break the oracle (another backend, detach,
 * other features, a reduced table, RESET_OWNER, close) takes the case's
 * lock for writing, pauses the oracle, and restores the device before it
 * lets go.  The other oracles: every ioctl error is one that
 * Documentation/virt/vhost-blk.rst lists for that ioctl (fz_ioctls[] is
 * that list, the only copy), calls that must fail do fail, and close()
 * of the device returns within FZ_CLOSE_LIMIT_S seconds after the case.
 * The VM runner fails the run on any KASAN, lockdep, WARN or hung-task
 * report in the guest kernel log.
 *
 * Replay: every case is a function of its input, INPUT_LEN bytes, one
 * stream per thread (a stream that runs out continues from a PRNG seeded
 * by the input); an input is a corpus entry mutated or random bytes, both
 * derived from the 64-bit run seed and the case number.  A failure prints
 * the command that runs the same input again; the interleaving of the
 * threads is the scheduler's, so give it --repeat.
 *
 * Coverage: with /sys/kernel/debug/kcov every thread that makes system
 * calls traces its own PCs (kcov is per task) and keeps those inside
 * vhost_blk's .text; an input that reached new PCs is saved to the
 * corpus directory.  The case's main thread, which sets the device up,
 * traces remotely instead (KCOV_REMOTE_ENABLE with a common handle): the
 * module hands that handle, taken at SET_OWNER, to its workers, whose
 * PCs then land in that thread's buffer.  A device a VMM thread sets up
 * again (RESET_OWNER, reopen) has no handle: its workers go untraced.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcov.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vhost_blk_lib.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
/* Flags the threads share, as the kernel's READ_ONCE()/WRITE_ONCE(). */
#define FZ_READ(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define FZ_WRITE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define MiB		(1ULL << 20)
#define fallthrough	__attribute__((__fallthrough__))

#define STREAMS		6
#define STREAM_LEN	128
#define INPUT_LEN	(STREAMS * STREAM_LEN)
enum { S_VMM, S_VMM2, S_GUEST1, S_MUTATOR, S_GUEST2, S_ORACLE };

#define NQ		3	/* vq 0 oracle, 1 mutated, 2 random */
#define NUM		32
#define DISK_SIZE	(32 * MiB)
/* The oracle's span at the top of the backend, and the gap below it. */
#define ORACLE_SPAN	(4 * MiB)
#define ORACLE_GAP	(9 * MiB)	/* > VHOST_BLK_MAX_REQUEST_BYTES */
#define AREA		(256 * 1024)
#define CHUNK		4096
#define HDR_CHUNKS	16
#define WF_FIRST	24	/* vq 2: descriptors of well-formed requests */
#define ORACLE_MAX	(64 * 1024)
#define FZ_CLOSE_LIMIT_S 30
/* Any single case longer than this is a hang. */
#define FZ_CASE_LIMIT_S	180
#define COVER_SIZE	(256 << 10)
#define COV_BITS	17
#define MAX_CORPUS	4096
#define MAX_BACKENDS	12
/* Dirty-log bits for guest-physical addresses up to the aliases' end. */
#define FZ_LOG_END	(0x200000000ULL + 8 * MiB)
#define FZ_LOG_BYTES	(FZ_LOG_END / 4096 / 8)

/* ------------------------------------------------------------ errnos */

/*
 * The errors Documentation/virt/vhost-blk.rst lists for each ioctl; EPERM,
 * EFAULT and ENOTTY are common to all.  This table is the fuzzer's only
 * copy: keep it in step with the document.
 */
struct fz_ioctl {
	unsigned long cmd;
	const char *name;
	int errs[8];
};

static const struct fz_ioctl fz_ioctls[] = {
	{ VHOST_SET_OWNER, "VHOST_SET_OWNER", { EBUSY, ENOMEM, EINTR, EINVAL } },
	{ VHOST_RESET_OWNER, "VHOST_RESET_OWNER", { 0 } },
	{ VHOST_GET_FEATURES, "VHOST_GET_FEATURES", { 0 } },
	{ VHOST_SET_FEATURES, "VHOST_SET_FEATURES", { EOPNOTSUPP } },
	{ VHOST_GET_BACKEND_FEATURES, "VHOST_GET_BACKEND_FEATURES", { 0 } },
	{ VHOST_SET_BACKEND_FEATURES, "VHOST_SET_BACKEND_FEATURES",
	  { EOPNOTSUPP } },
	{ VHOST_SET_MEM_TABLE, "VHOST_SET_MEM_TABLE",
	  { E2BIG, EINVAL, ENOMEM } },
	{ VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM",
	  { ENOBUFS, EINVAL, EBUSY, ENOMEM, EINTR } },
	{ VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR",
	  { ENOBUFS, EOPNOTSUPP, EINVAL, EBUSY, EINTR } },
	{ VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE",
	  { ENOBUFS, EINVAL, EBUSY, EINTR } },
	{ VHOST_GET_VRING_BASE, "VHOST_GET_VRING_BASE", { ENOBUFS, EINTR } },
	{ VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK",
	  { ENOBUFS, EBADF, EINVAL, EINTR } },
	{ VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL",
	  { ENOBUFS, EBADF, EINVAL } },
	{ VHOST_SET_VRING_ERR, "VHOST_SET_VRING_ERR",
	  { ENOBUFS, EBADF, EINVAL } },
	{ VHOST_SET_VRING_BUSYLOOP_TIMEOUT, "VHOST_SET_VRING_BUSYLOOP_TIMEOUT",
	  { ENOBUFS, EINVAL } },
	{ VHOST_GET_VRING_BUSYLOOP_TIMEOUT, "VHOST_GET_VRING_BUSYLOOP_TIMEOUT",
	  { ENOBUFS } },
	{ VHOST_NEW_WORKER, "VHOST_NEW_WORKER", { ENOSPC, ENOMEM, EINTR } },
	{ VHOST_FREE_WORKER, "VHOST_FREE_WORKER", { ENODEV, EBUSY } },
	{ VHOST_ATTACH_VRING_WORKER, "VHOST_ATTACH_VRING_WORKER",
	  { ENOBUFS, ENODEV } },
	{ VHOST_GET_VRING_WORKER, "VHOST_GET_VRING_WORKER",
	  { ENOBUFS, EINVAL } },
	{ VHOST_SET_LOG_BASE, "VHOST_SET_LOG_BASE", { 0 } },
	{ VHOST_SET_LOG_FD, "VHOST_SET_LOG_FD", { EBADF, EINVAL } },
	{ VHOST_BLK_SET_BACKEND, "VHOST_BLK_SET_BACKEND",
	  { EBADF, EINVAL, ENOMEM, EINTR, EIO } },
	{ VHOST_BLK_SET_SERIAL, "VHOST_BLK_SET_SERIAL", { 0 } },
	{ VHOST_BLK_SET_WRITEBACK, "VHOST_BLK_SET_WRITEBACK", { EINVAL } },
	{ VHOST_BLK_GET_WRITEBACK, "VHOST_BLK_GET_WRITEBACK", { 0 } },
	/*
	 * Known, so never sent as an unknown ioctl; not fuzzed either: a
	 * small seg_max would fail the oracle queue's requests (and limits
	 * its discards).
	 */
	{ VHOST_BLK_SET_SEG_MAX, "VHOST_BLK_SET_SEG_MAX", { EINVAL } },
	{ VHOST_BLK_SET_LIMITS, "VHOST_BLK_SET_LIMITS", { EINVAL } },
};

static const int fz_common_errs[] = { EPERM, EFAULT, ENOTTY };

static const struct fz_ioctl *fz_ioctl_find(unsigned long cmd)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fz_ioctls); i++)
		if (fz_ioctls[i].cmd == cmd)
			return &fz_ioctls[i];
	return NULL;
}

static bool fz_errno_allowed(unsigned long cmd, int err)
{
	const struct fz_ioctl *io = fz_ioctl_find(cmd);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fz_common_errs); i++)
		if (err == fz_common_errs[i])
			return true;
	/* Not one of ours: ENOTTY (above) is the only answer. */
	if (!io)
		return false;
	for (i = 0; i < ARRAY_SIZE(io->errs) && io->errs[i]; i++)
		if (err == io->errs[i])
			return true;
	return false;
}

static const struct {
	int err;
	const char *name;
} fz_errnames[] = {
	{ EPERM, "EPERM" }, { EFAULT, "EFAULT" }, { ENOTTY, "ENOTTY" },
	{ EBUSY, "EBUSY" }, { ENOMEM, "ENOMEM" }, { EINTR, "EINTR" },
	{ EINVAL, "EINVAL" }, { EOPNOTSUPP, "EOPNOTSUPP" }, { E2BIG, "E2BIG" },
	{ ENOBUFS, "ENOBUFS" }, { EBADF, "EBADF" }, { ENOSPC, "ENOSPC" },
	{ ENODEV, "ENODEV" }, { EIO, "EIO" },
};

static const char *fz_errname(int err)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(fz_errnames); i++)
		if (fz_errnames[i].err == err)
			return fz_errnames[i].name;
	return NULL;
}

/* Whether @word is in @text as a word of its own. */
static bool fz_has_word(const char *text, size_t len, const char *word)
{
	size_t n = strlen(word);
	const char *p = text;

	while ((p = memmem(p, len - (p - text), word, n))) {
		bool l = p == text || !(p[-1] == '_' || isalnum((unsigned char)p[-1]));
		bool r = !(p[n] == '_' || isalnum((unsigned char)p[n]));

		if (l && r)
			return true;
		p += n;
	}
	return false;
}

/* Whether the line at @p underlines a heading: "----" or "====" alone. */
static bool fz_underline(const char *p)
{
	const char *q = p;

	if (*p != '-' && *p != '=')
		return false;
	while (*q == *p)
		q++;
	return q - p >= 3 && (*q == '\n' || !*q);
}

/*
 * Whether the section heading @h (a line) names ioctl @name: "A / B",
 * or "VHOST_SET_VRING_KICK / CALL / ERR" with the prefix of the first.
 */
static bool fz_heading_names(const char *h, size_t len, const char *name)
{
	char line[256], prefix[256] = "", part[300], *tok, *save;
	char *u;

	snprintf(line, sizeof(line), "%.*s", (int)len, h);
	for (tok = strtok_r(line, " /", &save); tok;
	     tok = strtok_r(NULL, " /", &save)) {
		if (!prefix[0]) {
			snprintf(prefix, sizeof(prefix), "%s", tok);
			u = strrchr(prefix, '_');
			if (u)
				u[1] = 0;
		}
		if (!strncmp(tok, "VHOST_", 6))
			snprintf(part, sizeof(part), "%s", tok);
		else
			snprintf(part, sizeof(part), "%s%s", prefix, tok);
		if (!strcmp(part, name))
			return true;
	}
	return false;
}

/*
 * Check fz_ioctls[] against the document: each errno must be named in
 * the section of its ioctl or among the errors common to all ioctls.
 * Returns the number of errnos the document does not list.
 */
static int fz_check_doc(const char *path)
{
	static char doc[256 * 1024];
	const char *common, *first, *p, *sec = NULL, *end;
	unsigned int i, j, bad = 0;
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	len = fd < 0 ? -1 : read(fd, doc, sizeof(doc) - 1);
	if (fd >= 0)
		close(fd);
	if (len <= 0) {
		printf("# cannot read %s\n", path);
		return -1;
	}
	doc[len] = 0;
	common = strstr(doc, "Errors common to all ioctls");
	first = common ? strstr(common, "\nVHOST_") : NULL;
	if (!first) {
		printf("# %s: no table of common errors\n", path);
		return -1;
	}
	for (i = 0; i < ARRAY_SIZE(fz_ioctls); i++) {
		const struct fz_ioctl *io = &fz_ioctls[i];

		/* the heading: a line followed by a line of dashes */
		sec = NULL;
		for (p = first; p && *p; p = strchr(p + 1, '\n')) {
			const char *h = p + 1, *nl = strchr(h, '\n');

			if (!nl || *(nl + 1) != '-' || !fz_underline(nl + 1))
				continue;
			if (fz_heading_names(h, nl - h, io->name)) {
				sec = h;
				break;
			}
		}
		if (!sec) {
			printf("# %s: no section for %s\n", path, io->name);
			bad++;
			continue;
		}
		/* up to the next heading of any level */
		for (end = strchr(sec, '\n') + 1; (end = strchr(end, '\n'));
		     end++)
			if (fz_underline(end + 1))
				break;
		end = end ? end : doc + len;
		for (j = 0; j < ARRAY_SIZE(io->errs) && io->errs[j]; j++) {
			const char *name = fz_errname(io->errs[j]);

			if (name && (fz_has_word(sec, end - sec, name) ||
				     fz_has_word(common, first - common, name)))
				continue;
			printf("# %s: %s lists %s, the document does not\n",
			       path, io->name, name ? name : "an errno");
			bad++;
		}
	}
	for (j = 0; j < ARRAY_SIZE(fz_common_errs); j++) {
		const char *name = fz_errname(fz_common_errs[j]);

		if (!fz_has_word(common, first - common, name)) {
			printf("# %s: %s is not among the common errors\n",
			       path, name);
			bad++;
		}
	}
	return bad;
}

/* ------------------------------------------------------------- random */

struct fz_src {
	const uint8_t *p;
	size_t len, pos;
	uint64_t rng;
};

static uint64_t fz_mix(uint64_t x)
{
	/* splitmix64 */
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static uint64_t fz_hash(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

/* A choice in [0, n): the input's next byte(s), then the PRNG. */
static uint64_t pick(struct fz_src *s, uint64_t n)
{
	uint64_t v = 0;
	unsigned int i, bytes = n == 0 ? 8 : n <= 256 ? 1 : n <= 65536 ? 2 : 4;

	if (n == 0 || n > 1ULL << 32)
		bytes = 8;
	if (s->pos + bytes <= s->len) {
		for (i = 0; i < bytes; i++)
			v = v << 8 | s->p[s->pos++];
	} else {
		s->pos = s->len;
		v = vb_rand(&s->rng);
	}
	return n ? v % n : v;
}

static bool chance(struct fz_src *s, unsigned int one_in)
{
	return pick(s, one_in) == 0;
}

/* -------------------------------------------------------------- state */

struct fz_backend {
	char kind[16];
	char path[256];
	int fd;			/* O_RDWR, kept open for the whole run */
	uint64_t size;
	bool all_err;		/* dm-error: every I/O fails */
	bool is_file;
	int oflags;		/* O_DIRECT for *-direct, on every open */
	struct vb_backend b;
	struct vb_dm dm;
	struct vb_backend lower; /* under dm-delay */
};

static struct fz_backend fz_be[MAX_BACKENDS];
static unsigned int fz_nbe;
static char fz_be_list[256] = "tmpfs,ext4,ext4-direct,nullb,brd,loop,dm-error,dm-delay";

struct fz_case {
	uint8_t input[INPUT_LEN];
	struct fz_backend *be;
	struct vb_dev d;
	struct vb_opts o;
	uint64_t ring_lo;
	uint64_t area[2];	/* guest-physical fuzz areas */
	uint8_t *area_hva[2];
	uint64_t obuf;		/* oracle data buffer */
	pthread_rwlock_t lock;	/* write: the oracle is paused */
	int stop;		/* FZ_READ/FZ_WRITE */
	int failed;		/* under why_lock */
	uint64_t devf;		/* VHOST_GET_FEATURES */
	uint8_t *logbits;	/* a dirty log for every address we use */
	uint8_t *logsmall;	/* one page: too small for the table */
	int logfd;
	/*
	 * A vmm operation that may move vq 2's indices holds q2_busy and
	 * bumps q2_gen as it starts and ends: guest2 judges a round only if
	 * no such operation overlapped it or the round before.
	 */
	unsigned int q2_busy, q2_gen;
	/* fz_repair()s of vq 2 started, and done: the vmm2 thread's only */
	unsigned int q2_repairs_started, q2_repairs;
	int broken[NQ];		/* the guest saw the error eventfd */
	char why[512];
	pthread_mutex_t why_lock;
	unsigned long ops, oracle_ios, wf_checked, restores;
	unsigned int new_pcs;
};

static bool fz_verbose;

static void fz_fail(struct fz_case *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->why_lock);
	if (!c->failed) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
		c->failed = 1;
	}
	FZ_WRITE(c->stop, 1);
	pthread_mutex_unlock(&c->why_lock);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* --------------------------------------------------------------- kcov */

static bool fz_kcov;
static uint64_t fz_text_lo, fz_text_hi;
static uint64_t *fz_cov_set;	/* open addressing, 0 = empty */
static unsigned int fz_cov_count;
static pthread_mutex_t fz_cov_lock = PTHREAD_MUTEX_INITIALIZER;

struct fz_kcov {
	int fd;
	unsigned long *cover;
};

/*
 * kcov reports PCs less kaslr_offset() (canonicalize_ip()): the distance
 * of _text from where x86-64 links it, __START_KERNEL.
 */
static uint64_t fz_kaslr_offset(void)
{
	const uint64_t start_kernel = 0xffffffff81000000ULL;
	char line[256], name[128], type;
	unsigned long long a;
	uint64_t off = 0;
	FILE *f = fopen("/proc/kallsyms", "r");

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %127s", &a, &type, name) == 3 &&
		    !strcmp(name, "_text")) {
			if (a > start_kernel)
				off = a - start_kernel;
			break;
		}
	}
	if (f)
		fclose(f);
	return off;
}

/* vhost_blk's .text: its start, up to the next section of the module. */
static const char *fz_kcov_probe(void)
{
	char buf[64], path[512];
	uint64_t a, lo = 0, hi = ~0ULL;
	struct dirent *e;
	DIR *dir;
	FILE *f;
	int fd;

	if (access("/sys/kernel/debug/kcov", R_OK | W_OK))
		return "no /sys/kernel/debug/kcov (kernel without CONFIG_KCOV)";
	if (vb_read_text("/sys/module/vhost_blk/sections/.text", buf,
			 sizeof(buf)) <= 0)
		return "cannot read /sys/module/vhost_blk/sections/.text";
	lo = strtoull(buf, NULL, 16);
	dir = opendir("/sys/module/vhost_blk/sections");
	while (dir && (e = readdir(dir))) {
		/* "." and "..", and the module's other code */
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    strstr(e->d_name, "text"))
			continue;
		snprintf(path, sizeof(path), "/sys/module/vhost_blk/sections/%s",
			 e->d_name);
		if (vb_read_text(path, buf, sizeof(buf)) <= 0)
			continue;
		a = strtoull(buf, NULL, 16);
		if (a > lo && a < hi)
			hi = a;
	}
	if (dir)
		closedir(dir);
	/* and never past the module's size in /proc/modules */
	f = fopen("/proc/modules", "r");
	while (f && fgets(path, sizeof(path), f)) {
		unsigned long size;

		if (sscanf(path, "vhost_blk %lu", &size) == 1 &&
		    lo + size < hi)
			hi = lo + size;
	}
	if (f)
		fclose(f);
	if (!lo || hi == ~0ULL)
		return "cannot find the module's .text range";
	fd = open("/sys/kernel/debug/kcov", O_RDWR);
	if (fd < 0)
		return "cannot open /sys/kernel/debug/kcov";
	close(fd);
	fz_text_lo = lo - fz_kaslr_offset();
	fz_text_hi = hi - fz_kaslr_offset();
	fz_cov_set = calloc(1u << COV_BITS, sizeof(*fz_cov_set));
	return fz_cov_set ? NULL : "out of memory";
}

/*
 * Trace the calling thread: its own calls, or with @remote the sections
 * of the module's workers for a device this thread takes with SET_OWNER
 * (kcov's common handle, one per process: cases run one at a time), not
 * its own calls.
 */
static void fz_kcov_open(struct fz_kcov *k, bool remote)
{
	struct kcov_remote_arg arg = {
		.trace_mode = KCOV_TRACE_PC,
		.area_size = COVER_SIZE,
		.common_handle = kcov_remote_handle(KCOV_SUBSYSTEM_COMMON,
						    getpid() & KCOV_INSTANCE_MASK),
	};

	k->fd = -1;
	k->cover = NULL;
	if (!fz_kcov)
		return;
	k->fd = open("/sys/kernel/debug/kcov", O_RDWR | O_CLOEXEC);
	if (k->fd < 0)
		return;
	if (ioctl(k->fd, KCOV_INIT_TRACE, COVER_SIZE))
		goto err;
	k->cover = mmap(NULL, COVER_SIZE * sizeof(unsigned long),
			PROT_READ | PROT_WRITE, MAP_SHARED, k->fd, 0);
	if (k->cover == MAP_FAILED)
		goto err;
	if (remote ? ioctl(k->fd, KCOV_REMOTE_ENABLE, &arg) :
		     ioctl(k->fd, KCOV_ENABLE, KCOV_TRACE_PC)) {
		munmap(k->cover, COVER_SIZE * sizeof(unsigned long));
		goto err;
	}
	__atomic_store_n(&k->cover[0], 0, __ATOMIC_RELAXED);
	return;
err:
	k->cover = NULL;
	close(k->fd);
	k->fd = -1;
}

static void fz_kcov_start(struct fz_kcov *k)
{
	fz_kcov_open(k, false);
}

static void fz_kcov_remote_start(struct fz_kcov *k)
{
	fz_kcov_open(k, true);
}

/* Move what the thread traced since the last call into the global set. */
static void fz_kcov_collect(struct fz_case *c, struct fz_kcov *k)
{
	unsigned long n, i;
	unsigned int fresh = 0;

	if (!k->cover)
		return;
	n = __atomic_load_n(&k->cover[0], __ATOMIC_RELAXED);
	if (n >= COVER_SIZE)
		n = COVER_SIZE - 1;
	pthread_mutex_lock(&fz_cov_lock);
	for (i = 1; i <= n; i++) {
		uint64_t pc = k->cover[i], h;

		if (pc < fz_text_lo || pc >= fz_text_hi)
			continue;
		h = fz_mix(pc) & ((1u << COV_BITS) - 1);
		while (fz_cov_set[h] && fz_cov_set[h] != pc)
			h = (h + 1) & ((1u << COV_BITS) - 1);
		if (fz_cov_set[h])
			continue;
		if (fz_cov_count >= (1u << COV_BITS) / 2)
			break;
		fz_cov_set[h] = pc;
		fz_cov_count++;
		fresh++;
	}
	c->new_pcs += fresh;
	pthread_mutex_unlock(&fz_cov_lock);
	__atomic_store_n(&k->cover[0], 0, __ATOMIC_RELAXED);
}

static void fz_kcov_stop(struct fz_case *c, struct fz_kcov *k)
{
	if (!k->cover)
		return;
	fz_kcov_collect(c, k);
	ioctl(k->fd, KCOV_DISABLE, 0);
	munmap(k->cover, COVER_SIZE * sizeof(unsigned long));
	close(k->fd);
}

/* ------------------------------------------------------------- ioctls */

/* An ioctl whose errno must be a documented one; returns 0 or -errno. */
static int fz_ioctl(struct fz_case *c, int fd, unsigned long cmd, void *arg)
{
	const struct fz_ioctl *io;
	int ret, err;

	ret = ioctl(fd, cmd, arg);
	if (ret >= 0)
		return 0;
	err = errno;
	if (!fz_errno_allowed(cmd, err)) {
		io = fz_ioctl_find(cmd);
		fz_fail(c, "%s (%#lx) failed with %s (%d): not in vhost-blk.rst",
			io ? io->name : "an unknown ioctl", cmd,
			strerror(err), err);
	}
	return -err;
}

/* A call that must fail: with one of @errs. */
static void fz_must_fail(struct fz_case *c, int ret, const char *what,
			 int e1, int e2)
{
	if (ret == 0)
		fz_fail(c, "%s succeeded; it must fail", what);
	else if (-ret != e1 && -ret != e2)
		fz_fail(c, "%s failed with %s, expected %s", what,
			strerror(-ret), strerror(e1));
}

static void fz_sleep_us(unsigned int us)
{
	if (us)
		usleep(us);
}

/* ----------------------------------------------------- guest memory */

static uint64_t fz_canon_features(struct fz_case *c)
{
	return c->o.features;
}

/* The canonical table, plus @aliases regions that alias the fuzz areas. */
static struct vhost_memory *fz_table(struct fz_case *c, struct fz_src *s,
				     unsigned int extra)
{
	struct vhost_memory *t;
	unsigned int n = c->d.mem.nregions, i;

	t = calloc(1, sizeof(*t) + (n + extra + 70) * sizeof(t->regions[0]));
	if (!t)
		return NULL;
	for (i = 0; i < n; i++) {
		t->regions[i].guest_phys_addr = c->d.mem.r[i].gpa;
		t->regions[i].memory_size = c->d.mem.r[i].size;
		t->regions[i].userspace_addr = (uintptr_t)c->d.mem.r[i].hva;
	}
	for (i = 0; i < extra; i++) {
		unsigned int a = pick(s, 2);

		t->regions[n + i].guest_phys_addr = 0x200000000ULL + i * MiB;
		t->regions[n + i].memory_size = AREA;
		t->regions[n + i].userspace_addr = (uintptr_t)c->area_hva[a];
	}
	t->nregions = n + extra;
	/* any order: the module sorts */
	for (i = t->nregions; i > 1; i--) {
		unsigned int j = pick(s, i);
		struct vhost_memory_region r = t->regions[i - 1];

		t->regions[i - 1] = t->regions[j];
		t->regions[j] = r;
	}
	return t;
}

/* A random guest-physical address: a fuzz area, an alias, or nowhere. */
static uint64_t fz_addr(struct fz_case *c, struct fz_src *s)
{
	const struct vb_mem *m = &c->d.mem;
	uint64_t a = c->area[pick(s, 2)];

	switch (pick(s, 20)) {
	case 0:	/* below region 0 */
		return m->r[0].gpa - 1 - pick(s, 64);
	case 11: /* the top of region 0: buffers span into region 1, */
		 /* which lies below it in the owner's address space */
		return m->r[1].gpa - 1 - pick(s, 8192);
	case 1:	/* in the hole after region 1 */
		return m->r[1].gpa + m->r[1].size + pick(s, 4096);
	case 2:	/* just below the end of region 2: long buffers overrun */
		return m->r[2].gpa + m->r[2].size - 1 - pick(s, 4096);
	case 3:	/* wraps */
		return ~0ULL - pick(s, 4096);
	case 4:
		return pick(s, 0) | (1ULL << 63);
	case 5:	/* an alias of a fuzz area, if the table has one now */
		return 0x200000000ULL + pick(s, 4) * MiB + pick(s, AREA);
	case 6: case 7: case 8: case 9: case 10:
		return a + CHUNK * pick(s, HDR_CHUNKS);
	default:
		return a + pick(s, AREA);
	}
}

static uint32_t fz_len(struct fz_src *s)
{
	static const uint32_t lens[] = {
		0, 1, 7, 15, 16, 17, 511, 512, 513, 4096, 65536, 1 << 20,
		(8 << 20) + 512, 0xffffffff,
	};

	if (chance(s, 4))
		return pick(s, 8192);
	return lens[pick(s, ARRAY_SIZE(lens))];
}

static uint16_t fz_flags(struct fz_src *s)
{
	uint16_t f = 0;

	if (pick(s, 3))
		f |= VRING_DESC_F_NEXT;
	if (pick(s, 2))
		f |= VRING_DESC_F_WRITE;
	if (chance(s, 10))
		f |= VRING_DESC_F_INDIRECT;
	if (chance(s, 50))
		f |= 1u << pick(s, 16);
	return f;
}

static void fz_desc(struct fz_case *c, struct fz_src *s, struct vring_desc *d,
		    unsigned int n, bool in_table)
{
	d->addr = fz_addr(c, s);
	d->len = fz_len(s);
	d->flags = fz_flags(s);
	d->next = pick(s, 8) ? pick(s, n) : pick(s, 0x10000);
	if (!in_table && (d->flags & VRING_DESC_F_INDIRECT) && pick(s, 4)) {
		/* mostly a plausible indirect table in a table chunk */
		d->addr = c->area[pick(s, 2)] +
			  CHUNK * (HDR_CHUNKS + pick(s, AREA / CHUNK - HDR_CHUNKS));
		d->len = pick(s, 8) ? 16 * (1 + pick(s, 32)) : fz_len(s);
		if (pick(s, 2))
			d->flags &= ~VRING_DESC_F_NEXT;
	}
}

/* First sector of the oracle's span, and the end of the fuzzers'. */
static uint64_t fz_oracle_first(const struct fz_case *c)
{
	return (c->be->size - ORACLE_SPAN) / VB_SECTOR;
}

static uint64_t fz_fuzz_limit(const struct fz_case *c)
{
	return (c->be->size - ORACLE_SPAN - ORACLE_GAP) / VB_SECTOR;
}

/*
 * A header for the fuzz queues.  Its sector leaves the largest request
 * below the oracle's span, or is past the backend's end.
 */
static void fz_hdr(struct fz_case *c, struct fz_src *s,
		   struct virtio_blk_outhdr *h)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
		VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_DISCARD,
		VIRTIO_BLK_T_WRITE_ZEROES, 3, 5, 0xffffffff,
	};
	uint64_t limit = fz_fuzz_limit(c);

	h->type = types[pick(s, ARRAY_SIZE(types))];
	h->ioprio = chance(s, 8) ? pick(s, 0) : 0;
	switch (pick(s, 6)) {
	case 0:
		h->sector = limit - 1 - pick(s, 16);
		break;
	case 1:
		h->sector = c->be->size / VB_SECTOR + pick(s, 16);
		break;
	case 2:
		h->sector = ~0ULL - pick(s, 16);
		break;
	default:
		h->sector = pick(s, limit);
	}
}

/* Discard and write-zeroes payloads, below the fuzzers' limit too. */
static void fz_dwz(struct fz_case *c, struct fz_src *s,
		   struct virtio_blk_discard_write_zeroes *w)
{
	uint64_t limit = fz_fuzz_limit(c);

	w->sector = pick(s, 4) ? pick(s, limit - 64) : ~0ULL - pick(s, 64);
	w->num_sectors = pick(s, 4) ? pick(s, 64) : pick(s, 0);
	w->flags = pick(s, 4) ? pick(s, 2) : pick(s, 0);
	/* a range must not reach past the limit either */
	if (w->sector < limit && w->sector + w->num_sectors > limit)
		w->num_sectors = limit - w->sector;
}

/* Headers in the first chunks of each area, random tables in the rest. */
static void fz_fill_areas(struct fz_case *c, struct fz_src *s)
{
	unsigned int a, ch, i;

	for (a = 0; a < 2; a++) {
		uint8_t *p = c->area_hva[a];

		for (ch = 0; ch < HDR_CHUNKS; ch++) {
			struct virtio_blk_outhdr h;
			struct virtio_blk_discard_write_zeroes w[4];

			fz_hdr(c, s, &h);
			memcpy(p + ch * CHUNK, &h, sizeof(h));
			for (i = 0; i < 4; i++)
				fz_dwz(c, s, &w[i]);
			memcpy(p + ch * CHUNK + sizeof(h), w, sizeof(w));
		}
		for (ch = HDR_CHUNKS; ch < AREA / CHUNK; ch++) {
			struct vring_desc *t = (void *)(p + ch * CHUNK);

			for (i = 0; i < 32; i++)
				fz_desc(c, s, &t[i], 32, true);
		}
	}
}

/* ------------------------------------------------------ setup, restore */

/* RESET_OWNER (or a new open file) and QEMU's start sequence again. */
static int fz_restore(struct fz_case *c, bool reopen)
{
	struct vhost_vring_state st = { .index = 0 };
	int ret;

	if (reopen) {
		int64_t t0 = now_ms();

		close(c->d.fd);
		if (now_ms() - t0 > FZ_CLOSE_LIMIT_S * 1000)
			fz_fail(c, "close() took %lld ms", (long long)(now_ms() - t0));
		c->d.fd = vb_open();
		if (c->d.fd < 0) {
			fz_fail(c, "reopen: %s", strerror(-c->d.fd));
			return c->d.fd;
		}
	} else {
		ret = fz_ioctl(c, c->d.fd, VHOST_RESET_OWNER, NULL);
		if (ret) {
			fz_fail(c, "RESET_OWNER: %s", strerror(-ret));
			return ret;
		}
		/* not owned now: only the GETs of features work */
		ret = fz_ioctl(c, c->d.fd, VHOST_GET_VRING_BASE, &st);
		if (ret != -EPERM)
			fz_fail(c, "GET_VRING_BASE after RESET_OWNER: %d, expected EPERM",
				ret);
	}
	c->d.mem.r[0].lo = c->ring_lo;
	ret = vb_dev_sequence(&c->d, &c->o);
	if (ret)
		fz_fail(c, "start sequence after %s: %s",
			reopen ? "reopen" : "RESET_OWNER", strerror(-ret));
	c->restores++;
	return ret;
}

/* An fd of the case's backend or another; the caller closes it. */
static int fz_open_backend(struct fz_backend *b, int flags)
{
	return open(b->path, flags | b->oflags | O_CLOEXEC);
}

static int fz_set_backend_fd(struct fz_case *c, int fd)
{
	struct vhost_vring_file f = { .index = 0, .fd = fd };

	return fz_ioctl(c, c->d.fd, VHOST_BLK_SET_BACKEND, &f);
}

/* Around a vmm operation that may move queue @q's indices; see q2_busy. */
static void fz_hold(struct fz_case *c, unsigned int q, bool start)
{
	if (q != 2)
		return;
	if (start)
		__atomic_fetch_add(&c->q2_busy, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&c->q2_gen, 1, __ATOMIC_SEQ_CST);
	if (!start)
		__atomic_fetch_sub(&c->q2_busy, 1, __ATOMIC_SEQ_CST);
}

/* ---------------------------------------------------------- vmm ops */

static void __fz_stop_restart(struct fz_case *c, struct fz_src *s,
			      unsigned int q)
{
	struct vhost_vring_state st = { .index = q };
	struct vhost_vring_file f = { .index = q, .fd = c->d.vq[q].kick };
	int ret;

	if (chance(s, 3)) {
		/* KICK -1 then the kick again */
		struct vhost_vring_file off = { .index = q, .fd = -1 };

		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_KICK, &off);
	} else {
		ret = fz_ioctl(c, c->d.fd, VHOST_GET_VRING_BASE, &st);
		if (ret)
			fz_fail(c, "GET_VRING_BASE %u: %s", q, strerror(-ret));
	}
	fz_sleep_us(pick(s, 4) * 500);
	if (q == 1) {
		/* the mutated queue also gets a new layout now and then */
		struct vhost_vring_state n = { .index = q };
		struct vhost_vring_addr a = {
			.index = q,
			.desc_user_addr = (uintptr_t)c->d.vq[q].desc,
			.avail_user_addr = (uintptr_t)c->d.vq[q].avail,
			.used_user_addr = (uintptr_t)c->d.vq[q].used,
		};
		static const unsigned int nums[] = {
			NUM, NUM, 1, 2, 16, 1024, 0, 3, 2048,
		};

		n.num = nums[pick(s, ARRAY_SIZE(nums))];
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_NUM, &n);
		switch (pick(s, 6)) {
		case 0:	/* the descriptor table inside a fuzz area */
			a.desc_user_addr = (uintptr_t)c->area_hva[pick(s, 2)] +
					   CHUNK * (HDR_CHUNKS + pick(s, 8));
			break;
		case 1:	/* the PROT_NONE page between regions 1 and 0 */
			a.used_user_addr = (uintptr_t)c->d.mem.r[1].hva +
					   c->d.mem.r[1].size;
			break;
		case 2:	/* not a user address */
			a.avail_user_addr = 0xffff888000000000ULL;
			break;
		case 3:	/* misaligned: EINVAL */
			a.desc_user_addr += 8;
			break;
		}
		if (chance(s, 16))
			a.flags = 1u << pick(s, 32);	/* but LOG: EOPNOTSUPP */
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_ADDR, &a);
	}
	if (q && chance(s, 2)) {
		st.index = q;
		st.num = chance(s, 8) ? 0x10000 : pick(s, 0x10000);
		if (chance(s, 2))
			st.num = le16toh(c->d.vq[q].used->idx);
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_BASE, &st);
	}
	ret = fz_ioctl(c, c->d.fd, VHOST_SET_VRING_KICK, &f);
	if (ret)
		fz_fail(c, "SET_VRING_KICK %u: %s", q, strerror(-ret));
}

static void fz_stop_restart(struct fz_case *c, struct fz_src *s,
			    unsigned int q)
{
	fz_hold(c, q, true);
	__fz_stop_restart(c, s, q);
	fz_hold(c, q, false);
}

/*
 * What a VMM does when a queue's error eventfd fires: stop it, lay it out
 * as the guest has it, and start it again after the last used entry.
 */
static void fz_repair(struct fz_case *c, unsigned int q)
{
	struct vb_vq *vq = &c->d.vq[q];
	struct vhost_vring_state st = { .index = q, .num = NUM };
	struct vhost_vring_addr a = {
		.index = q,
		.desc_user_addr = (uintptr_t)vq->desc,
		.avail_user_addr = (uintptr_t)vq->avail,
		.used_user_addr = (uintptr_t)vq->used,
	};
	struct vhost_vring_file f = { .index = q, .fd = vq->kick };

	fz_hold(c, q, true);
	if (q == 2)
		__atomic_fetch_add(&c->q2_repairs_started, 1, __ATOMIC_SEQ_CST);
	fz_ioctl(c, c->d.fd, VHOST_GET_VRING_BASE, &st);
	st.num = NUM;
	fz_ioctl(c, c->d.fd, VHOST_SET_VRING_NUM, &st);
	fz_ioctl(c, c->d.fd, VHOST_SET_VRING_ADDR, &a);
	st.num = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
	fz_ioctl(c, c->d.fd, VHOST_SET_VRING_BASE, &st);
	/* the guest publishes from the used index on */
	__atomic_store_n(&vq->avail->idx, htole16(st.num), __ATOMIC_RELEASE);
	if (fz_ioctl(c, c->d.fd, VHOST_SET_VRING_KICK, &f))
		fz_fail(c, "SET_VRING_KICK %u after a break failed", q);
	if (q == 2)
		__atomic_fetch_add(&c->q2_repairs, 1, __ATOMIC_SEQ_CST);
	fz_hold(c, q, false);
}

/* Tables that must be refused, each with its errno. */
static void fz_bad_table(struct fz_case *c, struct fz_src *s)
{
	struct vhost_memory *t = fz_table(c, s, 0);
	struct vhost_memory_region *r;
	int want = EINVAL, ret;

	if (!t)
		return;
	r = &t->regions[t->nregions];
	*r = t->regions[pick(s, t->nregions)];
	t->nregions++;
	switch (pick(s, 9)) {
	case 0:	/* the same region twice */
		break;
	case 1:	/* overlapping by a page */
		r->guest_phys_addr += r->memory_size - 4096;
		r->userspace_addr = (uintptr_t)c->area_hva[0];
		r->memory_size = AREA;
		break;
	case 2:
		r->guest_phys_addr = 0x300000000ULL;
		r->memory_size = 0;
		break;
	case 3:
		r->guest_phys_addr = 0x300000000ULL;
		r->flags_padding = 1 + pick(s, 0xffff);
		break;
	case 4:	/* guest-physical range wraps */
		r->guest_phys_addr = ~0ULL - 4095;
		r->memory_size = 8192;
		break;
	case 5:	/* user range wraps */
		r->guest_phys_addr = 0x300000000ULL;
		r->userspace_addr = ~0ULL - 4095;
		r->memory_size = 8192;
		want = EFAULT;
		break;
	case 6:	/* not a user address */
		r->guest_phys_addr = 0x300000000ULL;
		r->userspace_addr = 0xffff888000000000ULL;
		want = EFAULT;
		break;
	case 7:
		t->nregions = 65 + pick(s, 4);
		want = E2BIG;
		break;
	case 8:
		t->nregions = 0x80000000u | pick(s, 0);
		want = E2BIG;
		break;
	}
	ret = fz_ioctl(c, c->d.fd, VHOST_SET_MEM_TABLE, t);
	fz_must_fail(c, ret, "an invalid VHOST_SET_MEM_TABLE", want, want);
	free(t);
}

/* Backend fds that must be refused; the backend stays. */
static void fz_bad_backend(struct fz_case *c, struct fz_src *s)
{
	int fd = -1, want = EINVAL, ret;
	bool opened = true;

	switch (pick(s, 6)) {
	case 0:
		fd = eventfd(0, EFD_CLOEXEC);
		break;
	case 1:
		fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		break;
	case 2:
		fd = open(c->be->path, O_PATH | O_CLOEXEC);
		want = EBADF;
		break;
	case 3:
		fd = open(c->be->path, O_WRONLY | O_CLOEXEC);
		break;
	case 4:
		if (!c->be->is_file)
			return;
		fd = open(c->be->path, O_RDWR | O_APPEND | O_CLOEXEC);
		break;
	case 5:	/* above RLIMIT_NOFILE: never an open descriptor */
		fd = 4096 + pick(s, 4096);
		want = EBADF;
		opened = false;
		break;
	}
	if (fd < 0)
		return;		/* -1 would detach */
	ret = fz_set_backend_fd(c, fd);
	fz_must_fail(c, ret, "an invalid VHOST_BLK_SET_BACKEND", want, want);
	if (opened)
		close(fd);
}

/* An ioctl number of vhost's type that the module does not serve. */
static void fz_unknown_ioctl(struct fz_case *c, struct fz_src *s)
{
	static uint8_t buf[4096];
	unsigned long cmd;
	int ret;

	do {
		cmd = _IOC(pick(s, 4), VHOST_VIRTIO, pick(s, 256), pick(s, 64));
	} while (fz_ioctl_find(cmd));
	memset(buf, 0, sizeof(buf));
	ret = fz_ioctl(c, c->d.fd, cmd, buf);
	if (ret != -ENOTTY)
		fz_fail(c, "ioctl %#lx: %d, expected ENOTTY", cmd, ret);
}

/*
 * In a process with another mm: every ioctl but the feature GETs is
 * EPERM, and SET_OWNER of the owned device EBUSY.  @arg_fd is the
 * device's fd, and which ioctl in bits 16 and up.
 */
static int fz_foreign(int arg_fd)
{
	int fd = arg_fd & 0xffff, cmd_index = arg_fd >> 16;
	static const unsigned long cmds[] = {
		VHOST_GET_VRING_BASE, VHOST_SET_MEM_TABLE, VHOST_RESET_OWNER,
		VHOST_BLK_SET_BACKEND, VHOST_NEW_WORKER, VHOST_SET_OWNER,
	};
	uint8_t arg[64] = { 0 };
	unsigned long cmd = cmds[cmd_index % ARRAY_SIZE(cmds)];

	if (ioctl(fd, cmd, arg) == 0)
		return 1;
	return errno == (cmd == VHOST_SET_OWNER ? EBUSY : EPERM) ? 0 : 2;
}

/* The device's fdinfo, read while it changes: it must always read. */
static void fz_fdinfo(struct fz_case *c)
{
	char path[64], buf[8192];
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", c->d.fd);
	ret = vb_read_text(path, buf, sizeof(buf));
	if (ret < 0 || !strstr(buf, "vhost_blk_id:"))
		fz_fail(c, "fdinfo of the device: %s",
			ret < 0 ? strerror(-ret) : "no vhost_blk_id");
}

/* Operations that leave the oracle queue working; under the read lock. */
static void fz_op_shared(struct fz_case *c, struct fz_src *s)
{
	struct vhost_vring_state st = { .index = 0 };
	struct vhost_vring_worker w = { 0 };
	struct vhost_vring_file f = { 0 };
	struct vhost_worker_state ws = { 0 };
	struct vhost_memory *t;
	uint64_t u64;
	uint32_t u32;
	char serial[VIRTIO_BLK_ID_BYTES];
	unsigned int q = 1 + pick(s, 2), i;
	int fd, ret;

	switch (pick(s, 28)) {
	case 0:
		fz_ioctl(c, c->d.fd, VHOST_GET_FEATURES, &u64);
		u64 = chance(s, 2) ? 0 : pick(s, 0);
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_BACKEND_FEATURES, &u64);
		if (u64 && !ret)
			fz_fail(c, "SET_BACKEND_FEATURES %#llx accepted",
				(unsigned long long)u64);
		fz_ioctl(c, c->d.fd, VHOST_GET_BACKEND_FEATURES, &u64);
		break;
	case 1:	/* the same features again */
		u64 = fz_canon_features(c);
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_FEATURES, &u64);
		if (ret)
			fz_fail(c, "SET_FEATURES of the negotiated set: %s",
				strerror(-ret));
		break;
	case 2:
		u32 = pick(s, 4) ? pick(s, 2) : pick(s, 0);
		fz_ioctl(c, c->d.fd, VHOST_BLK_SET_WRITEBACK, &u32);
		fz_ioctl(c, c->d.fd, VHOST_BLK_GET_WRITEBACK, &u32);
		if (u32 > 1)
			fz_fail(c, "GET_WRITEBACK returned %u", u32);
		break;
	case 3:
		for (i = 0; i < sizeof(serial); i++)
			serial[i] = pick(s, 256);
		fz_ioctl(c, c->d.fd, VHOST_BLK_SET_SERIAL, serial);
		break;
	case 4:
		ret = fz_ioctl(c, c->d.fd, VHOST_NEW_WORKER, &ws);
		if (!ret && ws.worker_id >= VHOST_BLK_MAX_QUEUES)
			fz_fail(c, "NEW_WORKER gave id %u", ws.worker_id);
		break;
	case 5:
		ws.worker_id = pick(s, 4) ? pick(s, 18) : pick(s, 0);
		fz_ioctl(c, c->d.fd, VHOST_FREE_WORKER, &ws);
		break;
	case 6:
		w.index = pick(s, 8) ? pick(s, NQ) : pick(s, 0) | 16;
		w.worker_id = pick(s, 4) ? pick(s, 18) : pick(s, 0);
		fz_ioctl(c, c->d.fd, VHOST_ATTACH_VRING_WORKER, &w);
		w.index = pick(s, NQ);
		ret = fz_ioctl(c, c->d.fd, VHOST_GET_VRING_WORKER, &w);
		if (!ret && w.worker_id >= VHOST_BLK_MAX_QUEUES)
			fz_fail(c, "GET_VRING_WORKER gave id %u", w.worker_id);
		break;
	case 7:
		st.index = pick(s, NQ);
		st.num = pick(s, 4) ? pick(s, 3) * pick(s, 200) :
			 VHOST_BLK_MAX_BUSYLOOP_US + pick(s, 2);
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, &st);
		if (!ret && st.num > VHOST_BLK_MAX_BUSYLOOP_US)
			fz_fail(c, "busy-poll budget %u accepted", st.num);
		fz_ioctl(c, c->d.fd, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, &st);
		break;
	case 8:	/* a superset of the table: the oracle's regions stay */
		t = fz_table(c, s, pick(s, 5));
		if (!t)
			break;
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_MEM_TABLE, t);
		/* EFAULT: LOG_ALL is on and the log cannot cover the table */
		if (ret && ret != -EFAULT)
			fz_fail(c, "a valid VHOST_SET_MEM_TABLE: %s",
				strerror(-ret));
		free(t);
		break;
	case 9:
		fz_bad_table(c, s);
		break;
	case 10: /* the same backend through another fd: a pivot under I/O */
		fd = fz_open_backend(c->be, O_RDWR);
		if (fd < 0)
			break;
		ret = fz_set_backend_fd(c, fd);
		if (ret && !(ret == -EIO && c->be->all_err))
			fz_fail(c, "SET_BACKEND of %s again: %s", c->be->path,
				strerror(-ret));
		close(fd);
		break;
	case 11:
		fz_bad_backend(c, s);
		break;
	case 12:
		fz_stop_restart(c, s, 0);
		break;
	case 13:
	case 14:
		fz_stop_restart(c, s, q);
		break;
	case 15: /* layout changes of a running queue: EBUSY */
		st.index = q;
		st.num = NUM;
		fz_hold(c, q, true);
		fz_ioctl(c, c->d.fd, chance(s, 2) ? VHOST_SET_VRING_NUM :
			 VHOST_SET_VRING_BASE, &st);
		fz_hold(c, q, false);
		break;
	case 16: /* call and error eventfds of a fuzz queue */
		f.index = q;
		fz_hold(c, q, true);
		switch (pick(s, 4)) {
		case 0:
			f.fd = -1;
			break;
		case 1:
			f.fd = c->be->fd;	/* not an eventfd: EINVAL */
			break;
		case 2:
			f.fd = 4096 + pick(s, 4096);	/* EBADF */
			break;
		default:
			f.fd = c->d.vq[q].call;
		}
		fz_ioctl(c, c->d.fd, chance(s, 2) ? VHOST_SET_VRING_CALL :
			 VHOST_SET_VRING_ERR, &f);
		fz_sleep_us(pick(s, 4) * 300);
		f.fd = c->d.vq[q].call;
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_CALL, &f);
		f.fd = c->d.vq[q].err;
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_ERR, &f);
		fz_hold(c, q, false);
		break;
	case 17: /* a kick that is no eventfd */
		f.index = q;
		f.fd = chance(s, 2) ? c->be->fd : 4096 + pick(s, 4096);
		fz_must_fail(c, fz_ioctl(c, c->d.fd, VHOST_SET_VRING_KICK, &f),
			     "SET_VRING_KICK with no eventfd", EINVAL, EBADF);
		break;
	case 18:
		fz_unknown_ioctl(c, s);
		break;
	case 19: /* a queue that does not exist */
		st.index = 16 + pick(s, 0xfff0);
		if (chance(s, 4))
			st.index = pick(s, 0) | 0x80000000u;
		fz_must_fail(c, fz_ioctl(c, c->d.fd, chance(s, 2) ?
					 VHOST_GET_VRING_BASE :
					 VHOST_SET_VRING_NUM, &st),
			     "a vring ioctl on queue >= 16", ENOBUFS, ENOBUFS);
		break;
	case 20: /* arguments that cannot be read or written */
		fz_must_fail(c, fz_ioctl(c, c->d.fd, pick(s, 2) ?
					 VHOST_SET_MEM_TABLE :
					 VHOST_GET_VRING_BASE,
					 (void *)(uintptr_t)(16 + pick(s, 4096))),
			     "an ioctl with a bad pointer", EFAULT, EFAULT);
		break;
	case 21:
		fz_must_fail(c, fz_ioctl(c, c->d.fd, VHOST_SET_OWNER, NULL),
			     "a second SET_OWNER", EBUSY, EBUSY);
		break;
	case 22:
		ret = vb_run_in_child(fz_foreign, c->d.fd | pick(s, 6) << 16);
		if (ret)
			fz_fail(c, "an ioctl from another process: %s",
				ret == 1 ? "succeeded" : ret == 2 ?
				"not EPERM (SET_OWNER: EBUSY)" : "child died");
		break;
	case 23:
		fz_fdinfo(c);
		break;
	case 24: /* the dirty log: a base that covers the table, or not */
		switch (pick(s, 4)) {
		case 0:
			u64 = (uintptr_t)c->logsmall;
			break;
		case 1:
			u64 = 0xffff888000000000ULL;	/* EFAULT */
			break;
		default:
			u64 = (uintptr_t)c->logbits;
		}
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_LOG_BASE, &u64);
		if (ret && ret != -EFAULT)
			fz_fail(c, "SET_LOG_BASE: %s", strerror(-ret));
		break;
	case 25:
		switch (pick(s, 4)) {
		case 0:
			fd = -1;
			break;
		case 1:
			fd = c->be->fd;		/* EINVAL */
			break;
		case 2:
			fd = 4096 + pick(s, 4096);	/* EBADF */
			break;
		default:
			fd = c->logfd;
		}
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_LOG_FD, &fd);
		if ((fd == -1 || fd == c->logfd) != !ret)
			fz_fail(c, "SET_LOG_FD %d: %d", fd, ret);
		break;
	case 26: /* migration starts or ends: LOG_ALL on or off */
		u64 = fz_canon_features(c);
		if (pick(s, 2))
			u64 |= 1ULL << VHOST_F_LOG_ALL;
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_FEATURES, &u64);
		/* EFAULT: the log at the current base is too small */
		if (ret && ret != -EFAULT)
			fz_fail(c, "SET_FEATURES %#llx: %s",
				(unsigned long long)u64, strerror(-ret));
		break;
	case 27: { /* the used ring logged, or not; the rings stay */
		struct vb_vq *vq = &c->d.vq[pick(s, NQ)];
		struct vhost_vring_addr a = {
			.index = vq->idx,
			.desc_user_addr = (uintptr_t)vq->desc,
			.avail_user_addr = (uintptr_t)vq->avail,
			.used_user_addr = (uintptr_t)vq->used,
			.log_guest_addr = vq->used_gpa,
		};

		a.flags = pick(s, 2) ? 1u << VHOST_VRING_F_LOG : 0;
		if (chance(s, 8))
			a.log_guest_addr = chance(s, 2) ? vq->used_gpa + 2 :
					   ~0ULL - 4095;	/* EINVAL */
		if (vq->idx == 2)
			fz_hold(c, 2, true);
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_ADDR, &a);
		if (vq->idx == 2)
			fz_hold(c, 2, false);
		break;
	}
	}
}

/* Operations the oracle cannot run through; the device is restored. */
static void fz_op_exclusive(struct fz_case *c, struct fz_src *s)
{
	struct vhost_vring_state st = { .index = 0 };
	struct vhost_memory *t;
	unsigned int op = pick(s, 6);
	uint64_t u64;
	int fd, ret;

	switch (op) {
	case 0:	/* other features, now and then one not offered */
		u64 = pick(s, 0) & c->devf;
		if (chance(s, 4))
			u64 |= 1ULL << (26 + pick(s, 38 - 26 + 1));
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_FEATURES, &u64);
		if (!ret && (u64 & ~c->devf))
			fz_fail(c, "SET_FEATURES %#llx accepted",
				(unsigned long long)u64);
		break;
	case 1:	/* another backend, detach, or read-only */
		fd = -1;	/* detach */
		switch (pick(s, 3)) {
		case 0:
			fd = fz_open_backend(&fz_be[pick(s, fz_nbe)], O_RDWR);
			if (fd < 0)
				break;
			fallthrough;
		case 1:
			break;
		default:
			fd = fz_open_backend(c->be, O_RDONLY);
			if (fd < 0)
				break;
		}
		ret = fz_set_backend_fd(c, fd);
		if (ret)
			fz_fail(c, "SET_BACKEND %d: %s", fd, strerror(-ret));
		if (fd >= 0)
			close(fd);
		break;
	case 2:	/* a table without one of the regions */
		t = fz_table(c, s, 0);
		if (!t)
			break;
		t->regions[pick(s, t->nregions)] = t->regions[t->nregions - 1];
		t->nregions--;
		ret = fz_ioctl(c, c->d.fd, VHOST_SET_MEM_TABLE, t);
		if (ret)
			fz_fail(c, "a reduced VHOST_SET_MEM_TABLE: %s",
				strerror(-ret));
		free(t);
		break;
	case 3:	/* the oracle queue somewhere else in its ring */
		fz_ioctl(c, c->d.fd, VHOST_GET_VRING_BASE, &st);
		st.num = pick(s, 0x10000);
		fz_ioctl(c, c->d.fd, VHOST_SET_VRING_BASE, &st);
		break;
	case 4:	/* RESET_OWNER: the restore below does it */
	case 5:	/* close and open again */
		break;
	}
	fz_sleep_us(pick(s, 8) * 500);
	fz_restore(c, op == 5);
}

struct fz_thread {
	struct fz_case *c;
	struct fz_src s;
	unsigned int nops;	/* vmm: how many; 0: until stopped */
	bool exclusive;		/* vmm may take the write lock */
};

static void *fz_vmm(void *arg)
{
	struct fz_thread *t = arg;
	struct fz_case *c = t->c;
	struct fz_kcov k;
	unsigned int i;

	fz_kcov_start(&k);
	for (i = 0; !FZ_READ(c->stop) && (!t->nops || i < t->nops); i++) {
		unsigned int q;

		/* vmm2 answers the error eventfds the guests saw */
		for (q = 1; !t->exclusive && q < NQ; q++) {
			if (!__atomic_exchange_n(&c->broken[q], 0,
						 __ATOMIC_RELAXED))
				continue;
			pthread_rwlock_rdlock(&c->lock);
			fz_repair(c, q);
			pthread_rwlock_unlock(&c->lock);
		}
		if (t->exclusive && chance(&t->s, 6)) {
			pthread_rwlock_wrlock(&c->lock);
			fz_hold(c, 2, true);
			fz_op_exclusive(c, &t->s);
			fz_hold(c, 2, false);
			pthread_rwlock_unlock(&c->lock);
		} else {
			pthread_rwlock_rdlock(&c->lock);
			fz_op_shared(c, &t->s);
			pthread_rwlock_unlock(&c->lock);
		}
		__atomic_fetch_add(&c->ops, 1, __ATOMIC_RELAXED);
		fz_kcov_collect(c, &k);
		fz_sleep_us(pick(&t->s, 8) * 250);
	}
	fz_kcov_stop(c, &k);
	if (t->nops)
		FZ_WRITE(c->stop, 1);
	return NULL;
}

/* ------------------------------------------------------------ guests */

/* vq 1: random tables, published and kicked while the mutator works. */
static void *fz_guest1(void *arg)
{
	struct fz_thread *t = arg;
	struct fz_case *c = t->c;
	struct vb_vq *vq = &c->d.vq[1];
	struct fz_kcov k;
	unsigned int i, heads;
	uint16_t idx;

	fz_kcov_start(&k);
	while (!FZ_READ(c->stop)) {
		for (i = 0; i < NUM; i++)
			fz_desc(c, &t->s, &vq->desc[i], NUM, false);
		heads = 1 + pick(&t->s, 6);
		idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
		for (i = 0; i < heads; i++)
			vq->avail->ring[(idx + i) % NUM] =
				pick(&t->s, 16) ? pick(&t->s, NUM) :
						  pick(&t->s, 0x10000);
		if (chance(&t->s, 16))
			heads = pick(&t->s, 0x10000);
		__atomic_store_n(&vq->avail->idx, htole16(idx + heads),
				 __ATOMIC_RELEASE);
		vb_vq_kick(vq);
		fz_kcov_collect(c, &k);
		fz_sleep_us(500 + pick(&t->s, 8) * 500);
		if (vb_fd_signalled(vq->err))
			FZ_WRITE(c->broken[1], 1);
	}
	fz_kcov_stop(c, &k);
	return NULL;
}

/* Rewrites vq 1's ring and the fuzz areas under the worker's feet. */
static void *fz_mutator(void *arg)
{
	struct fz_thread *t = arg;
	struct fz_case *c = t->c;
	struct vb_vq *vq = &c->d.vq[1];
	struct fz_src *s = &t->s;
	unsigned int n = 0;

	while (!FZ_READ(c->stop)) {
		uint8_t *a = c->area_hva[pick(s, 2)];
		struct vring_desc *d;
		struct virtio_blk_outhdr h;

		switch (pick(s, 8)) {
		case 0:
		case 1:
			d = &vq->desc[pick(s, NUM)];
			switch (pick(s, 4)) {
			case 0:
				d->addr = fz_addr(c, s);
				break;
			case 1:
				d->len = fz_len(s);
				break;
			case 2:
				d->flags ^= 1u << pick(s, 3);
				break;
			default:
				d->next = pick(s, NUM + 2);
			}
			break;
		case 2:
		case 3:	/* an entry of an indirect table */
			d = (void *)(a + CHUNK * (HDR_CHUNKS + pick(s, AREA / CHUNK - HDR_CHUNKS)));
			fz_desc(c, s, &d[pick(s, 32)], 32, true);
			break;
		case 4:	/* a header, while it may be read */
			fz_hdr(c, s, &h);
			memcpy(a + CHUNK * pick(s, HDR_CHUNKS), &h,
			       pick(s, 2) ? sizeof(h) : 4);
			break;
		case 5:
			vq->avail->ring[pick(s, NUM)] = pick(s, 8) ?
				pick(s, NUM) : pick(s, 0x10000);
			break;
		case 6:
			__atomic_fetch_add(&vq->avail->idx,
					   pick(s, 3) - 1, __ATOMIC_RELEASE);
			break;
		case 7:
			vq->avail->flags ^= 1;
			*vb_used_event(vq) = pick(s, 0x10000);
			break;
		}
		if (++n % 64 == 0)
			sched_yield();
	}
	return NULL;
}

/*
 * vq 2: random tables, with well-formed requests among them whose status
 * must be OK, IOERR or UNSUPP.  Only a round that started and ended with
 * every published request on the used ring, and without an error signal,
 * is judged.
 */
static void *fz_guest2(void *arg)
{
	struct fz_thread *t = arg;
	struct fz_case *c = t->c;
	struct vb_vq *vq = &c->d.vq[2];
	struct fz_src *s = &t->s;
	struct fz_kcov k;
	bool clean = false;
	uint16_t idx, avail;
	unsigned int i, heads, nwf, last_gen = 0;
	uint16_t wf[2], pub[8];

	fz_kcov_start(&k);
	while (!FZ_READ(c->stop)) {
		unsigned int gen = __atomic_load_n(&c->q2_gen, __ATOMIC_SEQ_CST);
		int64_t end;
		bool judge, err;

		/*
		 * After a break, or an operation that may have moved the
		 * queue's indices, the device and we may disagree on where
		 * the ring is: have the VMM stop it, drain it and restart it
		 * where the used index is, and write nothing meanwhile.
		 */
		if (!clean || gen != last_gen) {
			/* one that started before we went quiet does not do */
			unsigned int r = __atomic_load_n(&c->q2_repairs_started,
							 __ATOMIC_SEQ_CST);

			FZ_WRITE(c->broken[2], 1);
			end = now_ms() + 2000;
			while (!FZ_READ(c->stop) && now_ms() < end &&
			       (int)(__atomic_load_n(&c->q2_repairs,
						     __ATOMIC_SEQ_CST) - r) <= 0)
				usleep(1000);
			clean = (int)(__atomic_load_n(&c->q2_repairs,
						      __ATOMIC_SEQ_CST) - r) > 0;
			gen = __atomic_load_n(&c->q2_gen, __ATOMIC_SEQ_CST);
			vb_fd_signalled(vq->err);
		}
		judge = clean &&
			!__atomic_load_n(&c->q2_busy, __ATOMIC_SEQ_CST);

		for (i = 0; i < WF_FIRST; i++)
			fz_desc(c, s, &vq->desc[i], NUM, false);
		nwf = 1 + pick(s, 2);
		for (i = 0; i < nwf; i++) {
			uint16_t h = WF_FIRST + 3 * i;
			uint64_t slot = vq->slot_gpa + (uint64_t)h * VB_SLOT;
			struct virtio_blk_outhdr hdr;
			uint8_t ff = 0xff;
			bool in;

			fz_hdr(c, s, &hdr);
			in = hdr.type == VIRTIO_BLK_T_IN ||
			     hdr.type == VIRTIO_BLK_T_GET_ID;
			vb_write(&c->d.mem, slot, &hdr, sizeof(hdr));
			vb_write(&c->d.mem, slot + VB_SLOT_STATUS, &ff, 1);
			vq->desc[h] = (struct vring_desc){
				.addr = slot, .len = sizeof(hdr),
				.flags = VRING_DESC_F_NEXT, .next = h + 1 };
			vq->desc[h + 1] = (struct vring_desc){
				.addr = c->area[1] + CHUNK * pick(s, AREA / CHUNK / 2),
				.len = VB_SECTOR * (1 + pick(s, 16)),
				.flags = VRING_DESC_F_NEXT |
					 (in ? VRING_DESC_F_WRITE : 0),
				.next = h + 2 };
			if (hdr.type == VIRTIO_BLK_T_DISCARD ||
			    hdr.type == VIRTIO_BLK_T_WRITE_ZEROES) {
				struct virtio_blk_discard_write_zeroes w;

				fz_dwz(c, s, &w);
				vq->desc[h + 1].addr = slot + VB_SLOT_TABLE;
				vq->desc[h + 1].len = sizeof(w);
				vb_write(&c->d.mem, slot + VB_SLOT_TABLE, &w,
					 sizeof(w));
			}
			vq->desc[h + 2] = (struct vring_desc){
				.addr = slot + VB_SLOT_STATUS, .len = 1,
				.flags = VRING_DESC_F_WRITE };
			wf[i] = h;
		}
		idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
		/* most rounds without random heads, which mostly break it */
		heads = nwf + (pick(s, 4) ? 0 : 1 + pick(s, 3));	/* < 8 */
		for (i = 0; i < heads; i++) {
			pub[i] = i < nwf ? wf[i] :
				 pick(s, 16) ? pick(s, NUM) : pick(s, 0x10000);
			vq->avail->ring[(idx + i) % NUM] = pub[i];
		}
		avail = idx + heads;
		__atomic_store_n(&vq->avail->idx, htole16(avail),
				 __ATOMIC_RELEASE);
		vb_vq_kick(vq);
		end = now_ms() + 200;
		err = false;
		while (!FZ_READ(c->stop) && now_ms() < end) {
			if (vb_fd_signalled(vq->err))
				err = true;
			if (err || vb_used_idx(vq) == avail)
				break;
			usleep(500);
		}
		fz_kcov_collect(c, &k);
		clean = !err && vb_used_idx(vq) == avail &&
			!__atomic_load_n(&c->q2_busy, __ATOMIC_SEQ_CST) &&
			gen == __atomic_load_n(&c->q2_gen, __ATOMIC_SEQ_CST);
		last_gen = gen;
		if (judge && clean) {
			/* the used entries are the heads published, in any order */
			for (i = 0; i < heads; i++) {
				uint32_t id = le32toh(vq->used->ring[(idx + i) % NUM].id);
				unsigned int j;

				for (j = 0; j < heads && pub[j] != id; j++)
					;
				if (j == heads)
					fz_fail(c, "vq 2 used entry %u: id %u was not published",
						(uint16_t)(idx + i), id);
				else
					pub[j] = 0xffff;
			}
			for (i = 0; i < nwf; i++) {
				uint8_t st;

				vb_read(&c->d.mem, vq->slot_gpa +
					(uint64_t)wf[i] * VB_SLOT + VB_SLOT_STATUS,
					&st, 1);
				if (st > VIRTIO_BLK_S_UNSUPP)
					fz_fail(c, "vq 2 head %u completed with status %#x",
						wf[i], st);
				__atomic_fetch_add(&c->wf_checked, 1,
						   __ATOMIC_RELAXED);
			}
		}
	}
	fz_kcov_stop(c, &k);
	return NULL;
}

/* ------------------------------------------------------------ oracle */

static int fz_oracle_io(struct fz_case *c, struct vb_vq *vq, uint32_t type,
			uint64_t sector, uint32_t len, unsigned int layout,
			uint32_t *used)
{
	int ret = vb_io(vq, type, sector, c->obuf, len, layout, used);

	if (ret < 0)
		fz_fail(c, "oracle: request type %u sector %llu len %u: %s",
			type, (unsigned long long)sector, len, strerror(-ret));
	return ret;
}

/* vq 0: well-formed requests over the upper limit, verified. */
static void *fz_oracle(void *arg)
{
	struct fz_thread *t = arg;
	struct fz_case *c = t->c;
	struct vb_vq *vq = &c->d.vq[0];
	struct fz_src *s = &t->s;
	uint8_t *want = malloc(ORACLE_MAX), *got = malloc(ORACLE_MAX);
	uint64_t first = fz_oracle_first(c);
	struct fz_kcov k;
	uint32_t used;

	if (!want || !got) {
		fz_fail(c, "oracle: out of memory");
		goto out;
	}
	fz_kcov_start(&k);
	while (!FZ_READ(c->stop)) {
		uint32_t len = 4096 * (1 + pick(s, ORACLE_MAX / 4096));
		uint64_t sector = first + 8 * pick(s, (ORACLE_SPAN - ORACLE_MAX) / 4096);
		unsigned int layout = pick(s, VB_L_ALL + 1), op = pick(s, 8);
		uint32_t seed = pick(s, 0);
		int st;

		pthread_rwlock_rdlock(&c->lock);
		if (op == 0) {
			st = fz_oracle_io(c, vq, VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used);
			if (st >= 0 && st != VIRTIO_BLK_S_OK &&
			    !(c->be->all_err && st == VIRTIO_BLK_S_IOERR))
				fz_fail(c, "oracle: FLUSH status %d", st);
		} else if (op == 1) {
			st = fz_oracle_io(c, vq, VIRTIO_BLK_T_GET_ID, 0, 512,
					  layout, &used);
			if (st >= 0 && (st != VIRTIO_BLK_S_OK ||
					used != VIRTIO_BLK_ID_BYTES + 1))
				fz_fail(c, "oracle: GET_ID status %d used %u",
					st, used);
		} else {
			bool zero = op == 2;

			if (zero) {
				st = vb_discard_wz(vq, VIRTIO_BLK_T_WRITE_ZEROES,
						   sector, len / VB_SECTOR, 0,
						   &used);
				if (st < 0)
					fz_fail(c, "oracle: WRITE_ZEROES: %s",
						strerror(-st));
				memset(want, 0, len);
			} else {
				vb_pattern(want, len, sector, seed);
				vb_write(&c->d.mem, c->obuf, want, len);
				st = fz_oracle_io(c, vq, VIRTIO_BLK_T_OUT,
						  sector, len, layout, &used);
			}
			if (st >= 0 && st != (c->be->all_err ?
					      VIRTIO_BLK_S_IOERR :
					      VIRTIO_BLK_S_OK))
				fz_fail(c, "oracle: %s of sector %llu len %u: status %d",
					zero ? "WRITE_ZEROES" : "OUT",
					(unsigned long long)sector, len, st);
			if (st == VIRTIO_BLK_S_OK) {
				vb_fill(&c->d.mem, c->obuf, 0x5a, len);
				st = fz_oracle_io(c, vq, VIRTIO_BLK_T_IN,
						  sector, len,
						  pick(s, VB_L_ALL + 1), &used);
				vb_read(&c->d.mem, c->obuf, got, len);
				if (st >= 0 && (st != VIRTIO_BLK_S_OK ||
						used != len + 1))
					fz_fail(c, "oracle: IN status %d used %u",
						st, used);
				else if (st >= 0 && memcmp(want, got, len))
					fz_fail(c, "oracle: sector %llu len %u: read back not %s",
						(unsigned long long)sector, len,
						zero ? "the zeroes written" :
						       "what was written");
			}
		}
		pthread_rwlock_unlock(&c->lock);
		__atomic_fetch_add(&c->oracle_ios, 1, __ATOMIC_RELAXED);
		fz_kcov_collect(c, &k);
	}
	fz_kcov_stop(c, &k);
out:
	free(want);
	free(got);
	return NULL;
}

/* ---------------------------------------------------------- watchdog */

static int64_t fz_deadline;	/* FZ_READ/FZ_WRITE; 0: none */
static char fz_repro[INPUT_LEN * 2 + 1024];
static const char *fz_phase = "idle";

static void *fz_watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		int64_t d = FZ_READ(fz_deadline);

		if (d && now_ms() > d) {
			printf("not ok: %s did not finish in time: the device hangs\n"
			       "# reproduce: %s\n", fz_phase, fz_repro);
			fflush(stdout);
			_exit(1);
		}
		usleep(200000);
	}
	return NULL;
}

/* -------------------------------------------------------------- case */

static void fz_hex(char *out, const uint8_t *p, size_t len)
{
	static const char x[] = "0123456789abcdef";

	while (len--) {
		*out++ = x[*p >> 4];
		*out++ = x[*p++ & 15];
	}
	*out = 0;
}

static const char *fz_argv0;

static void fz_set_repro(const uint8_t *input)
{
	int n = snprintf(fz_repro, sizeof(fz_repro),
			 "%s --backends %s --repeat 10 --input-hex ",
			 fz_argv0, fz_be_list);

	fz_hex(fz_repro + n, input, INPUT_LEN);
}

static int fz_setup(struct fz_case *c)
{
	struct fz_src s = { c->input, 1, 0, 1 };
	int ret;

	c->be = &fz_be[pick(&s, fz_nbe)];
	vb_dev_init(&c->d);
	ret = vb_mem_init(&c->d.mem);
	if (ret)
		return ret;
	c->d.fd = vb_open();
	if (c->d.fd < 0)
		return c->d.fd;
	c->o = (struct vb_opts){ .nvqs = NQ, .num = NUM, .backend = c->be->fd };
	ret = vb_dev_sequence(&c->d, &c->o);
	if (ret)
		return ret;
	c->o.features = c->d.features;
	if (ioctl(c->d.fd, VHOST_GET_FEATURES, &c->devf))
		return -errno;
	c->ring_lo = c->d.vq[0].desc_gpa - c->d.mem.r[0].gpa;
	/* the oracle's buffer far above anything a mutated address reaches */
	if (!vb_alloc(&c->d.mem, 2, 20 * MiB, 4096))
		return -ENOMEM;
	c->obuf = vb_alloc_data(&c->d.mem, ORACLE_MAX + 4096);
	if (!c->obuf)
		return -ENOMEM;
	/* a log up to the aliases' end, and one that is too small */
	c->logbits = mmap(NULL, FZ_LOG_BYTES, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c->logsmall = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c->logfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->logbits == MAP_FAILED || c->logsmall == MAP_FAILED ||
	    c->logfd < 0)
		return -ENOMEM;
	/* fuzz areas in region 1, above every ring */
	c->area[0] = c->d.mem.r[1].gpa + 1 * MiB;
	c->area[1] = c->d.mem.r[1].gpa + 2 * MiB;
	c->area_hva[0] = vb_hva(&c->d.mem, c->area[0], AREA);
	c->area_hva[1] = vb_hva(&c->d.mem, c->area[1], AREA);
	return c->area_hva[0] && c->area_hva[1] ? 0 : -ENOMEM;
}

/* One case; 0, or 1 when an oracle failed. */
static int fz_run_case(const uint8_t *input, bool *new_cov)
{
	static void *(* const fn[STREAMS])(void *) = {
		fz_vmm, fz_vmm, fz_guest1, fz_mutator, fz_guest2, fz_oracle,
	};
	static struct fz_case c;
	struct fz_kcov remote;
	struct fz_thread th[STREAMS];
	pthread_t tid[STREAMS];
	pthread_rwlockattr_t ra;
	uint64_t seed = fz_hash(input, INPUT_LEN);
	unsigned int i;
	int64_t t0;
	int ret;

	memset(&c, 0, sizeof(c));
	memcpy(c.input, input, INPUT_LEN);
	pthread_mutex_init(&c.why_lock, NULL);
	pthread_rwlockattr_init(&ra);
	/* a waiting exclusive op must not starve behind the readers */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&c.lock, &ra);
	fz_set_repro(input);

	fz_phase = "setup";
	FZ_WRITE(fz_deadline, now_ms() + FZ_CASE_LIMIT_S * 1000);
	fz_kcov_remote_start(&remote);
	ret = fz_setup(&c);
	if (ret) {
		fz_kcov_stop(&c, &remote);
		printf("not ok: case setup on %s: %s\n# reproduce: %s\n",
		       c.be ? c.be->kind : "?", strerror(-ret), fz_repro);
		return 1;
	}
	/* the first byte chose the backend */
	for (i = 0; i < STREAMS; i++) {
		th[i] = (struct fz_thread){
			.c = &c,
			.s = { input + i * STREAM_LEN + (i == 0),
			       STREAM_LEN - (i == 0), 0,
			       fz_mix(seed + i) | 1 },
		};
	}
	th[S_VMM].nops = 8 + pick(&th[S_VMM].s, 40);
	th[S_VMM].exclusive = true;
	fz_fill_areas(&c, &th[S_MUTATOR].s);

	fz_phase = "a case";
	for (i = 0; i < STREAMS; i++)
		if (pthread_create(&tid[i], NULL, fn[i], &th[i]))
			return printf("not ok: pthread_create\n"), 1;
	for (i = 0; i < STREAMS; i++)
		pthread_join(tid[i], NULL);

	/* the device must let go within a bounded time */
	fz_phase = "close() of the device";
	FZ_WRITE(fz_deadline, now_ms() + FZ_CLOSE_LIMIT_S * 1000);
	t0 = now_ms();
	close(c.d.fd);
	c.d.fd = -1;
	if (now_ms() - t0 > FZ_CLOSE_LIMIT_S * 1000)
		fz_fail(&c, "close() took %lld ms", (long long)(now_ms() - t0));
	FZ_WRITE(fz_deadline, 0);
	/* the workers are gone: their last sections are in the buffer */
	fz_kcov_stop(&c, &remote);
	fz_phase = "idle";
	vb_dev_teardown(&c.d);
	munmap(c.logbits, FZ_LOG_BYTES);
	munmap(c.logsmall, 4096);
	close(c.logfd);

	if (fz_verbose || c.failed)
		printf("# %016llx %s: ops %lu reset %lu oracle %lu wf %lu PCs+ %u close %lldms\n",
		       (unsigned long long)seed, c.be->kind, c.ops, c.restores,
		       c.oracle_ios, c.wf_checked, c.new_pcs,
		       (long long)(now_ms() - t0));
	pthread_rwlock_destroy(&c.lock);
	*new_cov = c.new_pcs > 0;
	if (c.failed) {
		printf("not ok: %s\n# backend %s\n# reproduce: %s\n", c.why,
		       c.be->kind, fz_repro);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ corpus */

static uint8_t *fz_corpus[MAX_CORPUS];
static unsigned int fz_ncorpus;

static void fz_corpus_add(const uint8_t *in)
{
	uint8_t *p;

	if (fz_ncorpus >= MAX_CORPUS)
		return;
	p = malloc(INPUT_LEN);
	if (!p)
		return;
	memcpy(p, in, INPUT_LEN);
	fz_corpus[fz_ncorpus++] = p;
}

static int fz_corpus_load(const char *dir)
{
	uint8_t in[INPUT_LEN];
	char path[4096];
	struct dirent *e;
	int n = 0, fd;
	ssize_t len;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* shorter inputs go on from the PRNG, as a stream does */
		memset(in, 0, sizeof(in));
		len = read(fd, in, sizeof(in));
		close(fd);
		if (len <= 0)
			continue;
		fz_corpus_add(in);
		n++;
	}
	closedir(d);
	return n;
}

static void fz_corpus_save(const char *dir, const uint8_t *in)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%016llx", dir,
		 (unsigned long long)fz_hash(in, INPUT_LEN));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, in, INPUT_LEN) != INPUT_LEN)
		unlink(path);
	close(fd);
}

/* The input of case @n: random bytes, or a corpus entry mutated. */
static void fz_make_input(uint8_t *in, uint64_t seed, uint64_t n)
{
	uint64_t r = fz_mix(seed ^ fz_mix(n)) | 1;
	unsigned int i, muts;

	if (!fz_ncorpus || vb_rand(&r) % 4 == 0) {
		for (i = 0; i < INPUT_LEN; i++)
			in[i] = vb_rand(&r);
		return;
	}
	memcpy(in, fz_corpus[vb_rand(&r) % fz_ncorpus], INPUT_LEN);
	muts = 1 + vb_rand(&r) % 8;
	while (muts--) {
		unsigned int pos = vb_rand(&r) % INPUT_LEN, len, from;
		const uint8_t *other;

		switch (vb_rand(&r) % 6) {
		case 0:
			in[pos] ^= 1u << (vb_rand(&r) % 8);
			break;
		case 1:
			in[pos] = vb_rand(&r);
			break;
		case 2:
			in[pos] += vb_rand(&r) % 9 - 4;
			break;
		case 3:	/* a run of bytes copied within the input */
			len = 1 + vb_rand(&r) % 32;
			from = vb_rand(&r) % (INPUT_LEN - len);
			if (pos + len > INPUT_LEN)
				len = INPUT_LEN - pos;
			memmove(in + pos, in + from, len);
			break;
		case 4:	/* one thread's stream from another entry */
			other = fz_corpus[vb_rand(&r) % fz_ncorpus];
			pos = STREAM_LEN * (vb_rand(&r) % STREAMS);
			memcpy(in + pos, other + pos, STREAM_LEN);
			break;
		case 5:	/* the rest of a stream left to the PRNG's choices */
			in[pos] = 0;
			break;
		}
	}
}

static int fz_unhex(uint8_t *out, const char *hex)
{
	size_t i, n = strlen(hex);

	memset(out, 0, INPUT_LEN);
	for (i = 0; i + 1 < n && i / 2 < INPUT_LEN; i += 2) {
		unsigned int b;

		if (sscanf(hex + i, "%2x", &b) != 1)
			return -1;
		out[i / 2] = b;
	}
	return 0;
}

/* ---------------------------------------------------------- backends */

/* Paths are shorter than any of the buffers. */
static void fz_copy_path(char *dst, const char *src)
{
	size_t n = strnlen(src, 255);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static void fz_backend_add(const char *kind)
{
	struct fz_backend *b = &fz_be[fz_nbe];
	const char *why = "";
	char table[256];
	int fd;

	memset(b, 0, sizeof(*b));
	snprintf(b->kind, sizeof(b->kind), "%s", kind);
	if (!strcmp(kind, "dm-error")) {
		snprintf(table, sizeof(table), "0 %llu error",
			 DISK_SIZE / VB_SECTOR);
		fd = vb_dm_create(&b->dm, "vbfz-err", table, &why);
		b->all_err = true;
		if (fd >= 0)
			fz_copy_path(b->path, b->dm.path);
	} else if (!strcmp(kind, "dm-delay")) {
		fd = vb_backend_create(&b->lower, "loop", DISK_SIZE, 0, &why);
		if (fd >= 0 && system("modprobe dm_delay 2>/dev/null"))
			; /* built in, or dmsetup will say */
		if (fd >= 0) {
			snprintf(table, sizeof(table), "0 %llu delay %s 0 2",
				 DISK_SIZE / VB_SECTOR, b->lower.path);
			fd = vb_dm_create(&b->dm, "vbfz-delay", table, &why);
		}
		if (fd >= 0)
			fz_copy_path(b->path, b->dm.path);
	} else {
		const char *base = kind;

		/* a file with asynchronous direct I/O instead of the cache */
		if (!strcmp(kind, "ext4-direct") || !strcmp(kind, "tmpfs-direct")) {
			base = kind[0] == 'e' ? "ext4" : "tmpfs";
			b->oflags = O_DIRECT;
		}
		fd = vb_backend_create(&b->b, base, DISK_SIZE, b->oflags, &why);
		if (fd >= 0)
			fz_copy_path(b->path, b->b.path);
		b->is_file = !strcmp(base, "tmpfs") || !strcmp(base, "ext4");
	}
	if (fd < 0) {
		printf("# backend %s: skipped: %s\n", kind, why);
		if (b->lower.kind)
			vb_backend_destroy(&b->lower);
		return;
	}
	b->fd = fd;
	b->size = DISK_SIZE;
	if (b->b.kind && b->b.size && b->b.size < b->size)
		b->size = b->b.size;
	fz_nbe++;
}

static void fz_backends_done(void)
{
	unsigned int i;

	for (i = 0; i < fz_nbe; i++) {
		struct fz_backend *b = &fz_be[i];

		if (b->dm.name[0]) {
			vb_dm_destroy(&b->dm);
			if (b->lower.kind)
				vb_backend_destroy(&b->lower);
		} else {
			vb_backend_destroy(&b->b);
		}
	}
	vb_ext4_shared_done();
}

/* -------------------------------------------------------------- main */

static const char fz_usage_text[] =
	"usage: %s [OPTION]...\n"
	"Fuzz /dev/vhost-blk from several threads: ioctls, rings mutated while the\n"
	"worker reads them, and a verified oracle queue (see the top of the source).\n"
	"\n"
	"  -s, --seed N          run seed (default: from the clock); case n's input\n"
	"                        derives from it and the corpus\n"
	"  -t, --time SECONDS    run for this long (default 60)\n"
	"  -n, --iters N         or this many cases (0: no limit; default 0)\n"
	"  -c, --corpus DIR      load inputs from DIR and save those that reach new\n"
	"                        PCs there (with kcov)\n"
	"  -C, --seed-corpus DIR load inputs from DIR too, read-only (repeatable)\n"
	"  -b, --backends LIST   comma-separated among %s\n"
	"                        (and tmpfs-direct, where tmpfs has O_DIRECT)\n"
	"  -i, --input FILE      run the input in FILE instead of generating them\n"
	"  -x, --input-hex HEX   the same, the input given in hex (as printed)\n"
	"  -r, --repeat N        run the given input N times (default 1)\n"
	"  -v, --verbose         a line per case\n"
	"  -D, --check-doc FILE  check the errno table against vhost-blk.rst, exit\n"
	"  -h, --help            this help\n";

static void fz_usage(FILE *f)
{
	fprintf(f, fz_usage_text, fz_argv0,
		"tmpfs,ext4,ext4-direct,nullb,brd,loop,dm-error,dm-delay");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 't' },
		{ "iters", required_argument, NULL, 'n' },
		{ "corpus", required_argument, NULL, 'c' },
		{ "seed-corpus", required_argument, NULL, 'C' },
		{ "backends", required_argument, NULL, 'b' },
		{ "input", required_argument, NULL, 'i' },
		{ "input-hex", required_argument, NULL, 'x' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-doc", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t seed = 0, n, saved = 0, loaded = 0;
	unsigned int time_s = 60, repeat = 1, pcs0;
	unsigned long long iters = 0;
	const char *corpus = NULL, *why;
	bool have_input = false, have_seed = false, newcov;
	uint8_t in[INPUT_LEN];
	char *list, *tok, *save;
	pthread_t wd;
	int64_t end;
	int opt, fd, rc = 0;
	ssize_t len;

	fz_argv0 = argv[0];
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "s:t:n:c:C:b:i:x:r:vD:h", lo,
				  NULL)) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 't':
			time_s = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			iters = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			corpus = optarg;
			mkdir(corpus, 0755);
			loaded += fz_corpus_load(corpus);
			break;
		case 'C':
			loaded += fz_corpus_load(optarg);
			break;
		case 'b':
			snprintf(fz_be_list, sizeof(fz_be_list), "%s", optarg);
			break;
		case 'i':
			fd = open(optarg, O_RDONLY | O_CLOEXEC);
			memset(in, 0, sizeof(in));
			len = fd < 0 ? -1 : read(fd, in, sizeof(in));
			if (fd >= 0)
				close(fd);
			if (len <= 0) {
				fprintf(stderr, "cannot read %s\n", optarg);
				return 2;
			}
			have_input = true;
			break;
		case 'x':
			if (fz_unhex(in, optarg)) {
				fprintf(stderr, "bad hex input\n");
				return 2;
			}
			have_input = true;
			break;
		case 'r':
			repeat = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			fz_verbose = true;
			break;
		case 'D':
			rc = fz_check_doc(optarg);
			printf("# errno table against %s: %s\n", optarg,
			       rc ? "MISMATCH" : "every errno documented");
			return rc ? 1 : 0;
		case 'h':
			fz_usage(stdout);
			return 0;
		default:
			fz_usage(stderr);
			return 2;
		}
	}
	if (access(VB_DEV_PATH, F_OK)) {
		printf("# SKIP %s missing: vhost_blk not loaded\n", VB_DEV_PATH);
		return 4;
	}
	if (!have_seed)
		seed = fz_mix(time(NULL) ^ getpid());
	signal(SIGPIPE, SIG_IGN);

	why = fz_kcov_probe();
	fz_kcov = !why;
	if (why)
		printf("# kcov: %s: seed-random inputs, nothing saved to the corpus\n",
		       why);
	else
		printf("# kcov: collecting vhost_blk PCs in [%#llx, %#llx)\n",
		       (unsigned long long)fz_text_lo,
		       (unsigned long long)fz_text_hi);

	/* one ext4 for all: mkfs is slow */
	snprintf(vb_ext4_shared, sizeof(vb_ext4_shared), "/tmp/vbfz-ext4-%d",
		 getpid());
	list = strdup(fz_be_list);
	for (tok = strtok_r(list, ",", &save); tok && fz_nbe < MAX_BACKENDS;
	     tok = strtok_r(NULL, ",", &save))
		fz_backend_add(tok);
	free(list);
	if (!fz_nbe) {
		printf("# SKIP no backend could be made\n");
		return 4;
	}
	pthread_create(&wd, NULL, fz_watchdog, NULL);

	if (have_input) {
		for (n = 0; n < repeat && !rc; n++)
			rc = fz_run_case(in, &newcov);
		printf("# %llu runs of the input: %s\n", (unsigned long long)n,
		       rc ? "failed" : "passed");
		fz_backends_done();
		return rc;
	}

	printf("# seed %#llx, %u backends, %llu corpus inputs, %s\n",
	       (unsigned long long)seed, fz_nbe, (unsigned long long)loaded,
	       iters ? "case limit" : "time limit");
	end = now_ms() + time_s * 1000LL;
	for (n = 0; !rc && (iters ? n < iters : now_ms() < end); n++) {
		fz_make_input(in, seed, n);
		pcs0 = fz_cov_count;
		rc = fz_run_case(in, &newcov);
		if (newcov && fz_kcov) {
			fz_corpus_add(in);
			if (corpus)
				fz_corpus_save(corpus, in);
			saved++;
			if (fz_verbose)
				printf("# case %llu: %u new PCs, %u in all\n",
				       (unsigned long long)n,
				       fz_cov_count - pcs0, fz_cov_count);
		}
	}
	printf("# %llu cases in %lld s, seed %#llx%s\n", (unsigned long long)n,
	       (long long)(now_ms() - (end - time_s * 1000LL)) / 1000,
	       (unsigned long long)seed, rc ? ": FAILED" : "");
	if (fz_kcov)
		printf("# coverage: %u distinct vhost_blk PCs; corpus +%llu inputs (%llu loaded)\n",
		       fz_cov_count, (unsigned long long)saved,
		       (unsigned long long)loaded);
	fz_backends_done();
	return rc;
}
