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
/* Writes s as a JSON string literal (quoted, escaped). */
void json_str(FILE *f, const char *s, size_t n);
#endif
