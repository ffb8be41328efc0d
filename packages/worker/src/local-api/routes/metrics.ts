import { EXPOSITION_CONTENT_TYPE } from '../../observe/prometheus.ts';
import type { LocalApiContext } from '../context.ts';
import type { Router } from '../router.ts';

/** `GET /metrics`: Prometheus text exposition (bearer token like every other route). */
export function metricsRoutes(router: Router, ctx: LocalApiContext): void {
  router.add('GET', '/metrics', async () => ({ bytes: await ctx.metrics(), contentType: EXPOSITION_CONTENT_TYPE }));
}
