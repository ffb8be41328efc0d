import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { silentLogger } from '@studio-worker/log';
import type { ModelFile } from '@studio-worker/protocol';
import type { EngineProgress } from '../../src/engines/engine.ts';
import { ModelProvisioner, type ModelProvisionerOptions } from '../../src/models/index.ts';
import { Changes } from '../helpers/wait.ts';
import { FileServer } from './file-server.ts';

export const USER_AGENT = 'studio-worker/9.9.9';
export const MODEL_ID = 'acme/z-image:q4';
/** The folder for MODEL_ID: its readable name and a hash of the raw id (ids may differ only in `/` vs `:`). */
export const MODEL_DIR_NAME = 'acme_z-image_q4~68cdcaed4dd8764d';

export interface Fixture {
  root: string;
  server: FileServer;
  provisioner: ModelProvisioner;
  /** A ModelFile for the server's file; `sha256` pinned unless overridden. */
  file(overrides?: Partial<ModelFile>): ModelFile;
  /** A fresh provisioner on the same models root, as after a worker restart. */
  restart(options?: Partial<ModelProvisionerOptions>): ModelProvisioner;
  options: ModelProvisionerOptions;
}

/** A temp models root, a file server and a provisioner, all torn down when the test ends. */
export async function fixture(t: TestContext, options: Partial<ModelProvisionerOptions> = {}, serverSize?: number): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'studio-worker-models-'));
  const root = join(dir, 'models');
  const server = await FileServer.start(serverSize);
  // The file server is plain http on loopback, which a provisioner refuses unless told otherwise.
  const base: ModelProvisionerOptions = { modelsRoot: root, log: silentLogger, userAgent: USER_AGENT, resumeDelayMs: 0, allowLoopbackHttp: true, ...options };
  const provisioners: ModelProvisioner[] = [];
  const make = (extra: Partial<ModelProvisionerOptions> = {}) => {
    const provisioner = new ModelProvisioner({ ...base, ...extra });
    provisioners.push(provisioner);
    return provisioner;
  };
  const provisioner = make();
  t.after(async () => {
    await Promise.all(provisioners.map((p) => p.close()));
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    root,
    server,
    provisioner,
    options: base,
    restart: make,
    file: (overrides = {}) => ({ role: 'model', url: server.url(), filename: 'model.bin', approxBytes: server.content.length, sha256: server.sha256, ...overrides }),
  };
}

/** Records progress updates and lets a test wait for one that matches. */
export function progressRecorder() {
  const updates: Array<EngineProgress & { at: number }> = [];
  const changes = new Changes();
  return {
    updates,
    progress(update: EngineProgress) {
      updates.push({ ...update, at: performance.now() });
      changes.signal();
    },
    waitFor(match: (update: EngineProgress) => boolean, what: string): Promise<EngineProgress> {
      return changes.waitFor(() => updates.find(match), what);
    },
  };
}

/** Resolves once any body bytes of a download have reached the client. */
export function bytesArrived(update: EngineProgress): boolean {
  return (update.step ?? 0) > 0 && !/checking/.test(update.message ?? '');
}

export function context(signal: AbortSignal = new AbortController().signal, progress: (update: EngineProgress) => void = () => {}) {
  return { signal, progress };
}

export function modelPath(root: string, filename = 'model.bin'): string {
  return join(root, MODEL_DIR_NAME, filename);
}
