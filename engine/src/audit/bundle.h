/* bundle: a run exported for checking on another machine (rbk export,
 * rbk verify --bundle). A bundle is one JSON object:
 *
 *   {"rbk_bundle": 1, "run": {...as rbk show --json...},
 *    "source": "the runbook's exact text", "source_sha256": "...",
 *    "events": [every event of the run, in full: seq, run, at, actor,
 *               kind, data (the stored JSON text), prev_hash, hash],
 *    "links":  [the events after the run's first one, up to the proof's
 *               end, as {seq, prev_hash, hash}],
 *    "proof_end": {"seq": N, "hash": H, "sealed": true|false, "seal_commit": ...}}
 *
 * Checking it: every event of the run hashes to its recorded hash; the
 * links chain from the run's first event to the proof's end without a gap
 * (each prev_hash is the hash before it); the run's events sit in that
 * chain; the source has its SHA-256. When the proof ends at a seal, the
 * seal's commit in the auditor's copy of the seal repository can be
 * compared with proof_end. */
#ifndef RBK_BUNDLE_H
#define RBK_BUNDLE_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "store/store.h"

/* Write the bundle of run to out. seal_dir: the repository of seals (or NULL). */
int rbk_bundle_export(rbk_store *s, int64_t run, const char *seal_dir, FILE *out, rbk_err *err);
/* Check a bundle file. Returns 0 when it holds (*summary: fresh text), 1
 * when it does not (*summary says where), -1 with err when unreadable. */
int rbk_bundle_verify(const char *path, char **summary, rbk_err *err);

#endif
