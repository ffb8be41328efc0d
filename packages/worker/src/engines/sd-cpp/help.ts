import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { ResolvedProgram } from './binary.ts';

/**
 * What the installed sd-cli / sd-server says about itself in `--help`: its build line
 * (`stable-diffusion.cpp version master-669-2d40a8b, commit 2d40a8b`, printed first by print_usage)
 * and the long flags it lists (ArgOptions::print: `  -m, --model <string>   …`). sd.cpp renames and
 * removes flags between builds, and an unknown flag makes it exit 1 ("error: unknown argument"), so
 * the argv builder emits only flags this build lists.
 */
export interface BinaryHelp {
  /** The build line, or undefined when --help printed none. */
  build: string | undefined;
  /** Long flags listed; undefined when --help could not be read (then nothing is filtered). */
  flags: ReadonlySet<string> | undefined;
  /** Why --help could not be read. */
  problem?: string;
}

const HELP_TIMEOUT_MS = 5_000;
const MAX_HELP_BYTES = 1 << 20;

/** Reads `--help` once per program file and modification time. */
export class HelpReader {
  readonly #cache = new Map<string, Promise<BinaryHelp>>();

  async read(program: ResolvedProgram, env: NodeJS.ProcessEnv): Promise<BinaryHelp> {
    let stamp = '';
    try {
      const info = await stat(program.file);
      stamp = `${info.mtimeMs}:${info.size}`;
    } catch {
      // The run will say the file is gone.
    }
    const key = `${program.command.join('\0')}\0${stamp}`;
    let help = this.#cache.get(key);
    if (help === undefined) {
      help = readHelp(program, env);
      this.#cache.set(key, help);
    }
    return help;
  }
}

function readHelp(program: ResolvedProgram, env: NodeJS.ProcessEnv): Promise<BinaryHelp> {
  const [file, ...lead] = program.command;
  return new Promise((resolve) => {
    execFile(file ?? program.file, [...lead, '--help'], { env, timeout: HELP_TIMEOUT_MS, maxBuffer: MAX_HELP_BYTES, windowsHide: true }, (error, stdout) => {
      const parsed = parseHelp(String(stdout));
      if (parsed.flags.size === 0) {
        const why = error === null ? 'it listed no options' : error.message.split('\n')[0];
        resolve({ build: parsed.build, flags: undefined, problem: `could not read ${program.name} --help (${why})` });
        return;
      }
      resolve({ build: parsed.build, flags: parsed.flags });
    });
  });
}

/** The build line and the long flags of sd.cpp's usage text. */
export function parseHelp(text: string): { build: string | undefined; flags: Set<string> } {
  const flags = new Set<string>();
  let build: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (build === undefined && /^stable-diffusion\.cpp version /.test(line)) build = line.slice('stable-diffusion.cpp version '.length).trim();
    const option = /^\s{2}(?:-[A-Za-z], )?(--[A-Za-z0-9][\w-]*)/.exec(line);
    if (option?.[1] !== undefined) flags.add(option[1]);
  }
  return { build, flags };
}
