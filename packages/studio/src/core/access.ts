import type { TokenScope } from '@studio-worker/protocol';
import type { AdminAuth } from './admin-auth.ts';
import type { ApiTokens } from './api-tokens.ts';
import { ADMIN_OWNER, type JobKeyStore } from './job-key-store.ts';
import type { Stores } from './stores.ts';

export { ADMIN_OWNER };
import { fail, ok, type Result } from './result.ts';

/** Who is calling the API: the owner their jobs and idempotency keys are filed under, and their scope. */
export interface Caller {
  owner: string;
  scope: TokenScope;
}


type Rule = { method: string; path: RegExp; own?: true };
const GET = 'GET';
const POST = 'POST';
const JOB = /^\/jobs\/([^/]+)$/;
const JOB_RESULT = /^\/jobs\/([^/]+)\/result$/;

/**
 * What a `read` token may do: look, never change (POST /jobs/lookup only reads). `GET /realtime` is
 * the dashboards' live feed (a WebSocket, see `admit`): it shows every job and worker, like GET
 * /jobs and /workers, so it is a read; a `submit` token, which sees only its own jobs, may not.
 */
const READ_RULES: Rule[] = [
  ...[/^\/realtime$/, /^\/health$/, /^\/jobs$/, JOB, JOB_RESULT, /^\/workers$/, /^\/workers\/pending$/, /^\/workers\/[^/]+$/, /^\/workers\/[^/]+\/logs$/, /^\/models$/, /^\/models\/[^/]+$/, /^\/metrics$/, /^\/storage$/, /^\/gallery$/, /^\/events$/, /^\/openapi\.json$/].map(
    (path) => ({ method: GET, path }),
  ),
  { method: POST, path: /^\/jobs\/lookup$/ },
];

/** What a `submit` token may do: make jobs; read, cancel and fetch the results of its own. */
const SUBMIT_RULES: Rule[] = [
  { method: GET, path: /^\/health$/ },
  { method: GET, path: /^\/models$/ },
  { method: GET, path: /^\/models\/[^/]+$/ },
  { method: GET, path: /^\/openapi\.json$/ },
  { method: POST, path: /^\/jobs$/ },
  { method: POST, path: /^\/jobs\/batch$/ },
  { method: POST, path: /^\/jobs\/lookup$/ },
  { method: GET, path: JOB, own: true },
  { method: GET, path: JOB_RESULT, own: true },
  { method: POST, path: /^\/jobs\/([^/]+)\/cancel$/, own: true },
];

/**
 * Authentication and scope checks for the HTTP API, the same on both hosts. The bootstrap admin
 * token and admin-scoped API tokens may do everything; `read` and `submit` tokens only what their
 * rules list. A submit token asking for a job it did not make is told the job does not exist.
 */
export class Access {
  private readonly keys: JobKeyStore;
  private readonly admin: AdminAuth;
  private readonly tokens: ApiTokens;

  constructor(stores: Stores, admin: AdminAuth, tokens: ApiTokens) {
    this.keys = stores.jobKeys;
    this.admin = admin;
    this.tokens = tokens;
  }

  authenticate(raw: string | undefined): Caller | undefined {
    if (!raw) return undefined;
    if (this.admin.verify(raw)) return { owner: ADMIN_OWNER, scope: 'admin' };
    const token = this.tokens.authenticate(raw);
    return token ? { owner: `token:${token.id}`, scope: token.scope } : undefined;
  }

  /**
   * A bearer and the request it makes, in one answer: 401 without a live token, 403 outside its
   * scope. For entry points that are not Hono routes (the dashboards' realtime WebSocket), so
   * they follow the same rules as the HTTP API.
   */
  admit(raw: string | undefined, method: string, path: string): Result<Caller> {
    const caller = this.authenticate(raw);
    if (!caller) return fail(401, 'auth_failed', 'the token is missing, wrong or revoked; use the admin token or a live API token');
    const allowed = this.authorize(caller, method, path);
    return allowed.ok ? ok(caller) : { ok: false, error: allowed.error };
  }

  /** `path` is relative to the API prefix (e.g. `/jobs/job-1/result`). */
  authorize(caller: Caller, method: string, path: string): Result<void> {
    if (caller.scope === 'admin') return ok(undefined);
    const verb = method === 'HEAD' ? GET : method;
    const rule = (caller.scope === 'read' ? READ_RULES : SUBMIT_RULES).find((r) => r.method === verb && r.path.test(path));
    if (!rule) {
      return fail(403, 'insufficient_scope', `this token has the "${caller.scope}" scope, which does not allow ${method} ${path}; use a token with a wider scope`);
    }
    if (rule.own) {
      const jobId = decodeURIComponent(rule.path.exec(path)?.[1] ?? '');
      if (this.keys.ownerOf(jobId) !== caller.owner) return fail(404, 'unknown_job', `job ${jobId} does not exist`);
    }
    return ok(undefined);
  }
}
