import { STATIC_FILES } from 'studio-cf:files';
import type { StaticFiles } from '../app/host.ts';

/**
 * The dashboard's and the web kit's files, bundled into the Worker at build time (a Worker has no
 * disk): scripts/build-cf.ts generates `studio-cf:files` from packages/studio/src/web and
 * packages/web-kit/browser. Decoded once per file and kept.
 */
const decoded = new Map<string, Uint8Array>();

export const bundledFiles: StaticFiles = {
  async read(area, path) {
    const files = STATIC_FILES[area];
    if (!Object.hasOwn(files, path)) return undefined;
    const key = `${area}/${path}`;
    let bytes = decoded.get(key);
    if (!bytes) {
      bytes = Uint8Array.from(atob(files[path] as string), (c) => c.charCodeAt(0));
      decoded.set(key, bytes);
    }
    return bytes;
  },
};
