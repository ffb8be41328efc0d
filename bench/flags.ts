import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { BenchError } from './errors.ts';

/** Flags every bench takes. */
const COMMON_FLAGS = {
  json: { type: 'boolean', default: false },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

type Parsed<T extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; options: T & typeof COMMON_FLAGS; strict: true; allowPositionals: false }>>['values'];

/**
 * A bench's command line: its own flags plus --json, --keep and --help, strictly (an unknown flag
 * is a `bad_flag` error followed by the usage); --help is a `help` "error" carrying the usage.
 */
export function parseBenchFlags<T extends ParseArgsOptionsConfig>(argv: readonly string[], options: T, usage: string): Parsed<T> {
  let values: Parsed<T>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { ...options, ...COMMON_FLAGS }, strict: true, allowPositionals: false }) as { values: Parsed<T> });
  } catch (error) {
    throw new BenchError('bad_flag', `${(error as Error).message}\n${usage}`);
  }
  if ((values as { help?: boolean }).help) throw new BenchError('help', usage);
  return values;
}

/** `--name N` as a whole number in [min, max], or the fallback when absent. */
export function wholeNumber(name: string, raw: string | undefined, fallback: number, min: number, max: number, usage: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new BenchError('bad_flag', `--${name} must be a whole number from ${min} to ${max} (got "${raw}")\n${usage}`);
  return n;
}

/**
 * A bench's `main`: parse the flags (bad flag: usage and exit 2; --help: usage and exit 0), run
 * with progress on stderr (none with --json, whose one line is all stdout gets), print the report,
 * and on failure print `<name> failed (<code>): …` and exit with `exitCodes[code]` or 1.
 */
export async function benchMain<O extends { json: boolean }>(
  name: string,
  parse: (argv: readonly string[]) => O,
  run: (options: O, say: (line: string) => void) => Promise<string>,
  exitCodes: Record<string, number> = {},
): Promise<void> {
  let options: O;
  try {
    options = parse(process.argv.slice(2));
  } catch (error) {
    const help = error instanceof BenchError && error.code === 'help';
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(help ? 0 : 2);
  }
  const say = options.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  try {
    process.stdout.write(`${await run(options, say)}\n`);
  } catch (error) {
    const code = error instanceof BenchError ? error.code : 'internal_error';
    process.stderr.write(`${name} failed (${code}): ${(error as Error).message}\n`);
    if (!(error instanceof BenchError)) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
    process.exit(exitCodes[code] ?? 1);
  }
}
