/* certwright validate — parse and check the inventory and its policies. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

int cmd_validate(cw_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, code = EXIT_OK;
	while ((c = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
		if (cli_common_option(cli, c, "validate", &code)) {
			if (c == 'h')
				return code;
			continue;
		}
		return EXIT_USAGE;
	}
	if (optind < argc)
		return cli_usage_error("validate takes no arguments (got '%s')", argv[optind]);
	cw_diags diags;
	cw_diags_init(&diags);
	cw_error err = { 0 };
	int rc = cw_engine_validate(&cli->opts, &diags, &err);
	cw_diags_sort(&diags);
	cli_print_diags(&diags, stderr);
	size_t errors = cw_diags_count(&diags, CW_SEV_ERROR);
	size_t warnings = cw_diags_count(&diags, CW_SEV_WARNING);
	cw_diags_release(&diags);
	if (err.code) {
		cli_error(&err);
		return EXIT_FAIL;
	}
	if (rc != 0 || errors) {
		fprintf(stderr, "certwright: inventory is invalid: %zu error(s), %zu warning(s)\n",
			errors, warnings);
		return EXIT_FAIL;
	}
	if (!cli->quiet)
		printf("inventory is valid (%zu warning(s))\n", warnings);
	return EXIT_OK;
}
