/* crashpoint: named places where a test may kill the engine outright.
 *
 * RBK_CRASH_POINT="NAME:N" makes the Nth passage through the point NAME
 * raise SIGKILL, so crash tests can stop rbk exactly at each checkpoint
 * boundary (architecture.md "Durability and resume"). Unset, a point costs
 * one branch. Points: step.before_start, step.after_start, action.returned,
 * result.before_commit, result.after_commit, undo.after_start,
 * notify.before_send. */
#ifndef RBK_CRASHPOINT_H
#define RBK_CRASHPOINT_H

void rbk_crash_point(const char *name);

#endif
