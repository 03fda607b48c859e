/* The commands of the millrace CLI, one cmd_*.c file each. Every command takes the argv that
 * starts with its own name and returns the exit code: 0 success, 1 the command ran and found a
 * problem, 2 usage error. */
#ifndef MILLRACE_CLI_COMMANDS_H
#define MILLRACE_CLI_COMMANDS_H

int mr_cli_config(int argc, char **argv);
int mr_cli_demo(int argc, char **argv);
int mr_cli_journal(int argc, char **argv);
int mr_cli_outputs(int argc, char **argv);
int mr_cli_run(int argc, char **argv);

#endif
