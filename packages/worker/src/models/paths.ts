import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { plainFileNameProblem, RESERVED_FILE_SUFFIXES } from '@studio-worker/protocol';

/** Suffixes the provisioner keeps for itself next to a model file (the protocol reserves them). */
export const [PART_SUFFIX, VERIFIED_SUFFIX] = RESERVED_FILE_SUFFIXES;

/**
 * A model id as a readable directory name (original-spec §3.4): every character outside
 * `[A-Za-z0-9._-]` becomes `_`, and a leading `.` becomes `_` (so no id names a hidden dir, `.` or
 * `..`). Not injective (`coll_X` and `coll:X` both give `coll_X`): `modelDirName` is the folder;
 * this is what versions before issue 9 used, still looked in for verified files.
 */
export function sanitiseModelId(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
}

/** Ids that name their own folder: lowercase (case-insensitive filesystems fold case), no trailing dot, short. */
const PLAIN_DIR_NAME = /^[a-z0-9_][a-z0-9._-]{0,99}$/;
/** Names Windows keeps for devices, with or without an extension. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/;
/** Readable part of a hashed name: enough to recognise the model in a file manager. */
const READABLE_CHARS = 80;
/** 64 bits of sha256 over the raw id. */
const HASH_HEX = 16;

/**
 * The folder of a model id, injective over ids (issue 9: `coll_X` and `coll:X` shared one folder,
 * so removing one removed the other's files). A plain lowercase id is its own folder name; any other
 * id is its sanitised name, `~`, and a hash of the raw id. `~` never occurs in a plain name, so the
 * two kinds never meet, and the hash tells apart ids that sanitise alike or differ only in case.
 */
export function modelDirName(id: string): string {
  if (PLAIN_DIR_NAME.test(id) && !id.endsWith('.') && !WINDOWS_DEVICE.test(id)) return id;
  const readable = sanitiseModelId(id).slice(0, READABLE_CHARS).replace(/\.+$/, '');
  return `${readable}~${createHash('sha256').update(id, 'utf8').digest('hex').slice(0, HASH_HEX)}`;
}

/**
 * Why `filename` is not a plain file name (the protocol's rule, so the studio refuses such a name
 * when the model is registered). Checked again here: this is the line between a registry string and
 * a path we write to.
 */
export { plainFileNameProblem };

/** Why a model id cannot name a directory, or undefined. */
export function modelIdProblem(modelId: string): string | undefined {
  if (modelId.length === 0) return 'the model id is empty';
  return undefined;
}

/** `<models_root>/<modelDirName(id)>`. */
export function modelDirFor(modelsRoot: string, modelId: string): string {
  return join(modelsRoot, modelDirName(modelId));
}

export interface FilePaths {
  /** Where the file lives once verified: `<models_root>/<modelDirName(id)>/<filename>`. */
  dest: string;
  /** Where a download streams to before the atomic rename. */
  part: string;
  /** The original's flat layout, `<models_root>/<filename>`, still used in place when it holds the right file. */
  legacy: string;
  /**
   * `<models_root>/<sanitised id>/<filename>`, where versions before issue 9 put it, when that is
   * another path: a verified file found there is moved to `dest`.
   */
  previous?: string;
}

export function filePathsFor(modelsRoot: string, modelId: string, filename: string): FilePaths {
  const dest = join(modelDirFor(modelsRoot, modelId), filename);
  const paths: FilePaths = { dest, part: dest + PART_SUFFIX, legacy: join(modelsRoot, filename) };
  if (modelDirName(modelId) !== sanitiseModelId(modelId)) paths.previous = join(modelsRoot, sanitiseModelId(modelId), filename);
  return paths;
}

export function verifiedRecordPath(file: string): string {
  return file + VERIFIED_SUFFIX;
}
