// SPDX-License-Identifier: MIT
/*
 * interactive.c - tcp-client on a terminal: GNU readline, driven from the
 * event loop through readline's callback interface (never a blocking
 * readline() call), so the peer's data is shown while the user types.
 *
 *  - Each line typed is sent with "\n" ("\r\n" with --crlf) and added to
 *    the history, which is kept across runs in
 *    $XDG_STATE_HOME/xport/history (or ~/.local/state/xport/history),
 *    capped at HISTORY_MAX lines.
 *  - Data from the peer is printed above the prompt: the line being typed
 *    is cleared, the data written, and prompt and line redrawn with the
 *    cursor where it was.  A trailing partial line from the peer (a server
 *    prompt such as "login: ") becomes readline's prompt until its line
 *    ends, as rlwrap does, so the user types right after it.
 *  - Ctrl-D on an empty line sends EOF (write_eof: half-close), gives the
 *    terminal back, and keeps printing what the peer still sends.  The
 *    peer closing ends the session with exit 0.  --eof-timeout N gives
 *    up N seconds after Ctrl-D (exit 75); not given or 0: wait for ever,
 *    the same meaning as for relays.
 *  - SIGINT/SIGTERM/SIGHUP: the graceful stop of xport(1) SIGNALS, not a shell's
 *    "discard the line": the connection is closed (flushed), after
 *    --grace seconds reset; exit 0.  A second one resets at once and
 *    exits 128+N.  SIGUSR1 prints an end=open stats line (above the
 *    prompt), SIGWINCH resizes, SIGTSTP restores the terminal before
 *    stopping and redraws after SIGCONT.  The loop's signalfd delivers all
 *    of them, so readline's own signal handlers are turned off.
 *
 * See interactive.h for the contract with cmd_tcp_client.c.
 */
#ifdef CLI_HAVE_READLINE

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "interactive.h"
#include "run.h"

#define HISTORY_MAX 1000
#define PROMPT "> "
/* Longest partial line from the peer shown as the prompt; longer ones
 * (and ones with control characters) are printed as a line of their own. */
#define PEND_MAX 200
/* Keys handled per wakeup, so a paste does not starve the socket. */
#define KEYS_PER_WAKEUP 256

struct ia {
	xp_protocol proto;
	xp_loop *loop;
	xp_transport *t;
	const struct cli_config *c;
	int rl_on;	  /* readline's line handler is installed */
	int reading;	  /* the fd 0 reader is installed */
	int stdin_eof;	  /* Ctrl-D: EOF sent to the peer */
	int write_paused; /* the peer's buffer is over --high-water */
	int peer_eof;
	int lost;
	int stopping; /* a first SIGINT/SIGTERM/SIGHUP was handled */
	int status;
	int status_set;
	const char *end; /* the --stats end= reason, once known */
	xp_handle *grace;
	xp_handle *timer; /* --idle-timeout / --eof-timeout */
	double last_traffic;
	double eof_at;
	char pend[PEND_MAX + 1]; /* the peer's partial line, shown as prompt */
	size_t npend;
	int added_nl; /* we ended a partial line the peer did not */
	int nadded;   /* history lines added this session */
	char hist[PATH_MAX];
	xp_conn_stats st;
};

/* readline's line handler takes no argument: the one session. */
static struct ia *cur;

static void put(const void *data, size_t len)
{
	if (len)
		fwrite(data, 1, len, stdout);
}

/* ---- the peer's data, printed above the prompt --------------------- */

/* Can these bytes be part of readline's prompt?  Control characters would
 * break its idea of the prompt's width. */
static int promptable(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

static void clear_line(void)
{
#if RL_READLINE_VERSION >= 0x0800
	rl_clear_visible_line();
#else
	fputs("\r\033[K", stdout);
#endif
}

/* Redraw prompt (the peer's partial line, else ours) and the line typed. */
static void redraw(struct ia *s)
{
	s->pend[s->npend] = '\0';
	rl_set_prompt(s->npend ? s->pend : PROMPT);
	fflush(stdout);
	rl_on_new_line();
	rl_redisplay();
}

static void show(struct ia *s, const char *data, size_t len)
{
	const char *nl;

	/* We ended the peer's last partial line ourselves: its own line end,
	 * when it comes, must not print an empty line. */
	if (s->added_nl && len) {
		if (data[0] == '\n')
			data++, len--;
		else if (len >= 2 && data[0] == '\r' && data[1] == '\n')
			data += 2, len -= 2;
		s->added_nl = 0;
	}
	if (!len)
		return;
	if (!s->rl_on) {
		put(data, len);
		fflush(stdout);
		return;
	}
	clear_line();
	nl = memrchr(data, '\n', len);
	if (nl) {
		size_t head = (size_t)(nl - data) + 1;

		put(s->pend, s->npend);
		s->npend = 0;
		put(data, head);
		data += head;
		len -= head;
	}
	if (s->npend + len > PEND_MAX || !promptable(data, len)) {
		put(s->pend, s->npend);
		put(data, len);
		put("\n", 1);
		s->npend = 0;
		s->added_nl = 1;
	} else {
		memcpy(s->pend + s->npend, data, len);
		s->npend += len;
	}
	redraw(s);
}

/* Give the terminal back: the partial line typed is dropped (it was never
 * sent), the peer's partial line stays on screen. */
static void rl_stop(struct ia *s)
{
	if (s->reading) {
		xp_remove_reader(s->loop, 0);
		s->reading = 0;
	}
	if (!s->rl_on) {
		fflush(stdout);
		return;
	}
	s->rl_on = 0;
	clear_line();
	rl_callback_sigcleanup();
	rl_callback_handler_remove();
	if (s->npend) {
		put(s->pend, s->npend);
		put("\n", 1);
		s->npend = 0;
		s->added_nl = 1;
	}
	fflush(stdout);
}

/* ---- timers -------------------------------------------------------- */

static int on_timer(void *arg);

/* One timer for both timeouts, re-armed lazily: traffic only updates
 * last_traffic, the timer finds out when it fires. */
static void arm(struct ia *s)
{
	const struct cli_config *c = s->c;
	double when = -1;

	if (s->timer || s->lost)
		return;
	if (c->idle_timeout > 0)
		when = s->last_traffic + c->idle_timeout;
	if (s->stdin_eof && c->eof_timeout > 0) {
		double e = s->eof_at + c->eof_timeout;

		if (when < 0 || e < when)
			when = e;
	}
	if (when >= 0)
		s->timer = xp_call_at(s->loop, when, on_timer, s);
}

static void set_status(struct ia *s, int status, const char *end)
{
	if (s->status_set)
		return;
	s->status_set = 1;
	s->status = status;
	s->end = end;
}

static int on_timer(void *arg)
{
	struct ia *s = arg;
	const struct cli_config *c = s->c;
	double now = xp_loop_time(s->loop);
	int idle = c->idle_timeout > 0 && now >= s->last_traffic + c->idle_timeout;
	int eof = s->stdin_eof && c->eof_timeout > 0 && now >= s->eof_at + c->eof_timeout;

	s->timer = NULL;
	if (!idle && !eof) {
		arm(s);
		return 0;
	}
	rl_stop(s);
	cli_err("%s: %s", s->st.peer, idle ? "idle timeout" : "timed out waiting for EOF");
	set_status(s, CLI_EXIT_TEMPFAIL, "timeout");
	cli_set_linger0(s->t);
	xp_transport_abort(s->t);
	return 0;
}

/* ---- typed lines ------------------------------------------------------ */

static void remember(struct ia *s, const char *line)
{
	HIST_ENTRY *last;

	if (!*line)
		return;
	/* Like HISTCONTROL=ignoredups: the same line twice is kept once. */
	last = history_length ? history_get(history_base + history_length - 1) : NULL;
	if (last && !strcmp(last->line, line))
		return;
	add_history(line);
	s->nadded++;
}

static void send_line(struct ia *s, const char *line)
{
	size_t n = strlen(line);
	const char *eol = s->c->crlf ? "\r\n" : "\n";
	struct iovec iov[2] = {
	    {.iov_base = (void *)line, .iov_len = n},
	    {.iov_base = (void *)eol, .iov_len = strlen(eol)},
	};

	if (xp_transport_writelines(s->t, iov, 2) == 0 && !xp_transport_is_closing(s->t))
		s->st.sent += n + iov[1].iov_len;
	s->last_traffic = xp_loop_time(s->loop);
}

static void send_eof(struct ia *s)
{
	s->stdin_eof = 1;
	s->eof_at = xp_loop_time(s->loop);
	rl_stop(s);
	if (xp_transport_is_closing(s->t))
		return;
	/* A transport that cannot half-close (none of ours should) is
	 * closed instead: the peer still gets its EOF. */
	if (!xp_transport_can_write_eof(s->t) || xp_transport_write_eof(s->t) < 0)
		xp_transport_close(s->t);
	arm(s);
}

static void on_line(char *line)
{
	struct ia *s = cur;

	if (!s)
		return;
	if (!line) {
		send_eof(s);
		return;
	}
	/* The peer's partial line scrolled up together with this one. */
	if (s->npend) {
		s->npend = 0;
		rl_set_prompt(PROMPT);
	}
	remember(s, line);
	send_line(s, line);
	free(line);
}

static int stdin_ready(void)
{
	struct pollfd p = {.fd = 0, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

static int on_stdin(void *arg)
{
	struct ia *s = arg;
	int n = 0;

	/* readline reads one byte per call; drain what is there. */
	do
		rl_callback_read_char();
	while (s->reading && ++n < KEYS_PER_WAKEUP && stdin_ready());
	return 0;
}

static void start_reading(struct ia *s)
{
	if (s->reading || !s->rl_on || s->write_paused || s->lost)
		return;
	if (xp_add_reader(s->loop, 0, on_stdin, s) == 0)
		s->reading = 1;
}

/* ---- the protocol --------------------------------------------------- */

static int p_data(xp_protocol *p, const void *data, size_t len)
{
	struct ia *s = XP_CONTAINER_OF(p, struct ia, proto);

	s->st.received += len;
	s->last_traffic = xp_loop_time(s->loop);
	show(s, data, len);
	return 0;
}

/* The peer closed its side: the session is over (0 closes the socket). */
static int p_eof(xp_protocol *p)
{
	struct ia *s = XP_CONTAINER_OF(p, struct ia, proto);

	s->peer_eof = 1;
	rl_stop(s);
	return 0;
}

static void p_pause(xp_protocol *p)
{
	struct ia *s = XP_CONTAINER_OF(p, struct ia, proto);

	s->write_paused = 1;
	if (s->reading) {
		xp_remove_reader(s->loop, 0);
		s->reading = 0;
	}
}

static void p_resume(xp_protocol *p)
{
	struct ia *s = XP_CONTAINER_OF(p, struct ia, proto);

	s->write_paused = 0;
	start_reading(s);
}

static const char *end_reason(int err)
{
	if (err == -ECONNRESET || err == -EPIPE)
		return "reset";
	return "error";
}

static void p_lost(xp_protocol *p, int err)
{
	struct ia *s = XP_CONTAINER_OF(p, struct ia, proto);

	s->lost = 1;
	rl_stop(s);
	if (s->timer) {
		xp_handle_cancel(s->timer);
		s->timer = NULL;
	}
	if (s->grace) {
		xp_handle_cancel(s->grace);
		s->grace = NULL;
	}
	if (!err) {
		set_status(s, 0, s->peer_eof ? "eof" : "closed");
	} else if (!s->status_set && !s->stopping) {
		cli_err("%s: %s", s->st.peer, cli_strerror(err));
		set_status(s, CLI_EXIT_FAIL, end_reason(err));
	} else {
		set_status(s, 0, "closed");
	}
	s->st.error = err;
	xp_loop_stop(s->loop);
}

static const xp_protocol_ops ia_ops = {
    .connection_lost = p_lost,
    .pause_writing = p_pause,
    .resume_writing = p_resume,
    .data_received = p_data,
    .eof_received = p_eof,
};

/* ---- signals --------------------------------------------------------- */

static int on_grace(void *arg)
{
	struct ia *s = arg;

	s->grace = NULL;
	cli_set_linger0(s->t);
	xp_transport_abort(s->t);
	return 0;
}

static void stop(struct ia *s, int sig)
{
	if (s->lost)
		return;
	if (s->stopping) {
		set_status(s, 128 + sig, "closed");
		cli_set_linger0(s->t);
		xp_transport_abort(s->t);
		return;
	}
	s->stopping = 1;
	rl_stop(s);
	xp_transport_close(s->t);
	if (s->c->grace >= 0)
		s->grace = xp_call_later(s->loop, s->c->grace, on_grace, s);
}

static int on_sigint(void *arg)
{
	stop(arg, SIGINT);
	return 0;
}

static int on_sigterm(void *arg)
{
	stop(arg, SIGTERM);
	return 0;
}

static int on_sighup(void *arg)
{
	stop(arg, SIGHUP);
	return 0;
}

/* SIGUSR1 as xport(1) SIGNALS has it: an `end=open` stats line, above the
 * prompt. */
static int on_sigusr1(void *arg)
{
	struct ia *s = arg;
	double secs = xp_loop_time(s->loop) - s->st.started;

	if (s->rl_on)
		clear_line();
	fflush(stdout);
	cli_stats_line(s->c, &s->st, "open", secs);
	if (s->rl_on)
		redraw(s);
	return 0;
}

static int on_sigwinch(void *arg)
{
	struct ia *s = arg;

	if (s->rl_on)
		rl_resize_terminal();
	return 0;
}

/* Ctrl-Z: SIGTSTP is blocked (signalfd), so stop by hand, with the
 * terminal as the shell expects it; SIGSTOP returns once continued. */
static int on_sigtstp(void *arg)
{
	struct ia *s = arg;

	if (s->rl_on) {
		clear_line();
		fflush(stdout);
		rl_deprep_terminal();
	}
	raise(SIGSTOP);
	if (s->rl_on) {
		rl_prep_terminal(1);
		redraw(s);
	}
	return 0;
}

static const struct {
	int sig;
	xp_callback cb;
} sigs[] = {
    {SIGINT, on_sigint},   {SIGTERM, on_sigterm},   {SIGHUP, on_sighup},
    {SIGUSR1, on_sigusr1}, {SIGWINCH, on_sigwinch}, {SIGTSTP, on_sigtstp},
};

#define NSIGS (sizeof(sigs) / sizeof(sigs[0]))

/* ---- history file ---------------------------------------------------- */

/* mkdir -p with mode 0700 for what it creates. */
static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int history_path(char *buf, size_t size)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	char dir[PATH_MAX];
	int n;

	/* XDG: a relative XDG_STATE_HOME is invalid and ignored. */
	if (xdg && xdg[0] == '/') {
		n = snprintf(dir, sizeof(dir), "%s/xport", xdg);
	} else {
		if (!home || home[0] != '/') {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || home[0] != '/')
			return -1;
		n = snprintf(dir, sizeof(dir), "%s/.local/state/xport", home);
	}
	if (n < 0 || (size_t)n >= sizeof(dir) || mkdirs(dir) < 0)
		return -1;
	n = snprintf(buf, size, "%s/history", dir);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static void history_load(struct ia *s)
{
	using_history();
	stifle_history(HISTORY_MAX);
	if (history_path(s->hist, sizeof(s->hist)) < 0) {
		cli_log(1, "no history file: %s", strerror(errno));
		s->hist[0] = '\0';
		return;
	}
	read_history(s->hist);
}

/* Append this session's lines (so parallel sessions merge), then cap. */
static void history_save(struct ia *s)
{
	int n = s->nadded < history_length ? s->nadded : history_length;
	int r;

	if (!s->hist[0] || n <= 0)
		goto out;
	if (access(s->hist, F_OK) == 0)
		r = append_history(n, s->hist);
	else
		r = write_history(s->hist);
	if (r == 0)
		history_truncate_file(s->hist, HISTORY_MAX);
	else
		cli_log(1, "cannot save history to %s: %s", s->hist, strerror(r));
out:
	clear_history();
}

/* ---- the session ----------------------------------------------------- */

static void rl_setup(void)
{
	rl_readline_name = "xport";
	rl_instream = stdin;
	rl_outstream = stdout;
	/* The loop's signalfd delivers the signals; readline must not
	 * install handlers of its own, nor export LINES/COLUMNS. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_change_environment = 0;
	rl_initialize();
	/* No file-name completion in a network client: TAB is a TAB. */
	rl_bind_key('\t', rl_insert);
}

static void session_init(struct ia *s, xp_loop *loop, xp_transport *t, const struct cli_config *c)
{
	const xp_sockaddr *peer = xp_transport_get_extra_info(t, "peername", NULL);

	memset(s, 0, sizeof(*s));
	s->proto.ops = &ia_ops;
	s->loop = loop;
	s->t = t;
	s->c = c;
	if (peer && peer->len)
		cli_sockaddr_str(&peer->u.sa, peer->len, s->st.peer, sizeof(s->st.peer));
	else
		cli_addr_str(&c->addr, 0, s->st.peer, sizeof(s->st.peer));
	s->st.started = xp_loop_time(loop);
	s->st.end = "open";
	s->last_traffic = s->st.started;
}

static void signals_set(struct ia *s, int on)
{
	for (size_t i = 0; i < NSIGS; i++) {
		if (on)
			xp_add_signal_handler(s->loop, sigs[i].sig, sigs[i].cb, s);
		else
			xp_remove_signal_handler(s->loop, sigs[i].sig);
	}
}

static void session_run(struct ia *s)
{
	xp_transport_set_protocol(s->t, &s->proto);
	xp_transport_set_write_buffer_limits(s->t, (long long)s->c->high_water,
					     (long long)s->c->low_water);
	xp_transport_set_read_size(s->t, s->c->read_size);
	signals_set(s, 1);
	rl_callback_handler_install(PROMPT, on_line);
	s->rl_on = 1;
	start_reading(s);
	xp_transport_resume_reading(s->t);
	arm(s);
	xp_loop_run_forever(s->loop);
	if (!s->lost) {
		/* Stopped by someone else: the transport must not outlive
		 * our protocol. */
		xp_transport_abort(s->t);
		xp_loop_run_forever(s->loop);
	}
	rl_stop(s);
	signals_set(s, 0);
}

int cli_interactive(xp_loop *loop, xp_transport *t, const struct cli_config *c)
{
	struct ia s;

	if (xp_loop_is_running(loop) || cur) {
		cli_err("interactive mode: internal error (loop running)");
		return CLI_EXIT_FAIL;
	}
	session_init(&s, loop, t, c);
	if (xp_transport_is_closing(t)) {
		cli_err("%s: connection closed", s.st.peer);
		return CLI_EXIT_FAIL;
	}
	xp_transport_retain(t);
	cur = &s;
	/* main() runs in the C locale; readline needs the user's character
	 * set to edit UTF-8 (LC_CTYPE only: numbers stay "C"). */
	setlocale(LC_CTYPE, "");
	rl_setup();
	history_load(&s);
	session_run(&s);
	history_save(&s);
	setlocale(LC_CTYPE, "C");
	cur = NULL;
	s.st.seconds = xp_loop_time(loop) - s.st.started;
	s.st.end = s.end ? s.end : "closed";
	if (c->stats)
		cli_stats_line(c, &s.st, s.st.end, s.st.seconds);
	xp_transport_release(t);
	return s.status;
}

#else /* !CLI_HAVE_READLINE */

/* Built without readline (make READLINE=no): tcp-client never calls in. */
typedef int cli_interactive_unused;

#endif
