/*
 * cmd — the command line. The ONLY place that prints and that maps results to exit
 * codes; each command is one cmd_<name>() taking its own arguments after the global
 * options were parsed into cw_options.
 */
#ifndef CW_CMD_H
#define CW_CMD_H

#include <stdio.h>
#include "reconcile/engine.h"

/* Exit codes (README "Exit codes"). */
enum {
	EXIT_OK = 0,        /* validate: valid; plan: nothing to do; apply: converged */
	EXIT_FAIL = 1,      /* errors: invalid inventory, failed action, unreachable target */
	EXIT_CHANGES = 2,   /* plan: changes pending */
	EXIT_USAGE = 64,    /* bad command line */
};

typedef struct {
	cw_options opts;
	int verbose;
	int quiet;
	int now_given;            /* --now was on the command line */
	char *passphrase_buf;     /* owned; wiped at exit */
	size_t passphrase_len;
} cw_cli;

int cmd_validate(cw_cli *cli, int argc, char **argv);
int cmd_plan(cw_cli *cli, int argc, char **argv);
int cmd_apply(cw_cli *cli, int argc, char **argv);
int cmd_status(cw_cli *cli, int argc, char **argv);

/* Shared helpers (cmd/main.c). */
void cli_print_diags(const cw_diags *d, FILE *f);
void cli_error(const cw_error *err);
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Adds "--target NAME" / "--certificate NAME" to the filter; 1 when consumed. */
int cli_filter_option(cw_cli *cli, const char *opt, const char *val);
int cli_write_output(const char *path, const char *data, size_t len);
/* Prints `certwright NAME --help`. */
int cli_command_help(const char *name);
/* Options every command takes after its name too: -h/--help, -v, -q. 1 when handled
 * (*exit_code set for --help), 0 when not one of them. */
int cli_common_option(cw_cli *cli, int c, const char *command, int *exit_code);

#endif
