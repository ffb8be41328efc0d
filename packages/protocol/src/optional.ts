import { z } from 'zod';

/**
 * An optional wire field: omitted when absent, and an explicit `null` from a peer is accepted and
 * read as "absent" (original-spec §4: "Optional fields are omitted when absent (not null); explicit
 * null is accepted on input"). JSON.stringify drops the resulting `undefined`, so we never send null.
 *
 * `overwrite` (a check that rewrites the value), not `transform`: a transform makes every optional
 * field a pipe, which zod runs even when the field is absent — CreateJobRequest took 7 µs per parse
 * with transforms and 1.9 µs with this, on the create → offer path (bench/README.md).
 */
export function optional<T extends z.ZodType>(schema: T) {
  return schema.nullish().overwrite((value) => (value === null ? undefined : value)) as unknown as z.ZodOptional<T>;
}
