// SPDX-License-Identifier: MIT
/*
 * subprocess.c - subprocess transports (asyncio's BaseSubprocessTransport
 * with its pipe protocols).
 *
 * The child is spawned with fork + exec; a close-on-exec "error pipe" tells
 * the parent whether exec worked, so a missing program fails the future
 * with -ENOENT and no transport exists.  Each PIPE stream becomes a pipe
 * transport (pipe.c) whose small internal protocol forwards to the user's
 * SubprocessProtocol with the fd number.  With opts.pty the child's three
 * descriptors are one pseudo-terminal slave, and the master is both the
 * stdin writer and the stdout reader (two descriptors, one terminal).
 *
 * Only our own child is ever waited for: a pidfd (or, without pidfd_open,
 * a 50 ms waitid(pid, WNOHANG) timer) tells when it exited.  No SIGCHLD
 * handler, no waitpid(-1): other children of the process are left alone.
 * Waits and signals go through the pidfd, which cannot name a process that
 * reused the pid after someone else reaped our child.
 */
#include "internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_INTERVAL 0.05 /* seconds between waitpid polls without pidfd */
#define XP_P_PIDFD 3	   /* waitid's idtype, missing from older headers */

bool xp__subprocess_no_pidfd;

extern char **environ;

struct subproc;

/* The protocol of one pipe transport: forwards to the user's protocol. */
struct spipe {
	xp_protocol proto;
	struct subproc *sp;
	xp_transport *t; /* retained until the subprocess is destroyed */
	int fd;		 /* 0, 1 or 2: the child's descriptor */
	bool lost;	 /* pipe_connection_lost delivered */
};

struct subproc {
	xp_transport base;
	pid_t pid;
	int returncode;
	bool exited;   /* reaped; returncode valid */
	bool watching; /* exit watcher started */
	bool finished; /* connection_lost queued */
	int lost_err;
	int pidfd;	 /* -1 without pidfd */
	struct xp_io io; /* on pidfd */
	xp_handle *poll; /* the waitpid timer, retained */
	struct spipe pipes[3];
};

static struct subproc *to_sp(const xp_transport *t)
{
	return XP_CONTAINER_OF(t, struct subproc, base);
}

static xp_protocol_ops const *user_ops(const struct subproc *sp, xp_protocol **p)
{
	*p = sp->base.protocol;
	return *p && (*p)->ops ? (*p)->ops : NULL;
}

/* ---- finishing ---------------------------------------------------------- */

/* connection_lost comes last: after the exit and after every pipe (sem 83). */
static void sp_try_finish(struct subproc *sp)
{
	if (sp->finished || !sp->exited)
		return;
	for (int i = 0; i < 3; i++)
		if (sp->pipes[i].t && !sp->pipes[i].lost)
			return;
	sp->finished = true;
	xp__transport_lost(&sp->base, sp->lost_err);
}

/* ---- the pipes' protocol ---------------------------------------------- */

static struct spipe *to_spipe(xp_protocol *p)
{
	return XP_CONTAINER_OF(p, struct spipe, proto);
}

static int spipe_data(xp_protocol *p, const void *data, size_t len)
{
	struct spipe *s = to_spipe(p);
	xp_protocol *up;
	const xp_protocol_ops *ops = user_ops(s->sp, &up);

	/* A failure here fails the pipe, as an exception would in asyncio. */
	if (ops && ops->pipe_data_received)
		return ops->pipe_data_received(up, s->fd, data, len);
	return 0;
}

static void spipe_lost(xp_protocol *p, int err)
{
	struct spipe *s = to_spipe(p);
	xp_protocol *up;
	const xp_protocol_ops *ops = user_ops(s->sp, &up);

	s->lost = true;
	if (ops && ops->pipe_connection_lost)
		ops->pipe_connection_lost(up, s->fd, err);
	sp_try_finish(s->sp);
}

/* stdin's flow control is the subprocess protocol's (asyncio does so). */
static void spipe_pause(xp_protocol *p)
{
	xp_protocol *up;
	const xp_protocol_ops *ops = user_ops(to_spipe(p)->sp, &up);

	if (ops && ops->pause_writing)
		ops->pause_writing(up);
}

static void spipe_resume(xp_protocol *p)
{
	xp_protocol *up;
	const xp_protocol_ops *ops = user_ops(to_spipe(p)->sp, &up);

	if (ops && ops->resume_writing)
		ops->resume_writing(up);
}

static const xp_protocol_ops spipe_ops = {
    .connection_lost = spipe_lost,
    .pause_writing = spipe_pause,
    .resume_writing = spipe_resume,
    .data_received = spipe_data,
};

/* ---- watching the child ------------------------------------------------- */

static void sp_stop_watching(struct subproc *sp)
{
	if (sp->pidfd >= 0) {
		xp__io_close(sp->base.loop, &sp->io);
		close(sp->pidfd);
		sp->pidfd = -1;
	}
	xp__timer_cancel(&sp->poll);
}

static void sp_exited(struct subproc *sp, int returncode)
{
	xp_protocol *up;
	const xp_protocol_ops *ops;

	sp->exited = true;
	sp->returncode = returncode;
	sp_stop_watching(sp);
	ops = user_ops(sp, &up);
	if (ops && ops->process_exited)
		ops->process_exited(up);
	sp_try_finish(sp);
}

/* waitid on our child: through the pidfd when there is one, since a pid
 * names another process once someone else reaped ours and it was reused; a
 * pidfd cannot.  si->si_pid stays 0 while the child runs (WNOHANG). */
static int sp_waitid(const struct subproc *sp, int flags, siginfo_t *si)
{
	int r = -1;

	memset(si, 0, sizeof(*si));
	if (sp->pidfd >= 0) {
		do
			r = waitid((idtype_t)XP_P_PIDFD, (id_t)sp->pidfd, si, flags);
		while (r < 0 && errno == EINTR);
		if (r == 0 || errno != EINVAL) /* EINVAL: kernel before 5.4 */
			return r < 0 ? -errno : 0;
	}
	do
		r = waitid(P_PID, (id_t)sp->pid, si, flags);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Reap our child if it has exited; true if it has. */
static bool sp_reap(struct subproc *sp)
{
	siginfo_t si;
	int r;

	if (sp->exited)
		return true;
	r = sp_waitid(sp, WEXITED | WNOHANG, &si);
	if (r == 0 && si.si_pid == 0)
		return false;
	/* Killed by signal N is -N, as in asyncio.  An error means someone
	 * else reaped it: the code is lost. */
	if (r < 0)
		sp_exited(sp, 0);
	else
		sp_exited(sp, si.si_code == CLD_EXITED ? si.si_status : -si.si_status);
	return true;
}

/*
 * Signal the child unless it is known to be gone, as Popen does: a pid
 * whose process has exited may be reaped by someone else (a SIGCHLD
 * handler, SIGCHLD ignored) and reused.  The pidfd names our process only;
 * without one, waitid(WNOWAIT) tells whether our child still runs.  An
 * exited child counts as signalled: its exit is about to be reported.
 */
static int sp_signal(struct subproc *sp, int sig)
{
	siginfo_t si;

	if (sp->exited)
		return 0;
#ifdef SYS_pidfd_send_signal
	if (sp->pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, sp->pidfd, sig, NULL, 0) == 0)
			return 0;
		if (errno != ENOSYS)
			return errno == ESRCH ? 0 : -errno;
	}
#endif
	if (sp_waitid(sp, WEXITED | WNOHANG | WNOWAIT, &si) < 0 || si.si_pid != 0)
		return 0;
	return kill(sp->pid, sig) < 0 ? -errno : 0;
}

static void sp_pidfd_cb(xp_loop *loop, struct xp_io *w, unsigned revents)
{
	sp_reap(XP_CONTAINER_OF(w, struct subproc, io));
}

static int sp_poll_cb(void *arg)
{
	struct subproc *sp = arg;

	xp_handle_release(sp->poll);
	sp->poll = NULL;
	if (!sp_reap(sp))
		sp->poll = xp__timer_start(sp->base.loop, POLL_INTERVAL, sp_poll_cb, sp);
	return 0;
}

/* Started once connection_made was delivered, so process_exited follows it. */
static void sp_watch(struct subproc *sp)
{
	if (sp->watching || sp->exited)
		return;
	sp->watching = true;
	if (sp->pidfd >= 0) {
		xp__io_init(&sp->io, sp->pidfd, sp_pidfd_cb);
		if (xp__io_start(sp->base.loop, &sp->io, XP_IO_READ) == 0)
			return;
		close(sp->pidfd);
		sp->pidfd = -1;
	}
	sp->poll = xp_handle_retain(xp_call_soon(sp->base.loop, sp_poll_cb, sp));
}

/* ---- vtable ------------------------------------------------------------- */

static void sp_made(xp_transport *t)
{
	sp_watch(to_sp(t));
}

/*
 * Close the pipes and kill a child that still runs (sem 81).  A zombie
 * ignores the SIGKILL and keeps its real exit status.  connection_lost
 * follows the exit and the pipes' ends.
 */
static void sp_close(xp_transport *t)
{
	struct subproc *sp = to_sp(t);

	for (int i = 0; i < 3; i++)
		if (sp->pipes[i].t && !sp->pipes[i].lost)
			xp_transport_close(sp->pipes[i].t);
	sp_signal(sp, SIGKILL);
	sp_watch(sp); /* close() inside connection_made: made never ran */
}

static void sp_force_close(xp_transport *t, int err)
{
	struct subproc *sp = to_sp(t);

	if (!sp->lost_err)
		sp->lost_err = err;
	for (int i = 0; i < 3; i++)
		if (sp->pipes[i].t && !sp->pipes[i].lost)
			xp_transport_abort(sp->pipes[i].t);
	sp_signal(sp, SIGKILL);
	sp_watch(sp);
}

static const void *sp_get_extra_info(xp_transport *t, const char *key, const void *dflt)
{
	if (!strcmp(key, "subprocess"))
		return &to_sp(t)->pid;
	return dflt;
}

static pid_t sp_get_pid(const xp_transport *t)
{
	return to_sp(t)->pid;
}

static xp_transport *sp_get_pipe_transport(xp_transport *t, int fd)
{
	if (fd < 0 || fd > 2)
		return NULL;
	return to_sp(t)->pipes[fd].t;
}

static int sp_get_returncode(const xp_transport *t, int *code)
{
	const struct subproc *sp = to_sp(t);

	if (!sp->exited)
		return -EAGAIN;
	if (code)
		*code = sp->returncode;
	return 0;
}

static int sp_send_signal(xp_transport *t, int sig)
{
	struct subproc *sp = to_sp(t);

	if (sp->finished)
		return -ESRCH;
	return sp_signal(sp, sig);
}

static void sp_destroy(xp_transport *t)
{
	struct subproc *sp = to_sp(t);

	if (!sp->exited) {
		siginfo_t si;

		/* Only if the loop went away first: do not leave a zombie. */
		sp_signal(sp, SIGKILL);
		sp_waitid(sp, WEXITED, &si);
		sp->exited = true;
	}
	sp_stop_watching(sp);
	for (int i = 0; i < 3; i++) {
		if (sp->pipes[i].t)
			xp_transport_release(sp->pipes[i].t);
		sp->pipes[i].t = NULL;
	}
}

static const struct xp_transport_vt sp_vt = {
    .kind = XP_TRANSPORT_SUBPROCESS,
    .name = "subprocess",
    .made = sp_made,
    .close = sp_close,
    .force_close = sp_force_close,
    .get_extra_info = sp_get_extra_info,
    .get_pid = sp_get_pid,
    .get_pipe_transport = sp_get_pipe_transport,
    .get_returncode = sp_get_returncode,
    .send_signal = sp_send_signal,
    .destroy = sp_destroy,
};

/* ---- spawning ----------------------------------------------------------- */

/* What the child needs, all prepared by the parent: after fork only
 * async-signal-safe calls are allowed (other threads may hold locks). */
struct spawn {
	int child_fd[3];  /* -1: inherit; STDOUT merge handled by merge_err */
	int parent_fd[3]; /* our end of each PIPE, else -1 */
	bool own[3];	  /* child_fd[i] is a pipe end we made */
	bool merge_err;	  /* stderr=STDOUT */
	int devnull;
	int errpipe[2];
	char **paths; /* candidate program paths, NULL-terminated */
	char *const *argv;
	char *const *envp;
	const char *cwd;
	bool new_session;
	bool pty;
	int pty_slave; /* the child's stdin, stdout and stderr; else -1 */
	int max_fd;    /* for the close() fallback */
};

static void spawn_init(struct spawn *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 3; i++)
		s->child_fd[i] = s->parent_fd[i] = -1;
	s->devnull = s->errpipe[0] = s->errpipe[1] = s->pty_slave = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void spawn_cleanup(struct spawn *s)
{
	for (int i = 0; i < 3; i++) {
		/* FD-mode descriptors are the caller's, devnull is shared */
		if (s->own[i])
			close_fd(&s->child_fd[i]);
		close_fd(&s->parent_fd[i]);
	}
	close_fd(&s->devnull);
	close_fd(&s->pty_slave);
	close_fd(&s->errpipe[0]);
	close_fd(&s->errpipe[1]);
	if (s->paths) {
		for (char **p = s->paths; *p; p++)
			free(*p);
		free(s->paths);
	}
}

/* Keep our descriptors off 0..2 so the child's dup2s cannot clobber them
 * (a parent started with closed stdio gets them from pipe()). */
static int fd_above_stdio(int *fd)
{
	int nfd;

	if (*fd > 2)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (nfd < 0)
		return -errno;
	close(*fd);
	*fd = nfd;
	return 0;
}

static int make_pipe(int fds[2])
{
	int r;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	r = fd_above_stdio(&fds[0]);
	if (!r)
		r = fd_above_stdio(&fds[1]);
	return r;
}

static int spawn_stdio(struct spawn *s, int i, const xp_stdio *io)
{
	int fds[2], r;

	switch (io->mode) {
	case XP_STDIO_PIPE:
		r = make_pipe(fds);
		if (r)
			return r;
		/* stdin: the child reads fds[0]; stdout/err: it writes fds[1] */
		s->child_fd[i] = i == 0 ? fds[0] : fds[1];
		s->parent_fd[i] = i == 0 ? fds[1] : fds[0];
		s->own[i] = true;
		return 0;
	case XP_STDIO_DEVNULL:
		if (s->devnull < 0) {
			s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (s->devnull < 0 || fd_above_stdio(&s->devnull) < 0)
				return -errno;
		}
		s->child_fd[i] = s->devnull;
		return 0;
	case XP_STDIO_INHERIT:
		return 0;
	case XP_STDIO_FD:
		if (io->fd < 0 || fcntl(io->fd, F_GETFD) < 0)
			return -EBADF;
		s->child_fd[i] = io->fd;
		return 0;
	case XP_STDIO_STDOUT:
		if (i != 2)
			return -EINVAL;
		s->merge_err = true;
		return 0;
	}
	return -EINVAL;
}

/*
 * A new terminal: the master is the parent's, twice (fd 0's write
 * transport and fd 1's read transport each close their own descriptor;
 * the terminal hangs up when both have), the slave all three of the
 * child's.  Opened with O_NOCTTY: it becomes the child's controlling
 * terminal only by TIOCSCTTY, in its new session.
 */
static int spawn_pty(struct spawn *s, const xp_subprocess_opts *o)
{
	struct winsize ws = {.ws_row = o->pty_rows ? o->pty_rows : 24,
			     .ws_col = o->pty_cols ? o->pty_cols : 80};
	char name[64];
	int m, r;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	s->parent_fd[1] = m;
	if ((r = fd_above_stdio(&s->parent_fd[1])) != 0)
		return r;
	m = s->parent_fd[1];
	if (grantpt(m) < 0 || unlockpt(m) < 0 || (errno = ptsname_r(m, name, sizeof(name))) != 0)
		return -errno;
	s->pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s->pty_slave < 0 || (r = fd_above_stdio(&s->pty_slave)) != 0)
		return s->pty_slave < 0 ? -errno : r;
	if (ioctl(s->pty_slave, TIOCSWINSZ, &ws) < 0)
		return -errno;
	s->parent_fd[0] = fcntl(m, F_DUPFD_CLOEXEC, 3);
	if (s->parent_fd[0] < 0)
		return -errno;
	for (int i = 0; i < 3; i++)
		s->child_fd[i] = s->pty_slave;
	s->new_session = s->pty = true;
	return 0;
}

/* Programs to try, in order, like execvp's PATH search. */
static int spawn_paths(struct spawn *s, const char *file)
{
	const char *path, *p;
	size_t n = 2, flen = strlen(file);

	if (!*file)
		return -ENOENT;
	path = strchr(file, '/') ? NULL : getenv("PATH");
	if (!strchr(file, '/') && !path)
		path = "/bin:/usr/bin";
	for (p = path; p && *p; p++)
		n += *p == ':';
	s->paths = calloc(n, sizeof(char *));
	if (!s->paths)
		return -ENOMEM;
	if (!path) {
		s->paths[0] = strdup(file);
		return s->paths[0] ? 0 : -ENOMEM;
	}
	n = 0;
	for (p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		char *full = malloc(dlen + flen + 3);
		if (!full)
			return -ENOMEM;
		/* An empty PATH entry means the current directory. */
		if (dlen)
			memcpy(full, p, dlen);
		else
			full[dlen++] = '.';
		full[dlen] = '/';
		memcpy(full + dlen + 1, file, flen + 1);
		s->paths[n++] = full;
		if (!*end)
			break;
		p = end;
	}
	return 0;
}

/* ---- in the child (async-signal-safe only) ------------------------------ */

static void child_report(int fd, int err)
{
	ssize_t r;

	do
		r = write(fd, &err, sizeof(err));
	while (r < 0 && errno == EINTR);
	_exit(127);
}

/* Close every descriptor above 2 except keep (the error pipe). */
static void child_close_fds(int keep, int max_fd)
{
	char buf[1024];
	int dir;

	if (keep > 3 && syscall(SYS_close_range, 3, keep - 1, 0) == 0 &&
	    syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
		return;
	if (keep == 3 && syscall(SYS_close_range, 4, ~0U, 0) == 0)
		return;
	/* Older kernels: list /proc/self/fd with the raw syscall (no malloc). */
	dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		long n;
		while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
			for (long off = 0; off < n;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				int fd = 0;
				const char *c = d->d_name;
				for (; *c >= '0' && *c <= '9'; c++)
					fd = fd * 10 + (*c - '0');
				if (!*c && c != d->d_name && fd > 2 && fd != keep && fd != dir)
					close(fd);
				off += d->d_reclen;
			}
		}
		close(dir);
		return;
	}
	for (int fd = 3; fd < max_fd; fd++)
		if (fd != keep)
			close(fd);
}

static void child_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	/* The loop may block signals for its signalfd and ignore SIGPIPE;
	 * the program gets the defaults. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int child_stdio(struct spawn *s)
{
	int src[3];

	/* First lift sources off 0..2 (an FD-mode fd may be 0..2 itself), then
	 * dup2 into place; dup2 clears close-on-exec on the targets. */
	for (int i = 0; i < 3; i++) {
		src[i] = s->child_fd[i];
		if (src[i] >= 0 && src[i] < 3) {
			src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
			if (src[i] < 0)
				return errno;
		}
	}
	for (int i = 0; i < 3; i++)
		if (src[i] >= 0 && dup2(src[i], i) < 0)
			return errno;
	if (s->merge_err && dup2(1, 2) < 0)
		return errno;
	return 0;
}

static void child_exec(struct spawn *s)
{
	int err = 0, eacces = 0;

	if (s->new_session && setsid() < 0)
		child_report(s->errpipe[1], errno);
	err = child_stdio(s);
	if (err)
		child_report(s->errpipe[1], err);
	if (s->pty && ioctl(0, TIOCSCTTY, 0) < 0)
		child_report(s->errpipe[1], errno);
	child_close_fds(s->errpipe[1], s->max_fd);
	if (s->cwd && chdir(s->cwd) < 0)
		child_report(s->errpipe[1], errno);
	child_signals();
	for (char **p = s->paths; *p; p++) {
		execve(*p, s->argv, s->envp);
		err = errno;
		if (err == EACCES)
			eacces = 1;
		else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
			 err != ETIMEDOUT)
			child_report(s->errpipe[1], err); /* like execvp: a real error */
	}
	child_report(s->errpipe[1], eacces ? EACCES : err);
}

/* ---- in the parent ------------------------------------------------------ */

static int spawn_prepare(struct spawn *s, const char *file, char *const argv[],
			 const xp_subprocess_opts *o)
{
	static const xp_subprocess_opts defaults;
	struct rlimit rl;
	int r;

	if (!o)
		o = &defaults;
	if (o->pty)
		r = spawn_pty(s, o);
	else if (!(r = spawn_stdio(s, 0, &o->in)) && !(r = spawn_stdio(s, 1, &o->out)))
		r = spawn_stdio(s, 2, &o->err);
	if (r)
		return r;
	if (!o->pty && (o->in.mode == XP_STDIO_STDOUT || o->out.mode == XP_STDIO_STDOUT))
		return -EINVAL;
	r = spawn_paths(s, file);
	if (r)
		return r;
	r = make_pipe(s->errpipe);
	if (r)
		return r;
	s->argv = argv;
	s->envp = o->envp ? o->envp : environ;
	s->cwd = o->cwd;
	s->new_session = s->new_session || o->new_session;
	s->max_fd =
	    getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
	return 0;
}

/* Fork and exec; 0 with *pid, or the exec error (the child is reaped). */
static int spawn_run(struct spawn *s, pid_t *pid)
{
	sigset_t all, old;
	ssize_t n;
	int err = 0;

	/* No handler may run in the child before it resets them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	*pid = fork();
	if (*pid == 0)
		child_exec(s);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (*pid < 0)
		return -err;
	close_fd(&s->errpipe[1]);
	/* EOF: exec worked (the pipe was close-on-exec).  Else its errno. */
	do
		n = read(s->errpipe[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(err))
		return 0;
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	return err > 0 ? -err : -ECHILD;
}

static int sp_open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	static bool unsupported; /* ENOSYS once: do not ask again */

	if (!xp__subprocess_no_pidfd && !__atomic_load_n(&unsupported, __ATOMIC_RELAXED)) {
		int fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0) {
			xp__set_cloexec(fd);
			return fd;
		}
		if (errno == ENOSYS)
			__atomic_store_n(&unsupported, true, __ATOMIC_RELAXED);
	}
#endif
	return -1;
}

/* Wrap each parent pipe end in a pipe transport; started before the
 * subprocess transport so that their connection_made run first. */
static int sp_make_pipes(struct subproc *sp, struct spawn *s)
{
	for (int i = 0; i < 3; i++) {
		struct spipe *sp_pipe = &sp->pipes[i];
		xp_transport *pt;

		sp_pipe->proto.ops = &spipe_ops;
		sp_pipe->sp = sp;
		sp_pipe->fd = i;
		if (s->parent_fd[i] < 0)
			continue;
		pt = xp__pipe_new(sp->base.loop, s->parent_fd[i], i == 0, &sp_pipe->proto);
		if (!pt)
			return -errno;
		s->parent_fd[i] = -1; /* the transport has it now */
		if (s->pty)
			xp__pipe_set_pty(pt);
		sp_pipe->t = xp_transport_retain(pt);
		if (xp__transport_start(pt, NULL) < 0) {
			/* Never started: nothing to wait for, just the fd to close. */
			sp_pipe->lost = true;
			xp_transport_abort(pt);
			return -ENOMEM;
		}
	}
	return 0;
}

static void sp_abandon(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Takes the child: on failure before a transport exists, it is killed and
 * reaped here; after, the closed transport does so. */
static int sp_start(xp_loop *loop, xp_protocol_factory factory, void *arg, struct spawn *s,
		    pid_t pid, xp_future *fut)
{
	struct subproc *sp;
	xp_transport *t;
	xp_protocol *p;
	int r;

	/* The transport first: a protocol from the factory must never be
	 * left without connection_made and connection_lost. */
	t = xp__transport_new(sizeof(*sp), &sp_vt, loop, NULL);
	p = t ? factory(arg) : NULL;
	if (!p) {
		if (t) {
			xp_list_remove(&t->tracked.node);
			xp_transport_release(t);
		}
		sp_abandon(pid);
		return t ? XP_ECALLBACK : -ENOMEM;
	}
	t->protocol = p;
	sp = to_sp(t);
	sp->pid = pid;
	sp->pidfd = sp_open_pidfd(pid);
	t->reading = false;
	r = sp_make_pipes(sp, s);
	if (!r)
		r = xp__transport_start(t, fut);
	if (r) {
		/* Nothing started can be undone cleanly: let it run its course
		 * as a closed transport. */
		xp__transport_start(t, NULL);
		xp_transport_close(t);
		return r == XP_ECLOSED ? -ENOMEM : r;
	}
	return 0;
}

static xp_future *sp_spawn(xp_loop *loop, xp_protocol_factory factory, void *arg, const char *file,
			   char *const argv[], const xp_subprocess_opts *opts)
{
	struct spawn s;
	xp_future *fut;
	pid_t pid;
	int r;

	if (!loop || !factory || !file || !argv || !argv[0]) {
		errno = EINVAL;
		return NULL;
	}
	fut = xp_future_new(loop);
	if (!fut)
		return NULL;
	spawn_init(&s);
	r = spawn_prepare(&s, file, argv, opts);
	if (!r)
		r = spawn_run(&s, &pid);
	if (!r) {
		/* The child has its ends now. */
		for (int i = 0; i < 3; i++)
			if (s.own[i])
				close_fd(&s.child_fd[i]);
		close_fd(&s.pty_slave); /* else the master never reads EOF */
		r = sp_start(loop, factory, arg, &s, pid, fut);
	}
	spawn_cleanup(&s);
	if (r)
		xp_future_set_error(fut, r);
	return fut;
}

xp_future *xp_subprocess_exec(xp_loop *loop, xp_protocol_factory factory, void *arg,
			      const char *file, char *const argv[], const xp_subprocess_opts *opts)
{
	return sp_spawn(loop, factory, arg, file, argv, opts);
}

xp_future *xp_subprocess_shell(xp_loop *loop, xp_protocol_factory factory, void *arg,
			       const char *cmd, const xp_subprocess_opts *opts)
{
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};

	if (!cmd) {
		errno = EINVAL;
		return NULL;
	}
	return sp_spawn(loop, factory, arg, "/bin/sh", argv, opts);
}
