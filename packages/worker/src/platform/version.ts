import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-layout.ts';

/**
 * The worker's version: the `version` of its package.json, read from the package it runs from (the
 * sources or a built package alike), so a package repacked with another version reports that one.
 */
export const AGENT_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Announced on every HTTP request and in the registration request. */
export const USER_AGENT = `studio-worker/${AGENT_VERSION}`;
