/**
 * Where a V8 CPU profile spends its time: `node bench/profile-summary.ts <file.cpuprofile> [--top N]`.
 * Prints self time per function and inclusive ("total") time per function, both as a share of the
 * busy (non-idle) samples. Made for `npm run bench -- --cpu-prof DIR`. `--callers NAME [--depth D]`
 * splits the self time of the functions whose label contains NAME by their D callers.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const REPO_ROOT = new URL('..', import.meta.url).pathname;

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  let where = url.startsWith('file://') ? relative(REPO_ROOT, new URL(url).pathname) : url;
  where = where.replace(/^node_modules\//, '');
  return `${name}  ${where}:${lineNumber + 1}`;
}

/**
 * Self time of the functions whose label contains `needle`, per call path of `depth` callers above
 * them (which SQL statement, savepoint or commit a `run`/`control` sample belongs to).
 */
export function selfByCallers(profile: CpuProfile, needle: string, depth: number): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(id);
    if (!node || !label(node).includes(needle)) return;
    const path: string[] = [];
    for (let cur = parent.get(id); cur !== undefined && path.length < depth; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) path.push(n.callFrame.functionName || '(anonymous)');
    }
    const key = `${node.callFrame.functionName} <- ${path.join(' <- ')}`;
    out.set(key, (out.get(key) ?? 0) + dt);
  });
  return out;
}

/** Self and inclusive microseconds per function label; inclusive counts a function once per stack. */
export function summarizeProfile(profile: CpuProfile): { busyUs: number; idleUs: number; self: Map<string, number>; total: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busyUs = 0;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    // A sample's delta is the time until the next sample.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)') {
      idleUs += name === '(idle)' ? dt : 0;
      if (name === '(idle)') return;
    }
    busyUs += dt;
    const own = label(node);
    self.set(own, (self.get(own) ?? 0) + dt);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (!n) break;
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
  });
  return { busyUs, idleUs, self, total };
}

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '30' }, callers: { type: 'string' }, depth: { type: 'string', default: '3' } }, allowPositionals: true });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [--top N]\n');
    process.exit(2);
  }
  const top = Number(values.top);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { busyUs, idleUs, self, total } = summarizeProfile(profile);
  const pct = (us: number) => `${((100 * us) / busyUs).toFixed(1).padStart(5)} %`;
  const print = (title: string, map: Map<string, number>) => {
    process.stdout.write(`\n${title}\n`);
    for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
    }
  };
  process.stdout.write(`busy ${(busyUs / 1e6).toFixed(2)} s, idle ${(idleUs / 1e6).toFixed(2)} s (shares below are of busy time)\n`);
  if (values.callers) {
    // `--callers run`: where the self time of sqlite.ts's run() comes from.
    print(`self time of "${values.callers}" by callers`, selfByCallers(profile, values.callers, Number(values.depth)));
    return;
  }
  print('self time', self);
  print('inclusive time', total);
}

if (import.meta.main) main();
