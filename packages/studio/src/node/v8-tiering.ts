import { setFlagsFromString } from 'node:v8';

/**
 * How soon V8 optimizes the studio's code, set once when a studio starts (server.ts).
 *
 * V8 (Node 24) runs a function as bytecode, then baseline code, and optimizes it with Maglev after
 * about 400 calls (`--invocation-count-for-maglev`), and not before 500 calls have passed since its
 * last inline-cache change (`--minimum-invocations-after-ic-update`). A job's path through the
 * studio (node:http, zod, the dispatcher, SQLite's bindings, ws) is mostly functions called once or
 * twice per job, so a fresh studio runs it unoptimized for its first ~500 jobs: ~25 % slower per
 * create in `npm run bench`, and for hours in a studio that sees a few jobs a minute. At 100 and
 * 100 the same functions are optimized after ~100 jobs; bench/README.md ("The cold window,
 * shortened") has the runs: the window `bench:peers` measures (creates 100–600 of a fresh studio)
 * went from a p50 of 0.286–0.312 ms to 0.256–0.279 ms; the warm figures, the throughput and the RSS
 * did not move.
 *
 * Set at run time, through node:v8, because the studio starts in more ways than one command line
 * (`npm start` runs it in-process, `studio serve`, PM2, the tests). V8 reads these two counts each
 * time it considers a function, so setting them after start takes effect from then on (the test
 * holds that). A value the operator gave node on its command line is left as it is.
 */
export const TIERING_FLAGS: readonly string[] = ['--invocation-count-for-maglev=100', '--minimum-invocations-after-ic-update=100'];

/** `--invocation_count_for_maglev=5` → `invocation-count-for-maglev` (V8 takes either spelling). */
function flagName(arg: string): string {
  const eq = arg.indexOf('=');
  return (eq < 0 ? arg : arg.slice(0, eq)).replace(/^--?/, '').replaceAll('_', '-');
}

/**
 * Lowers V8's tier-up counts for this process (every isolate's code, the studio's and its host's);
 * answers the flags it set, leaving out any the process was started with a value for.
 */
export function tierUpSooner(execArgv: readonly string[] = process.execArgv): string[] {
  const given = new Set(execArgv.map(flagName));
  const set = TIERING_FLAGS.filter((flag) => !given.has(flagName(flag)));
  for (const flag of set) setFlagsFromString(flag);
  return set;
}
