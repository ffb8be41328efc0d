import { field } from '../shared/http-json.ts';

/**
 * The names A1111 accepts for a checkpoint in `sd_model_checkpoint` (modules/sd_models.py,
 * CheckpointInfo.ids), rebuilt from one /sdapi/v1/sd-models item: the title
 * ("sub/name.safetensors [abcdef1234]"), the file name relative to the models folder, the model
 * name, the bare name, and the hashes.
 */
export function checkpointAliases(item: unknown): string[] {
  const title = field(item, 'title');
  if (typeof title !== 'string') return [];
  const hash = field(item, 'hash');
  const sha256 = field(item, 'sha256');
  const modelName = field(item, 'model_name');
  const name = title.replace(/ \[[0-9a-f]+\]$/i, '');
  const bare = (name.split(/[\\/]/).pop() ?? name).replace(/\.[^.]+$/, '');
  const aliases = [title, name, bare];
  if (typeof modelName === 'string') aliases.push(modelName);
  if (typeof hash === 'string' && hash !== '') aliases.push(hash, `${name} [${hash}]`, `${bare} [${hash}]`);
  if (typeof sha256 === 'string' && sha256 !== '') aliases.push(sha256);
  return aliases;
}

/** The titles of an /sdapi/v1/sd-models answer, or undefined when it is not a list. */
export function checkpointTitles(json: unknown): string[] | undefined {
  if (!Array.isArray(json)) return undefined;
  return json.map((item) => field(item, 'title')).filter((title): title is string => typeof title === 'string');
}

/**
 * Whether `wanted` names one of the checkpoints. A1111 does not refuse an unknown name: it loads
 * its first checkpoint instead and only says so on its console, so the engine checks first.
 */
export function hasCheckpoint(json: unknown, wanted: string): boolean {
  if (!Array.isArray(json)) return false;
  return json.some((item) => checkpointAliases(item).includes(wanted));
}
