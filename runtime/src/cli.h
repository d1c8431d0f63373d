/* cli.h — the subcommands of the `myelin` CLI, one file each. */
#ifndef MYELIN_CLI_H
#define MYELIN_CLI_H
#include <stdio.h>

/* `myelin CMD --help` (main() answers -h/--help for every command): CMD's usage line, summary and options on
 * stdout; 0. */
int cli_help(const char *cmd);
/* A bad command line: "myelin CMD: <message>", CMD's usage line and a pointer
 * to --help on stderr; returns 2 (the exit code). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_plugins(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_new_plugin(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_graph(int argc, char **argv);

struct set_override;
struct pipeline;
struct run_stats;
/* Parses --set's ID.PARAM=VALUE into s (stage and param malloc'ed); -1 if malformed. */
int cli_parse_set(const char *arg, struct set_override *s);
/* Writes DIR/report.html for a finished run (cli_report.c): the graph, the
 * stage statistics, the figures and files its stages wrote, the pipeline
 * text and versions. args: the `run` command's arguments. 0, or -1 with err. */
int report_write(const struct pipeline *p, const struct run_stats *rs, int exit_code, const char *dir,
                 int argc, char **argv, char *err, size_t errlen);
#endif
