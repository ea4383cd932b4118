/* runner: actions run in a child process; crashes, hangs and failures are
 * contained and reported. Uses the real shell plugin and the testkit plugin. */
#include "exec/registry.h"
#include "exec/runner.h"
#include "t.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static rbk_registry *reg;

static const rbk_reg_action *act(const char *name)
{
	const rbk_reg_action *a = rbk_reg_find(reg, name);
	if (!a) {
		printf("FAIL setup: action %s not loaded\n", name);
		exit(1);
	}
	return a;
}

static rbk_runner_result run(const char *name, rbk_val args, int64_t timeout_ms)
{
	rbk_runner_result r;
	rbk_err e = {0};
	if (rbk_runner_exec(act(name), &args, "7:step:1", timeout_ms, false, &r, &e) < 0) {
		printf("FAIL %s: %s\n", name, e.msg);
		exit(1);
	}
	rbk_val_free(&args);
	return r;
}

/* Gone, or a zombie nobody reaped yet (PID 1 in a container may not). */
static int process_gone(int pid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

static rbk_val argv_of(const char *a0, const char *a1, const char *a2)
{
	rbk_val m = rbk_val_map(), l = rbk_val_list();
	rbk_val_list_push(&l, rbk_val_str(a0));
	if (a1)
		rbk_val_list_push(&l, rbk_val_str(a1));
	if (a2)
		rbk_val_list_push(&l, rbk_val_str(a2));
	rbk_val_map_set(&m, "argv", l);
	return m;
}

static void test_echo_outputs_typed_values(void)
{
	rbk_val args = rbk_val_map(), inner = rbk_val_list();
	rbk_val_list_push(&inner, rbk_val_int(1));
	rbk_val_list_push(&inner, rbk_val_str("two"));
	rbk_val_map_set(&args, "value", inner);
	rbk_val_map_set(&args, "message", rbk_val_str("héllo \"q\"\n"));
	rbk_runner_result r = run("testkit.echo", args, 5000);
	T_CHECK(r.ok && !r.error && !r.timed_out && r.signal == 0);
	const rbk_val *v = rbk_val_map_get(&r.outputs, "value");
	T_CHECK(v && v->t == RBK_V_LIST && v->u.list.n == 2 && v->u.list.items[0].t == RBK_V_INT);
	T_STREQ(rbk_val_map_get(&r.outputs, "message")->u.s.s, "héllo \"q\"\n");
	T_STREQ(rbk_val_map_get(&r.outputs, "key")->u.s.s, "7:step:1");
	const rbk_val *left = rbk_val_map_get(&r.outputs, "time_left_ms");
	T_CHECK(left && left->t == RBK_V_INT && left->u.i > 0 && left->u.i <= 5000);
	T_STREQ(r.log, "info: echoed 2 args\n");
	rbk_runner_result_free(&r);
}

static void test_failure_message(void)
{
	rbk_val args = rbk_val_map();
	rbk_val_map_set(&args, "message", rbk_val_str("disk on fire"));
	rbk_runner_result r = run("testkit.fail", args, -1);
	T_CHECK(!r.ok);
	T_STREQ(r.error, "disk on fire");
	rbk_runner_result_free(&r);
}

static void test_crash_is_contained(void)
{
	rbk_runner_result r = run("testkit.crash", rbk_val_map(), -1);
	T_CHECK(!r.ok && r.signal == SIGSEGV);
	T_STREQ(r.error, "testkit.crash crashed: killed by signal 11 (Segmentation fault)");
	rbk_runner_result_free(&r);
	/* The engine is still here and runs the next action normally. */
	r = run("testkit.echo", rbk_val_map(), -1);
	T_CHECK(r.ok);
	rbk_runner_result_free(&r);
}

static void test_exit_without_result(void)
{
	rbk_runner_result r = run("testkit.exit", rbk_val_map(), -1);
	T_CHECK(!r.ok);
	T_STREQ(r.error, "testkit.exit exited with status 3 before reporting a result");
	rbk_runner_result_free(&r);
}

static void test_hang_is_killed_after_grace(void)
{
	rbk_runner_result r = run("testkit.hang", rbk_val_map(), 100);
	T_CHECK(!r.ok && r.timed_out);
	T_STREQ(r.error, "testkit.hang timed out after 100ms; its process group was killed");
	T_CHECK(r.duration_ms >= 100 + RBK_RUNNER_GRACE_MS);
	rbk_runner_result_free(&r);
}

static void test_shell_argv(void)
{
	rbk_runner_result r = run("shell.exec", argv_of("printf", "%s|", "a b; $(echo no)"), 5000);
	T_CHECK(r.ok);
	T_STREQ(rbk_val_map_get(&r.outputs, "stdout")->u.s.s, "a b; $(echo no)|"); /* no shell parsed it */
	T_CHECK(rbk_val_map_get(&r.outputs, "exit_code")->u.i == 0);
	rbk_runner_result_free(&r);
}

static void test_shell_exit_code_and_stderr(void)
{
	rbk_val m = rbk_val_map(), env = rbk_val_map();
	rbk_val_map_set(&env, "WHO", rbk_val_str("ops"));
	rbk_val_map_set(&m, "script", rbk_val_str("echo \"to $WHO\" >&2; exit 4"));
	rbk_val_map_set(&m, "env", env);
	rbk_runner_result r = run("shell.exec", m, 5000);
	T_CHECK(!r.ok);
	T_STREQ(r.error, "exited with code 4: to ops");
	T_STREQ(rbk_val_map_get(&r.outputs, "stderr")->u.s.s, "to ops\n");
	T_CHECK(rbk_val_map_get(&r.outputs, "exit_code")->u.i == 4);
	rbk_runner_result_free(&r);
}

static void test_shell_timeout_kills_group(void)
{
	/* The script starts a background sleeper: the whole group must go. */
	char pidfile[] = "/tmp/rbk-runner-XXXXXX";
	int fd = mkstemp(pidfile);
	close(fd);
	rbk_val m = rbk_val_map(), env = rbk_val_map();
	rbk_val_map_set(&env, "PIDFILE", rbk_val_str(pidfile));
	rbk_val_map_set(&m, "script", rbk_val_str("sleep 30 & echo $! > \"$PIDFILE\"; wait"));
	rbk_val_map_set(&m, "env", env);
	rbk_runner_result r = run("shell.exec", m, 300);
	T_CHECK(!r.ok && !r.timed_out); /* the plugin honoured its deadline itself */
	T_CHECK(r.error && strstr(r.error, "timed out after"));
	T_CHECK(r.error && strstr(r.error, "process group killed"));
	FILE *f = fopen(pidfile, "r");
	int pid = 0;
	T_CHECK(f && fscanf(f, "%d", &pid) == 1 && pid > 0);
	if (f)
		fclose(f);
	usleep(100000);
	T_CHECK(pid > 0 && process_gone(pid)); /* the background sleeper is gone */
	unlink(pidfile);
	rbk_runner_result_free(&r);
}

static void test_shell_output_limit(void)
{
	rbk_val m = rbk_val_map();
	rbk_val_map_set(&m, "script", rbk_val_str("head -c 5000 /dev/zero | tr '\\000' x"));
	rbk_val_map_set(&m, "max_output", rbk_val_int(1000));
	rbk_runner_result r = run("shell.exec", m, 5000);
	T_CHECK(r.ok);
	const rbk_val *out = rbk_val_map_get(&r.outputs, "stdout");
	T_CHECK(out && strstr(out->u.s.s, "[rbk: 4000 more bytes not captured]"));
	T_CHECK(out && out->u.s.s[999] == 'x' && out->u.s.s[1000] == '\n');
	T_CHECK(rbk_val_map_get(&r.outputs, "stdout_truncated")->u.b);
	rbk_runner_result_free(&r);
}

static void test_shell_stdin_and_cwd(void)
{
	rbk_val m = argv_of("sh", "-c", "pwd; cat");
	rbk_val_map_set(&m, "stdin", rbk_val_str("fed\n"));
	rbk_val_map_set(&m, "cwd", rbk_val_str("/tmp"));
	rbk_runner_result r = run("shell.exec", m, 5000);
	T_CHECK(r.ok);
	T_STREQ(rbk_val_map_get(&r.outputs, "stdout")->u.s.s, "/tmp\nfed\n");
	rbk_runner_result_free(&r);
	r = run("shell.exec", argv_of("/nonexistent/prog", NULL, NULL), 5000);
	T_CHECK(!r.ok && rbk_val_map_get(&r.outputs, "exit_code")->u.i == 127);
	T_CHECK(strstr(rbk_val_map_get(&r.outputs, "stderr")->u.s.s, "cannot run /nonexistent/prog"));
	rbk_runner_result_free(&r);
}

/* A name without '/' is found on the PATH the step's env: gives, as
 * execvp would after the variables are set; the other variables reach the
 * program, the engine's own (RBK_IDEMPOTENCY_KEY) too. */
static void test_shell_env_and_path(void)
{
	char dir[] = "/tmp/rbk-test-path-XXXXXX";
	T_CHECK(mkdtemp(dir) != NULL);
	char *tool = rbk_xasprintf("%s/only-here", dir);
	FILE *f = fopen(tool, "w");
	T_CHECK(f != NULL);
	if (f) {
		fputs("#!/bin/sh\necho \"found $GREETING $RBK_IDEMPOTENCY_KEY\"\n", f);
		fclose(f);
	}
	chmod(tool, 0755);
	rbk_val m = argv_of("only-here", NULL, NULL);
	rbk_val env = rbk_val_map();
	char *path = rbk_xasprintf("%s:/usr/bin:/bin", dir);
	rbk_val_map_set(&env, "PATH", rbk_val_str(path));
	rbk_val_map_set(&env, "GREETING", rbk_val_str("hello"));
	rbk_val_map_set(&m, "env", env);
	rbk_runner_result r = run("shell.exec", m, 5000);
	T_CHECK(r.ok);
	const rbk_val *out = rbk_val_map_get(&r.outputs, "stdout");
	T_CHECK(out && !strncmp(out->u.s.s, "found hello ", 12));
	rbk_runner_result_free(&r);
	unlink(tool);
	rmdir(dir);
	rbk_free(path);
	rbk_free(tool);
}

int main(void)
{
	rbk_diag d = {0};
	const char *root = getenv("RBK_ROOT");
	char *path = rbk_xasprintf("%s/build/plugins:%s/build/test-plugins", root ? root : ".", root ? root : ".");
	rbk_reg_load(&reg, path, &d);
	rbk_free(path);
	if (d.n) {
		rbk_diag_print(&d, stdout);
		rbk_diag_free(&d);
		rbk_reg_free(reg);
		return 1;
	}
	rbk_diag_free(&d);
	T_RUN(test_echo_outputs_typed_values);
	T_RUN(test_failure_message);
	T_RUN(test_crash_is_contained);
	T_RUN(test_exit_without_result);
	T_RUN(test_hang_is_killed_after_grace);
	T_RUN(test_shell_argv);
	T_RUN(test_shell_exit_code_and_stderr);
	T_RUN(test_shell_timeout_kills_group);
	T_RUN(test_shell_output_limit);
	T_RUN(test_shell_stdin_and_cwd);
	T_RUN(test_shell_env_and_path);
	rbk_reg_free(reg);
	return T_DONE();
}
