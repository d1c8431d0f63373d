/* cli.h — the subcommands of the `myelin` CLI, one file each. */
#ifndef MYELIN_CLI_H
#define MYELIN_CLI_H
#include <stdio.h>

int cmd_inspect(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_new_plugin(int argc, char **argv);
/* Writes s as a JSON string literal (quoted, escaped). */
void json_str(FILE *f, const char *s, size_t n);
#endif
