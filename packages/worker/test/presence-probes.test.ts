// Each user-presence and GPU probe against stand-in executables on PATH that print what the real
// tools print (xprintidle, gdbus, loginctl, ioreg, PowerShell, nvidia-smi, rocm-smi).
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { otherGpuProcesses } from '../src/machine/gpu-busy.ts';
import { readIdleTime } from '../src/machine/presence.ts';
import { detectGpus } from '../src/machine/vram.ts';

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

/** A PATH holding only these stand-ins (shell scripts; `sh` itself comes from /bin). */
async function path(scripts: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'probes-'));
  roots.push(dir);
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}

describe('user presence probes', { skip: process.platform === 'win32' && 'stand-ins are shell scripts' }, () => {
  it('Linux X11: xprintidle milliseconds', async () => {
    const PATH = await path({ xprintidle: 'echo 183000' });
    assert.deepEqual(await readIdleTime({ platform: 'linux', env: { PATH, DISPLAY: ':0' } }), { idleMs: 183000, source: 'xprintidle' });
  });

  it('Linux Wayland: GNOME Mutter IdleMonitor, then org.freedesktop.ScreenSaver (seconds)', async () => {
    const gnome = await path({ gdbus: 'case "$*" in *Mutter*) echo "(uint64 45000,)" ;; *) exit 1 ;; esac' });
    assert.deepEqual(await readIdleTime({ platform: 'linux', env: { PATH: gnome, WAYLAND_DISPLAY: 'wayland-0' } }), { idleMs: 45000, source: 'gnome-idle-monitor' });
    const kde = await path({ gdbus: 'case "$*" in *ScreenSaver*) echo "(uint32 300,)" ;; *) echo "Error: no such name" >&2; exit 1 ;; esac' });
    assert.deepEqual(await readIdleTime({ platform: 'linux', env: { PATH: kde, WAYLAND_DISPLAY: 'wayland-0' } }), { idleMs: 300000, source: 'freedesktop-screensaver' });
  });

  it('Linux, any session: logind IdleHint / IdleSinceHint via loginctl (the session found by uid when XDG_SESSION_ID is unset)', async () => {
    const now = Date.UTC(2026, 0, 1);
    const sinceUs = (now - 200_000) * 1000;
    const PATH = await path({
      loginctl: `case "$1" in\n list-sessions) echo "  7 ${userInfo().uid} ada seat0 tty2" ;;\n show-session) [ "$2" = 7 ] || exit 1; echo IdleHint=yes; echo IdleSinceHint=${sinceUs} ;;\nesac`,
    });
    assert.deepEqual(await readIdleTime({ platform: 'linux', env: { PATH }, now }), { idleMs: 200_000, source: 'logind' });
    const busy = await path({ loginctl: 'echo IdleHint=no; echo IdleSinceHint=0' });
    assert.deepEqual(await readIdleTime({ platform: 'linux', env: { PATH: busy, XDG_SESSION_ID: '3' }, now }), { idleMs: 0, source: 'logind' });
  });

  it('macOS: ioreg HIDIdleTime nanoseconds', async () => {
    const PATH = await path({ ioreg: 'echo \'  | |   "HIDIdleTime" = 125000000000\'' });
    assert.deepEqual(await readIdleTime({ platform: 'darwin', env: { PATH } }), { idleMs: 125000, source: 'ioreg' });
  });

  it('Windows: the GetLastInputInfo PowerShell one-liner', async () => {
    const PATH = await path({ 'powershell.exe': 'case "$*" in *GetLastInputInfo*) echo 61000 ;; *) exit 1 ;; esac' });
    assert.deepEqual(await readIdleTime({ platform: 'win32', env: { PATH } }), { idleMs: 61000, source: 'GetLastInputInfo' });
  });

  it('no probe answering is an error naming each probe and why', async () => {
    const PATH = await path({ xprintidle: 'echo "couldn\'t open display" >&2; exit 1' });
    await assert.rejects(readIdleTime({ platform: 'linux', env: { PATH, DISPLAY: ':0', XDG_SESSION_ID: '1' } }), /xprintidle: .*; logind: /);
  });
});

describe('GPU probes', { skip: process.platform === 'win32' && 'stand-ins are shell scripts' }, () => {
  it('other programs on the GPU: nvidia-smi compute apps, else rocm-smi --showpids; our own process does not count', async () => {
    const nvidia = await path({ 'nvidia-smi': `echo "${process.pid}, node"; echo "4242, C:\\\\Games\\\\game.exe"` });
    assert.deepEqual(await otherGpuProcesses({ env: { PATH: nvidia } }), [{ pid: 4242, name: 'C:\\Games\\game.exe' }]);
    const rocm = await path({
      'rocm-smi': 'printf "============ ROCm System Management Interface ============\\nKFD process information:\\nPID\\tPROCESS NAME\\tGPU(s)\\tVRAM USED\\n5151\\tblender\\t1\\t2048\\n"',
    });
    assert.deepEqual(await otherGpuProcesses({ env: { PATH: rocm } }), [{ pid: 5151, name: 'blender' }]);
    assert.equal(await otherGpuProcesses({ env: { PATH: await path({}) } }), undefined, 'no tool: cannot tell');
  });

  it('VRAM per vendor: NVIDIA from nvidia-smi, AMD from sysfs, Apple unified memory, Windows adapters', async () => {
    const nvidia = await path({ 'nvidia-smi': 'echo "NVIDIA GeForce RTX 3060, 12288"' });
    assert.deepEqual(await detectGpus({ env: { PATH: nvidia }, platform: 'linux' }), [{ vendor: 'nvidia', name: 'NVIDIA GeForce RTX 3060', vramGb: 12, source: 'nvidia-smi' }]);

    const drm = await mkdtemp(join(tmpdir(), 'drm-'));
    roots.push(drm);
    await mkdir(join(drm, 'card1', 'device'), { recursive: true });
    await writeFile(join(drm, 'card1', 'device', 'mem_info_vram_total'), String(16 * 1024 ** 3));
    await writeFile(join(drm, 'card1', 'device', 'product_name'), 'Radeon RX 7800 XT\n');
    assert.deepEqual(await detectGpus({ env: { PATH: await path({}) }, platform: 'linux', drmRoot: drm }), [
      { vendor: 'amd', name: 'Radeon RX 7800 XT', vramGb: 16, source: 'sysfs mem_info_vram_total' },
    ]);

    const mac = await path({ sysctl: 'case "$2" in machdep.cpu.brand_string) echo "Apple M2 Pro" ;; hw.memsize) echo 34359738368 ;; esac' });
    assert.deepEqual(await detectGpus({ env: { PATH: mac }, platform: 'darwin' }), [{ vendor: 'apple', name: 'Apple M2 Pro', vramGb: 32, source: 'Apple unified memory (shared with the system)' }]);

    const windows = await path({ 'powershell.exe': 'echo "Intel(R) Arc(TM) A770 Graphics|4293918720"' });
    const [arc] = await detectGpus({ env: { PATH: windows }, platform: 'win32' });
    assert.deepEqual([arc?.vendor, arc?.name, arc?.vramGb], ['other', 'Intel(R) Arc(TM) A770 Graphics', 4]);
  });
});
