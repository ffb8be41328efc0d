// `npm run schemas`: writes a JSON Schema (draft 2020-12) of every wire frame and of the HTTP bodies
// a worker sends or reads, exported from the zod schemas (z.toJSONSchema), into packages/protocol/schema/.
// The schemas describe what a peer may SEND us (zod's input side: defaults may be left out, an
// optional field may be null). packages/protocol/test/schemas.test.ts fails when the files are stale.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import {
  ApiError,
  AutoRegisterRequest,
  CreateJobRequest,
  ModelEntry,
  RegisterRequestCreated,
  RegistrationPoll,
  StudioFrame,
  WorkerFrame,
} from '../src/index.ts';

export const SCHEMA_DIR = join(import.meta.dirname, '..', 'schema');

function toJson(schema: z.ZodType, title: string, description: string): string {
  const json = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  const { $schema, ...rest } = json;
  return `${JSON.stringify({ $schema, title, description, ...rest }, null, 2)}\n`;
}

/** Relative path → file text, for every schema file. */
export function buildSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  out.set('worker-frame.json', toJson(WorkerFrame, 'WorkerFrame', 'Any frame a worker sends the studio (tagged by "type").'));
  out.set('studio-frame.json', toJson(StudioFrame, 'StudioFrame', 'Any frame the studio sends a worker (tagged by "type").'));
  for (const option of WorkerFrame.options) {
    const type = option.shape.type.value;
    out.set(`worker-to-studio/${type}.json`, toJson(option, type, `The "${type}" frame, worker → studio. See docs/protocol.md.`));
  }
  for (const option of StudioFrame.options) {
    const type = option.shape.type.value;
    out.set(`studio-to-worker/${type}.json`, toJson(option, type, `The "${type}" frame, studio → worker. See docs/protocol.md.`));
  }
  const http: Array<[string, z.ZodType, string]> = [
    ['auto-register-request', AutoRegisterRequest, 'POST /graphics/api/workers/register-request body.'],
    ['register-request-created', RegisterRequestCreated, 'Answer of POST /graphics/api/workers/register-request.'],
    ['registration-poll', RegistrationPoll, 'Answer of GET /graphics/api/workers/register-requests/:id.'],
    ['api-error', ApiError, 'Body of every non-2xx studio answer.'],
    ['create-job-request', CreateJobRequest, 'POST /graphics/api/jobs body (admin).'],
    ['model-entry', ModelEntry, 'POST /graphics/api/models body (admin).'],
  ];
  for (const [name, schema, description] of http) out.set(`http/${name}.json`, toJson(schema, name, description));
  return out;
}

if (import.meta.main) {
  rmSync(SCHEMA_DIR, { recursive: true, force: true });
  const files = buildSchemas();
  for (const [path, text] of files) {
    mkdirSync(dirname(join(SCHEMA_DIR, path)), { recursive: true });
    writeFileSync(join(SCHEMA_DIR, path), text);
  }
  console.log(`wrote ${files.size} JSON Schema files to ${SCHEMA_DIR}`);
}
