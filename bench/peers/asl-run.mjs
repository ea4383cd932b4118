// rbk bench: runs an ASL state machine in aws-local-stepfunctions, in memory.
//   node asl-run.mjs MACHINE.json RUNS [WARMUP]
// ASL_PREFIX is the npm --prefix the package was installed under.
// Prints one JSON line: each run's milliseconds (the run alone, after the
// constructor) and the last output.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const prefix = process.env.ASL_PREFIX || path.join(process.env.HOME, '.cache', 'rbk-bench');
const { StateMachine } = createRequire(path.join(prefix, 'package.json'))('aws-local-stepfunctions');
const [file, runsArg, warmArg] = process.argv.slice(2);
const def = JSON.parse(fs.readFileSync(file, 'utf8'));
const runs = Number(runsArg || 1), warmup = Number(warmArg || 0);
const machine = new StateMachine(def);
const ms = [];
let out;
for (let i = 0; i < warmup + runs; i++) {
  const t0 = process.hrtime.bigint();
  out = await machine.run({ n: 0 }).result;
  const t1 = process.hrtime.bigint();
  if (i >= warmup) ms.push(Number(t1 - t0) / 1e6);
}
console.log(JSON.stringify({ ms, output: out }));
