/* test_cli.c: `ember run` parsing and how guest arguments are quoted. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/cli.h"

static void quoted(const char *want, int argc, char **argv)
{
    char *got = cli_quote_args(argc, argv);

    cr_assert_not_null(got);
    cr_expect_str_eq(got, want);
    free(got);
}

Test(cli, plain_arguments_stay_plain)
{
    quoted("", 0, NULL);
    quoted("a b c", 3, (char *[]){"a", "b", "c"});
    quoted("--exit 3", 2, (char *[]){"--exit", "3"});
}

Test(cli, special_arguments_are_quoted)
{
    quoted("\"a b\"", 1, (char *[]){"a b"});
    quoted("\"\"", 1, (char *[]){""});
    quoted("\"\\\"q\\\"\"", 1, (char *[]){"\"q\""});
    quoted("\"it's\"", 1, (char *[]){"it's"});
    quoted("\"back\\\\slash\"", 1, (char *[]){"back\\slash"});
    quoted("\"tab\there\" x", 2, (char *[]){"tab\there", "x"});
}

Test(cli, run_options)
{
    struct vm_config cfg;
    char err[128];
    char *argv[] = {"run", "--mem", "64", "--timings", "g.elf", "a b", "c", NULL};

    cr_assert_eq(cli_parse_run(7, argv, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cfg.mem_mib, 64);
    cr_expect(cfg.timings);
    cr_expect(!cfg.boot_timer);
    cr_expect_str_eq(cfg.kernel_path, "g.elf");
    cr_expect_str_eq(cfg.boot_args, "\"a b\" c");
    vm_config_release(&cfg);
}

Test(cli, guest_options_after_the_guest_are_the_guest_s)
{
    struct vm_config cfg;
    char err[128];
    char *argv[] = {"run", "g.elf", "--mem", "1", NULL};

    cr_assert_eq(cli_parse_run(4, argv, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(cfg.mem_mib, 128);
    cr_expect_str_eq(cfg.boot_args, "--mem 1");
    vm_config_release(&cfg);
}

static void rejected(const char *want, int argc, char **argv)
{
    struct vm_config cfg;
    char err[128];

    cr_expect_eq(cli_parse_run(argc, argv, &cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, want);
    vm_config_release(&cfg);
}

Test(cli, bad_command_lines)
{
    rejected("no guest given", 1, (char *[]){"run"});
    rejected("--mem needs a value in MiB", 2, (char *[]){"run", "--mem"});
    rejected("--mem: \"-5\" is not a number of MiB", 4, (char *[]){"run", "--mem", "-5", "g"});
    rejected("--mem: \"12x\" is not a number of MiB", 4, (char *[]){"run", "--mem", "12x", "g"});
    rejected("--mem: \"99999999999\" is not a number of MiB", 4,
             (char *[]){"run", "--mem", "99999999999", "g"});
    rejected("unknown option --bogus", 3, (char *[]){"run", "--bogus", "g"});
}

Test(cli, config_checks)
{
    struct vm_config cfg;
    char err[128];

    vm_config_init(&cfg);
    cr_expect_eq(vm_config_check(&cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "no guest kernel given");
    cfg.kernel_path = "g.elf";
    cr_expect_eq(vm_config_check(&cfg, err, sizeof(err)), 0);
    cfg.mem_mib = 1;
    cr_expect_eq(vm_config_check(&cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "memory size 1 MiB out of range (2 to 3072 MiB)");
    cfg.mem_mib = 3073;
    cr_expect_eq(vm_config_check(&cfg, err, sizeof(err)), -1);
    cfg.mem_mib = 3072;
    cfg.vcpu_count = 2;
    cr_expect_eq(vm_config_check(&cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "2 vCPUs requested: ember runs single-vCPU microVMs");
}

Test(cli, environment_words_come_first)
{
    struct vm_config cfg;
    char err[160];
    char path[64];
    snprintf(path, sizeof(path), "/tmp/ember-envfile-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("# comment\n\nFROM_FILE=x y\n  INDENTED=1\nUNSET_IN_HOST_XYZ\n", f);
    fclose(f);
    char *argv[] = {"run", "--env", "A=1", "--env-file", path, "--env", "B=", "g.elf", "p", NULL};

    cr_assert_eq(cli_parse_run(9, argv, &cfg, err, sizeof(err)), 0, "%s", err);
    unlink(path);
    cr_expect_str_eq(cfg.env_args, "A=1 \"FROM_FILE=x y\" INDENTED=1 B=");
    cr_expect_str_eq(cfg.boot_args, "p");
    cr_expect(!cfg.args_dashes);
    char *line = vm_config_cmdline(&cfg, true);
    cr_expect_str_eq(line, "A=1 \"FROM_FILE=x y\" INDENTED=1 B= p");
    free(line);
    vm_config_release(&cfg);
}

Test(cli, an_argument_with_equals_stays_an_argument)
{
    struct vm_config cfg;
    char err[160];
    char *argv[] = {"run", "--env", "A=1", "g.elf", "k=v", NULL};

    cr_assert_eq(cli_parse_run(5, argv, &cfg, err, sizeof(err)), 0, "%s", err);
    char *sdk = vm_config_cmdline(&cfg, true), *other = vm_config_cmdline(&cfg, false);
    cr_expect_str_eq(sdk, "A=1 -- k=v");
    cr_expect_str_eq(other, "A=1 k=v"); /* a Linux or PVH guest gets the words as they are */
    free(sdk);
    free(other);
    vm_config_release(&cfg);
}

Test(cli, bad_environment)
{
    rejected("--env: \"1A\" is not a valid variable name (letters, digits, _)", 4,
             (char *[]){"run", "--env", "1A=2", "g"});
    rejected("--env: \"a.b\" is not a valid variable name (letters, digits, _)", 4,
             (char *[]){"run", "--env", "a.b=2", "g"});
    rejected("--env needs KEY=VALUE", 2, (char *[]){"run", "--env"});
    rejected("--env-file: /nonexistent/env: No such file or directory", 4,
             (char *[]){"run", "--env-file", "/nonexistent/env", "g"});
}
