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
