import type { StudioEnv } from './types.ts';
export { StudioObject } from './studio-object.ts';

/** The Worker: routes every request and socket to its pool's Durable Object. */
export default {
  async fetch(request: Request, env: StudioEnv): Promise<Response> {
    return env.STUDIO.get(env.STUDIO.idFromName('default')).fetch(request);
  },
};
