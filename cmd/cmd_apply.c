/* certwright apply — run the plan; exit 0 only when everything converged and verified. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

static int load_saved_plan(const char *path, cw_plan *plan)
{
	cw_buf b = CW_BUF_INIT;
	cw_error err = { 0 };
	cw_plan_init(plan);
	int rc = cw_read_file(path, 64u << 20, &b, &err);
	if (rc == 0)
		rc = cw_plan_parse_json(plan, b.buf, b.len, &err);
	cw_buf_release(&b);
	if (rc != 0) {
		fprintf(stderr, "certwright: %s: %s%s\n", path, err.msg,
			strstr(err.msg, "not valid JSON") ? " (save a plan with: certwright plan "
							    "--format json --out FILE)" : "");
		cw_plan_release(plan);
	}
	return rc;
}

static void print_summary(const cw_apply_result *res)
{
	for (size_t i = 0; i < res->nsteps; i++) {
		const cw_step_result *s = &res->steps[i];
		printf("%s %-9s %s%s%s%s%s\n", s->ok ? "ok  " : "FAIL", s->kind, s->name,
		       s->target ? " -> " : "", s->target ? s->target : "", s->ok ? "" : ": ",
		       s->ok ? "" : (s->error ? s->error : "failed"));
	}
	if (!res->nsteps)
		printf("Nothing to do. The targets match the inventory.\n");
	else
		printf("\n%zu action(s) done, %zu failed.%s\n", res->nsteps - res->failed, res->failed,
		       res->committed ? " State report committed." : "");
}

int cmd_apply(cw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plan", required_argument, NULL, 'p' },
		{ "parallel", required_argument, NULL, 'j' },
		{ "no-commit", no_argument, NULL, 'n' },
		{ "push", no_argument, NULL, 'P' },
		{ "target", required_argument, NULL, 't' },
		{ "certificate", required_argument, NULL, 'c' },
		{ "allow-now", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plan_file = NULL;
	int allow_now = 0;
	int c;
	while ((c = getopt_long(argc, argv, "j:hvq", opts, NULL)) != -1) {
		switch (c) {
		case 'p': plan_file = optarg; break;
		case 'j': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64)
				return cli_usage_error("apply --parallel: '%s' is not a number from 1 to 64",
						       optarg);
			cli->opts.parallel = (int)n;
			break;
		}
		case 'n': cli->opts.commit = 0; break;
		case 'P': cli->opts.push = 1; break;
		case 't': cli_filter_option(cli, "target", optarg); break;
		case 'c': cli_filter_option(cli, "certificate", optarg); break;
		case 'N': allow_now = 1; break;
		default: {
			int code;
			if (!cli_common_option(cli, c, "apply", &code))
				return EXIT_USAGE;
			if (c == 'h')
				return code;
		}
		}
	}
	if (optind < argc)
		return cli_usage_error("apply: unexpected argument '%s'", argv[optind]);
	/* certificates and CRLs issued under a pretend time are dated from it: on a live
	 * PKI that means "not yet valid" everywhere. Previews are what `plan --now` is for. */
	if (cli->now_given && !allow_now)
		return cli_usage_error("apply: --now would date what it issues from the pretended "
				       "time; use plan --now to preview, or add --allow-now (tests, "
				       "scratch copies)");
	if (cli->opts.push && !cli->opts.commit)
		return cli_usage_error("apply: --push needs the commit that --no-commit turns off");
	if (cli->opts.commit && !cli->opts.repo_dir)
		return cli_usage_error("apply: not inside a git repository: use -C REPO, or "
				       "--no-commit to skip the state report");

	cw_plan saved, *savedp = NULL;
	if (plan_file) {
		if (load_saved_plan(plan_file, &saved) != 0)
			return EXIT_FAIL;
		savedp = &saved;
	}
	cw_apply_result res;
	cw_error err = { 0 };
	int rc = cw_engine_apply(&cli->opts, savedp, &res, &err);
	cli_print_diags(&res.plan.diags, stderr);
	/* a refused apply (lock, passphrase, stale plan) did nothing: say only why */
	if (rc == 0 || res.nsteps)
		print_summary(&res);
	int exit_code = EXIT_OK;
	if (rc != 0) {
		cli_error(&err);
		exit_code = EXIT_FAIL;
	} else if (res.failed || cw_diags_count(&res.plan.diags, CW_SEV_ERROR)) {
		exit_code = EXIT_FAIL;
	}
	cw_apply_result_release(&res);
	if (savedp)
		cw_plan_release(savedp);
	return exit_code;
}
