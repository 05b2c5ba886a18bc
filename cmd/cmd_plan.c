/* certwright plan — what apply would do, in text, JSON or Markdown. Changes nothing. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"

enum { FMT_TEXT, FMT_JSON, FMT_MARKDOWN };

static int parse_format(const char *s, int *out)
{
	if (!strcmp(s, "text"))
		*out = FMT_TEXT;
	else if (!strcmp(s, "json"))
		*out = FMT_JSON;
	else if (!strcmp(s, "markdown") || !strcmp(s, "md"))
		*out = FMT_MARKDOWN;
	else
		return -1;
	return 0;
}

int cmd_plan(cw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "out", required_argument, NULL, 'o' },
		{ "target", required_argument, NULL, 't' },
		{ "certificate", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int format = FMT_TEXT, c;
	const char *out = NULL;
	while ((c = getopt_long(argc, argv, "f:o:hvq", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format(optarg, &format) != 0)
				return cli_usage_error("plan --format: '%s' is not text, json or markdown",
						       optarg);
			break;
		case 'o': out = optarg; break;
		case 't': cli_filter_option(cli, "target", optarg); break;
		case 'c': cli_filter_option(cli, "certificate", optarg); break;
		default: {
			int code;
			if (!cli_common_option(cli, c, "plan", &code))
				return EXIT_USAGE;
			if (c == 'h')
				return code;
		}
		}
	}
	if (optind < argc)
		return cli_usage_error("plan: unexpected argument '%s'", argv[optind]);

	cw_plan plan;
	cw_error err = { 0 };
	if (cw_engine_plan(&cli->opts, &plan, &err) != 0) {
		cli_error(&err);
		cw_plan_release(&plan);
		return EXIT_FAIL;
	}
	cw_buf b = CW_BUF_INIT;
	if (format == FMT_JSON)
		cw_plan_render_json(&plan, &b);
	else if (format == FMT_MARKDOWN)
		cw_plan_render_markdown(&plan, &b);
	else
		cw_plan_render_text(&plan, !out && isatty(1), &b);
	int rc = cli_write_output(out, b.buf, b.len) == 0 ? EXIT_OK : EXIT_FAIL;
	cw_buf_release(&b);
	if (rc == EXIT_OK) {
		if (cw_diags_count(&plan.diags, CW_SEV_ERROR))
			rc = EXIT_FAIL;
		else if (plan.n)
			rc = EXIT_CHANGES;
	}
	cw_plan_release(&plan);
	return rc;
}
