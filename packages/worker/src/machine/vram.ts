import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@studio-worker/log';
import { runCommand, type RunCommand } from './presence.ts';

/** One GPU as this machine reports it, for `status`, the UI and the capability's `vramTotalGb`. */
export interface GpuInfo {
  vendor: 'nvidia' | 'amd' | 'apple' | 'other';
  name: string;
  vramGb: number;
  /** Where the figure came from (and its caveats), e.g. "nvidia-smi", "Apple unified memory". */
  source: string;
}

export interface GpuDetectOptions {
  log?: Logger;
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
  run?: RunCommand;
  /** Root of the DRM sysfs tree (tests point it at a directory of their own). */
  drmRoot?: string;
}

/**
 * The GPUs and their memory, per vendor: NVIDIA from `nvidia-smi` (any OS), AMD from sysfs
 * (`mem_info_vram_total`, Linux), Apple silicon from its unified memory (`sysctl hw.memsize`, macOS),
 * other Windows adapters from `Win32_VideoController` (whose AdapterRAM stops at 4 GiB). Never throws:
 * a machine without a GPU (or without the tools) answers [].
 */
export async function detectGpus(options: GpuDetectOptions = {}): Promise<GpuInfo[]> {
  const run = options.run ?? runCommand;
  const env = options.env ?? process.env;
  const platform = options.platform ?? process.platform;
  const nvidia = await nvidiaGpus(run, env, options.log);
  if (nvidia.length > 0) return nvidia;
  if (platform === 'linux') {
    const amd = await amdGpus(options.drmRoot ?? '/sys/class/drm');
    if (amd.length > 0) return amd;
  }
  if (platform === 'darwin') return appleGpu(run, env);
  if (platform === 'win32') return windowsGpus(run, env);
  return [];
}

/** Total GPU memory in GiB (0 without a GPU), summed over the GPUs detectGpus finds. */
export async function detectVramGb(log?: Logger): Promise<number> {
  return totalVramGb(await detectGpus(log === undefined ? {} : { log }));
}

export function totalVramGb(gpus: readonly GpuInfo[]): number {
  return roundGb(gpus.reduce((sum, gpu) => sum + gpu.vramGb, 0));
}

function roundGb(value: number): number {
  return Math.round(value * 10) / 10;
}

async function nvidiaGpus(run: RunCommand, env: NodeJS.ProcessEnv, log?: Logger): Promise<GpuInfo[]> {
  try {
    return parseNvidiaSmiGpus(await run('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], env), log);
  } catch {
    return [];
  }
}

/** `name, MiB` lines; a GPU reporting "[N/A]" for its memory is skipped with a warning. */
export function parseNvidiaSmiGpus(output: string, log?: Logger): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const raw of output.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const comma = line.lastIndexOf(',');
    const name = comma < 0 ? 'NVIDIA GPU' : line.slice(0, comma).trim();
    const mib = Number(comma < 0 ? line : line.slice(comma + 1).trim());
    if (Number.isFinite(mib) && mib > 0) gpus.push({ vendor: 'nvidia', name, vramGb: roundGb(mib / 1024), source: 'nvidia-smi' });
    else log?.warn({ op: 'vram', line }, 'nvidia-smi reported no memory size for a GPU; skipping it');
  }
  return gpus;
}

async function amdGpus(root: string): Promise<GpuInfo[]> {
  let cards: string[];
  try {
    cards = (await readdir(root)).filter((name) => /^card\d+$/.test(name)).sort();
  } catch {
    return [];
  }
  const gpus: GpuInfo[] = [];
  for (const card of cards) {
    const device = join(root, card, 'device');
    try {
      const bytes = Number((await readFile(join(device, 'mem_info_vram_total'), 'utf8')).trim());
      if (!Number.isFinite(bytes) || bytes <= 0) continue;
      const name = await readFile(join(device, 'product_name'), 'utf8').then((text) => text.trim(), () => '');
      gpus.push({ vendor: 'amd', name: name || `AMD GPU (${card})`, vramGb: roundGb(bytes / 1024 ** 3), source: 'sysfs mem_info_vram_total' });
    } catch {
      // Not an AMD card, or no such file.
    }
  }
  return gpus;
}

async function appleGpu(run: RunCommand, env: NodeJS.ProcessEnv): Promise<GpuInfo[]> {
  try {
    const brand = (await run('sysctl', ['-n', 'machdep.cpu.brand_string'], env)).trim();
    if (!/^Apple/.test(brand)) return [];
    const bytes = Number((await run('sysctl', ['-n', 'hw.memsize'], env)).trim());
    if (!Number.isFinite(bytes) || bytes <= 0) return [];
    return [{ vendor: 'apple', name: brand, vramGb: roundGb(bytes / 1024 ** 3), source: 'Apple unified memory (shared with the system)' }];
  } catch {
    return [];
  }
}

/** `Name|AdapterRAM` lines from the PowerShell below. */
export function parseWindowsAdapters(output: string): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  for (const line of output.split(/\r?\n/)) {
    const [name, ram] = line.trim().split('|');
    const bytes = Number(ram);
    if (!name || !Number.isFinite(bytes) || bytes <= 0) continue;
    const vendor = /nvidia/i.test(name) ? 'nvidia' : /amd|radeon/i.test(name) ? 'amd' : 'other';
    gpus.push({ vendor, name, vramGb: roundGb(bytes / 1024 ** 3), source: 'Win32_VideoController (AdapterRAM stops at 4 GiB)' });
  }
  return gpus;
}

async function windowsGpus(run: RunCommand, env: NodeJS.ProcessEnv): Promise<GpuInfo[]> {
  try {
    const script = 'Get-CimInstance Win32_VideoController | ForEach-Object { "$($_.Name)|$($_.AdapterRAM)" }';
    return parseWindowsAdapters(await run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], env));
  } catch {
    return [];
  }
}
