/* certwright — entry point: global options, the command table, logging, exit codes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/cancel.h"
#include "common/secret.h"
#include "reconcile/git.h"

#define CW_VERSION "0.1.0"

static const struct command {
	const char *name;
	int (*fn)(cw_cli *, int, char **);
	const char *summary;
	const char *usage;      /* the command's own options, for `certwright CMD --help` */
} commands[] = {
	{ "validate", cmd_validate, "check the inventory and its policies; no keys, no network",
	  "certwright [global options] validate\n"
	  "  exit 0 when the inventory is valid, 1 when not (every problem as file:line:col)\n" },
	{ "plan", cmd_plan, "show what apply would do; changes nothing",
	  "certwright [global options] plan [--format text|json|markdown] [--out FILE]\n"
	  "                                  [--target NAME]... [--certificate NAME]...\n"
	  "  --format     text for people (default), json (schema certwright-plan v1), markdown\n"
	  "               for a pull-request comment\n"
	  "  --out FILE   write the plan to FILE (for apply --plan FILE)\n"
	  "  --target, --certificate   only what concerns these (repeatable)\n"
	  "  exit 0 nothing to do, 2 changes pending, 1 error\n" },
	{ "apply", cmd_apply, "issue, renew, deploy and remove so the targets match",
	  "certwright [global options] apply [--plan FILE] [--parallel N] [--no-commit] [--push]\n"
	  "                                   [--target NAME]... [--certificate NAME]... [--allow-now]\n"
	  "  --plan FILE    run a plan saved by plan --format json --out FILE; refused when the\n"
	  "                 inventory, the recorded state or the targets moved since\n"
	  "  --parallel N   targets worked on at once (default 4)\n"
	  "  --no-commit    do not commit the state report to git\n"
	  "  --push         push the report commit (re-committed on top if the remote moved)\n"
	  "  --allow-now    accept the global --now (issues certificates dated from it)\n"
	  "  exit 0 everything converged and verified, 1 something failed\n" },
	{ "status", cmd_status, "every certificate: expiry, renewal time, where it is deployed",
	  "certwright [global options] status [--format text|json]\n" },
};

int cli_command_help(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name)) {
			printf("%s\n%s", commands[i].summary, commands[i].usage);
			printf("global options go before the command: certwright --help\n");
			return EXIT_OK;
		}
	return EXIT_USAGE;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: certwright [-C REPO] [--inventory DIR] [--keystore DIR] [--now TIME]\n"
		"                  [--ref REV] [--passphrase-file FILE] [--timeout SECS] [-v|-q]\n"
		"                  COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nexit codes: 0 ok / nothing to do, 1 error, 2 plan has changes, 64 usage\n"
		   "see README.md for the inventory reference\n");
}

int cli_common_option(cw_cli *cli, int c, const char *command, int *exit_code)
{
	switch (c) {
	case 'h': *exit_code = cli_command_help(command); return 1;
	case 'v': cli->verbose = 1; return 1;
	case 'q': cli->quiet = 1; return 1;
	}
	return 0;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("certwright: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n(run 'certwright --help' for usage)\n", stderr);
	va_end(ap);
	return EXIT_USAGE;
}

void cli_error(const cw_error *err)
{
	fprintf(stderr, "certwright: %s\n", err->msg[0] ? err->msg : "unknown error");
}

void cli_print_diags(const cw_diags *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++) {
		cw_buf b = CW_BUF_INIT;
		cw_diag_format(&d->items[i], &b);
		fprintf(f, "%s\n", b.buf);
		cw_buf_release(&b);
	}
}

int cli_filter_option(cw_cli *cli, const char *opt, const char *val)
{
	cw_diff_filter *f = &cli->opts.filter;
	const char ***list;
	size_t *n;
	if (!strcmp(opt, "target")) {
		list = (const char ***)&f->only_targets;
		n = &f->nonly_targets;
	} else if (!strcmp(opt, "certificate")) {
		list = (const char ***)&f->only_certificates;
		n = &f->nonly_certificates;
	} else {
		return 0;
	}
	*list = cw_xrealloc((void *)*list, (*n + 1) * sizeof(char *));
	(*list)[(*n)++] = val;
	return 1;
}

int cli_write_output(const char *path, const char *data, size_t len)
{
	if (!path || !strcmp(path, "-")) {
		fwrite(data, 1, len, stdout);
		return 0;
	}
	cw_error err = { 0 };
	if (cw_write_file_atomic(path, data, len, 0644, &err) != 0) {
		cli_error(&err);
		return -1;
	}
	return 0;
}

static void log_to_stderr(void *ud, int level, const char *msg)
{
	const cw_cli *cli = ud;
	if (cli->quiet && level > CW_LOG_ERROR)
		return;
	if (level == CW_LOG_DEBUG && !cli->verbose)
		return;
	static const char *const names[] = { "error", "warning", "info", "debug" };
	fprintf(stderr, "certwright: %s: %s\n", names[level], msg);
}

static int read_passphrase(cw_cli *cli, const char *file)
{
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	if (file) {
		char *ref = cw_xasprintf("file:%s", file);
		int rc = cw_secret_resolve(ref, &b, &err);
		free(ref);
		if (rc != 0) {
			cli_error(&err);
			return -1;
		}
	} else {
		const char *env = getenv("CERTWRIGHT_PASSPHRASE");
		if (!env)
			return 0;
		cw_buf_adds(&b, env);
	}
	cli->passphrase_len = b.len;
	cli->passphrase_buf = cw_buf_detach(&b);
	cli->opts.passphrase = cli->passphrase_buf;
	cli->opts.passphrase_len = cli->passphrase_len;
	return 0;
}

/* The repository: -C REPO (default: the current folder), discovered upwards. */
static int find_repo(cw_cli *cli, const char *dir)
{
	cw_error err = { 0 };
	char *workdir = NULL;
	if (cw_git_discover(&workdir, dir ? dir : ".", &err) == 0) {
		cli->opts.repo_dir = workdir;
		return 0;
	}
	if (dir) {
		cli_error(&err);
		return -1;
	}
	return 0; /* no repository: validate/plan still work on a plain folder */
}

enum { OPT_INVENTORY = 1000, OPT_KEYSTORE, OPT_NOW, OPT_REF, OPT_PASSFILE, OPT_TIMEOUT };

static const struct option global_opts[] = {
	{ "inventory", required_argument, NULL, OPT_INVENTORY },
	{ "keystore", required_argument, NULL, OPT_KEYSTORE },
	{ "now", required_argument, NULL, OPT_NOW },
	{ "ref", required_argument, NULL, OPT_REF },
	{ "passphrase-file", required_argument, NULL, OPT_PASSFILE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int parse_globals(cw_cli *cli, int argc, char **argv, const char **repo,
			 const char **passfile)
{
	int c;
	time_t real_now = time(NULL);
	while ((c = getopt_long(argc, argv, "+C:vqhV", global_opts, NULL)) != -1) {
		switch (c) {
		case 'C': *repo = optarg; break;
		case OPT_INVENTORY: cli->opts.inventory_dir = optarg; break;
		case OPT_KEYSTORE: cli->opts.keystore_dir = optarg; break;
		case OPT_REF: cli->opts.ref = optarg; break;
		case OPT_PASSFILE: *passfile = optarg; break;
		case OPT_NOW:
			cli->now_given = 1;
			if (cw_parse_time(optarg, real_now, &cli->opts.now) != 0)
				return cli_usage_error("--now: '%s' is not a time (2027-01-31, "
						       "2027-01-31T12:00:00Z or +90d)", optarg);
			break;
		case OPT_TIMEOUT: {
			char *end;
			long s = strtol(optarg, &end, 10);
			if (*end || s <= 0 || s > 3600)
				return cli_usage_error("--timeout: '%s' is not a number of seconds (1-3600)",
						       optarg);
			cli->opts.timeout_ms = (int)s * 1000;
			break;
		}
		case 'v': cli->verbose = 1; break;
		case 'q': cli->quiet = 1; break;
		case 'h': usage(stdout); exit(EXIT_OK);
		case 'V': printf("certwright %s\n", CW_VERSION); exit(EXIT_OK);
		default: return cli_usage_error("bad global option (global options go before the command)");
		}
	}
	return 0;
}

static void on_signal(int signo)
{
	cw_cancel_request(signo);
}

/* SIGTERM (systemd's timeout), SIGINT (Ctrl-C), SIGHUP: finish the step under way, record
 * it, clean up the private work folder and stop; the journal lets the next run go on.
 * SIGPIPE: a closed pipe is an error to report, not a reason to die. */
static void install_signal_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	cw_cli cli;
	memset(&cli, 0, sizeof(cli));
	cli.opts.now = time(NULL);
	cli.opts.parallel = 4;
	cli.opts.timeout_ms = 30000;
	cli.opts.commit = 1;
	cli.opts.log = log_to_stderr;
	cli.opts.log_ud = &cli;
	cli.opts.keystore_dir = getenv("CERTWRIGHT_KEYSTORE");
	const char *repo = NULL, *passfile = NULL;

	int rc = parse_globals(&cli, argc, argv, &repo, &passfile);
	if (rc)
		return rc;
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			cmd = &commands[i];
	if (!cmd)
		return cli_usage_error("'%s' is not a command", name);

	install_signal_handlers();
	cw_git_init();
	if (find_repo(&cli, repo) != 0 || read_passphrase(&cli, passfile) != 0) {
		cw_git_shutdown();
		return EXIT_FAIL;
	}
	optind++;
	int cargc = argc - optind + 1;
	char **cargv = argv + optind - 1;
	optind = 1;
	rc = cmd->fn(&cli, cargc, cargv);

	if (cli.passphrase_buf)
		cw_memzero(cli.passphrase_buf, cli.passphrase_len);
	free(cli.passphrase_buf);
	free((void *)cli.opts.repo_dir);
	free((void *)cli.opts.filter.only_targets);
	free((void *)cli.opts.filter.only_certificates);
	cw_git_shutdown();
	return rc;
}
