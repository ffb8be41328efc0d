import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { StudioApiError, StudioClient } from '@studio-worker/client';
import { JOB_STATUSES, ModelEntry, TokenScope, type CreateJobInput, type JobStatus, type JobView } from '@studio-worker/protocol';
import { EXIT, runBackfill, type Io } from './backfill.ts';
import { assetPath, saveResult, withExt } from './results.ts';

/**
 * The studio's client commands: `studio jobs|workers|models …` against a running studio over its
 * HTTP API (STUDIO_URL and STUDIO_TOKEN, or --url and --token), through @studio-worker/client.
 */
export function registerClientCommands(program: Command, io: Io = { stdout: process.stdout, stderr: process.stderr }): void {
  const jobs = withConnection(program.command('jobs').description('submit, follow and fetch jobs on a running studio'));
  const workers = withConnection(program.command('workers').description("the studio's workers and pending registrations"));
  const models = withConnection(program.command('models').description("the studio's model registry"));
  const tokens = withConnection(program.command('tokens').description('scoped API tokens for scripts and integrations (admin)'));

  jobs
    .command('submit')
    .description('submit one job from flags, or many from a JSONL/CSV file (a backfill that resumes where it stopped)')
    .option('--file <path>', 'one job per line: JSONL (a POST /jobs body per line, optionally with "key") or CSV (header row names the columns)')
    .addOption(new Option('--format <format>', 'the file format (default: from the extension)').choices(['jsonl', 'csv']))
    .option('--model <id>', 'model id (one job from flags)')
    .option('--prompt <text>', 'image prompt (one job from flags)')
    .option('--task <json>', 'the whole task as JSON (any kind; instead of --prompt)')
    .option('--width <n>', 'image width', int)
    .option('--height <n>', 'image height', int)
    .option('--steps <n>', 'sampling steps', int)
    .option('--seed <n>', 'seed', int)
    .option('--game <id>', 'gameId')
    .option('--asset <name>', 'assetName (also the result file name under --out)')
    .option('--priority <n>', 'higher runs first', int)
    .option('--key <key>', 'idempotency key (one job); the same key never makes a second job')
    .option('--wait', 'wait until the jobs end, showing progress', false)
    .option('--out <dir>', 'with --wait: save each result as it finishes, as <dir>/<gameId>/<assetName>.<ext>')
    .option('--state <path>', 'the backfill state file (default: in --out, else next to the file)')
    .option('--key-prefix <prefix>', 'prefix of the keys derived from each line (change it to submit the same file again as new jobs)', 'bf')
    .option('--poll-ms <n>', 'how often to look at the jobs', int, 1000)
    .option('--progress-ms <n>', 'how often to print a progress line when not on a terminal', int, 5000)
    .option('--batch <n>', 'jobs per POST /jobs/batch (at most 1000)', int, 500)
    .option('--downloads <n>', 'results downloaded at the same time', int, 4)
    .action(async (opts, cmd: Command) => {
      const client = clientFor(cmd);
      if (opts.file) {
        const abort = new AbortController();
        let interrupted = false;
        const onSignal = () => {
          if (interrupted) process.exit(EXIT.interrupted);
          interrupted = true;
          abort.abort(new Error('interrupted'));
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const code = await runBackfill(
          client,
          { file: opts.file, format: opts.format, wait: opts.wait, out: opts.out, statePath: opts.state, keyPrefix: opts.keyPrefix, pollMs: opts.pollMs, progressMs: opts.progressMs, batchSize: Math.min(Math.max(opts.batch, 1), 1000), downloads: Math.max(opts.downloads, 1) },
          io,
          abort.signal,
        );
        process.exitCode = code;
        return;
      }
      if (!opts.model) throw new InvalidArgumentError('give --file for many jobs, or --model and --prompt (or --task) for one');
      const task = opts.task ? parseJson(opts.task, '--task') : { kind: 'image', prompt: opts.prompt, width: opts.width, height: opts.height, steps: opts.steps, seed: opts.seed };
      if (!opts.task && !opts.prompt) throw new InvalidArgumentError('give --prompt (an image job) or --task <json>');
      const body = { model: opts.model, task, gameId: opts.game, assetName: opts.asset, priority: opts.priority } as CreateJobInput;
      const { job, replayed } = await client.createJob(body, { idempotencyKey: opts.key });
      io.stderr.write(replayed ? `job ${job.id} already existed for key ${opts.key}\n` : `submitted ${job.id}\n`);
      if (!opts.wait) return print(io, job, opts);
      const ended = await client.wait(job.id, { intervalMs: opts.pollMs });
      if (opts.out && ended.status === 'done') io.stderr.write(`saved ${await download(client, ended, opts.out)}\n`);
      print(io, ended, opts);
      if (ended.status !== 'done') process.exitCode = EXIT.failedJobs;
    });

  jobs
    .command('wait')
    .description('wait until the jobs end; exit 1 if any did not end done')
    .argument('<ids...>')
    .option('--poll-ms <n>', 'how often to look', int, 1000)
    .option('--timeout <seconds>', 'give up after this long', int)
    .action(async (ids: string[], opts, cmd: Command) => {
      const client = clientFor(cmd);
      const ended = await Promise.all(ids.map((id) => client.wait(id, { intervalMs: opts.pollMs, timeoutMs: opts.timeout ? opts.timeout * 1000 : undefined })));
      for (const job of ended) io.stdout.write(`${job.id}\t${job.status}${job.lastError ? `\t${job.lastError}` : ''}\n`);
      if (ended.some((j) => j.status !== 'done')) process.exitCode = EXIT.failedJobs;
    });

  jobs
    .command('list')
    .description('list jobs, newest first')
    .addOption(new Option('--status <status>').choices([...JOB_STATUSES]))
    .option('--limit <n>', 'how many', int, 50)
    .option('--before <seq>', 'page: jobs older than this (printed as "next page" at the end)', int)
    .action(async (opts, cmd: Command) => {
      const list = await clientFor(cmd).jobs({ status: opts.status as JobStatus | undefined, limit: opts.limit, before: opts.before });
      if (jsonOutput(cmd)) return void io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      for (const j of list.jobs) io.stdout.write(`${j.id}\t${j.status}\t${j.model}\t${[j.gameId, j.assetName].filter(Boolean).join('/') || '-'}\t${j.createdAt}\n`);
      io.stderr.write(`counts: ${Object.entries(list.counts).map(([s, n]) => `${s} ${n}`).join(', ') || 'no jobs'}${list.nextBefore ? `; next page: --before ${list.nextBefore}` : ''}\n`);
    });

  jobs
    .command('show')
    .description('one job in full (JSON)')
    .argument('<id>')
    .action(async (id: string, _opts, cmd: Command) => print(io, await clientFor(cmd).job(id), { json: true }));

  for (const [name, description] of [
    ['cancel', 'cancel jobs that have not ended'],
    ['retry', 'queue failed or cancelled jobs again'],
  ] as const) {
    jobs
      .command(name)
      .description(description)
      .argument('<ids...>')
      .action(async (ids: string[], _opts, cmd: Command) => {
        const client = clientFor(cmd);
        for (const id of ids) io.stdout.write(`${id}\t${(await client[name](id)).status}\n`);
      });
  }

  jobs
    .command('download')
    .description('save the results of done jobs, as <dir>/<gameId>/<assetName>.<ext> when the job names them, else <dir>/<id>.<ext>')
    .argument('<ids...>')
    .requiredOption('--out <dir>', 'folder to save into')
    .action(async (ids: string[], opts, cmd: Command) => {
      const client = clientFor(cmd);
      for (const id of ids) io.stdout.write(`${await download(client, await client.job(id), opts.out)}\n`);
    });

  workers
    .command('list')
    .description('approved workers, then pending registration requests')
    .action(async (_opts, cmd: Command) => {
      const client = clientFor(cmd);
      const [all, pending] = await Promise.all([client.workers(), client.pending()]);
      if (jsonOutput(cmd)) return void io.stdout.write(`${JSON.stringify({ workers: all, pending }, null, 2)}\n`);
      for (const w of all) io.stdout.write(`${w.id}\t${w.state}${w.paused ? ' (paused)' : ''}\t${w.label}\t${w.machineName}\tjobs: ${w.currentJobIds.length}\n`);
      for (const p of pending) io.stdout.write(`${p.requestId}\tpending\t${p.label ?? ''}\t${p.machineName}\tfrom ${p.sourceIp}\n`);
    });
  workers
    .command('approve')
    .argument('<requestId>')
    .option('--label <label>', 'a name for the worker')
    .action(async (requestId: string, opts, cmd: Command) => print(io, await clientFor(cmd).approve(requestId, opts.label), { json: true }));
  workers
    .command('reject')
    .argument('<requestId>')
    .option('--reason <text>', 'shown to the worker', '')
    .action(async (requestId: string, opts, cmd: Command) => print(io, await clientFor(cmd).reject(requestId, opts.reason), { json: true }));
  workers
    .command('delete')
    .argument('<workerId>')
    .action(async (id: string, _opts, cmd: Command) => print(io, await clientFor(cmd).deleteWorker(id), { json: true }));

  models
    .command('list')
    .action(async (_opts, cmd: Command) => {
      const all = await clientFor(cmd).models();
      if (jsonOutput(cmd)) return void io.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      for (const m of all) io.stdout.write(`${m.id}\t${m.kind}\t${m.source.engine}\t${m.enabled ? 'enabled' : 'disabled'}\tworkers online: ${m.workersOnline ?? 0}\n`);
    });
  models
    .command('add')
    .description('add a model: the registry entry as JSON (id, kind, source, …), inline or @file')
    .argument('<json>')
    .action(async (json: string, _opts, cmd: Command) => {
      const entry = ModelEntry.safeParse(parseJson(json.startsWith('@') ? readFileSync(json.slice(1), 'utf8') : json, 'the model entry'));
      if (!entry.success) throw new InvalidArgumentError(`the model entry is invalid: ${entry.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      print(io, await clientFor(cmd).addModel(entry.data), { json: true });
    });
  models
    .command('disable')
    .argument('<id>')
    .action(async (id: string, _opts, cmd: Command) => print(io, await clientFor(cmd).disableModel(id), { json: true }));
  models
    .command('enable')
    .argument('<id>')
    .action(async (id: string, _opts, cmd: Command) => print(io, await clientFor(cmd).enableModel(id), { json: true }));

  tokens
    .command('create')
    .description('create a token and print it once: admin (everything), submit (make jobs, read/cancel its own, fetch their results) or read')
    .addOption(new Option('--scope <scope>', 'what the token may do').choices([...TokenScope.options]).makeOptionMandatory())
    .requiredOption('--name <name>', 'what the token is for (shown in lists)')
    .action(async (opts, cmd: Command) => {
      const created = await clientFor(cmd).createToken(opts.name, opts.scope);
      if (jsonOutput(cmd)) return void io.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      io.stdout.write(`${created.token}\n`);
      io.stderr.write(`token ${created.id} (${created.scope}) printed above; it is shown only this once\n`);
    });
  tokens
    .command('list')
    .action(async (_opts, cmd: Command) => {
      const all = await clientFor(cmd).tokens();
      if (jsonOutput(cmd)) return void io.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
      for (const t of all) io.stdout.write(`${t.id}\t${t.scope}\t${t.name}\tcreated ${t.createdAt}\tlast used ${t.lastUsedAt ?? 'never'}${t.revokedAt ? `\trevoked ${t.revokedAt}` : ''}\n`);
    });
  tokens
    .command('revoke')
    .argument('<id>')
    .action(async (id: string, _opts, cmd: Command) => print(io, await clientFor(cmd).revokeToken(id), { json: true }));

  withConnection(program.command('gc'))
    .description('delete old results now (default: older than the studio\'s STUDIO_RETENTION_DAYS); jobs stay, marked expired')
    .option('--older-than-days <n>', 'age in days (0: every result)', Number)
    .action(async (opts, cmd: Command) => print(io, await clientFor(cmd).gc(opts.olderThanDays), { json: true }));
  withConnection(program.command('storage'))
    .description('disk use of results and the retention setting')
    .action(async (_opts, cmd: Command) => print(io, await clientFor(cmd).storage(), { json: true }));
}

/** --url, --token and --json on a command group (its subcommands read them with optsWithGlobals). */
function withConnection(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the studio (default: $STUDIO_URL, else http://127.0.0.1:4780)')
    .option('--token <token>', 'an admin or API token (default: $STUDIO_TOKEN)')
    .option('--json', 'print JSON', false);
}

function clientFor(cmd: Command): StudioClient {
  const opts = cmd.optsWithGlobals() as { url?: string; token?: string };
  const url = opts.url ?? process.env.STUDIO_URL ?? 'http://127.0.0.1:4780';
  const token = opts.token ?? process.env.STUDIO_TOKEN ?? process.env.STUDIO_ADMIN_TOKEN;
  if (!token) throw new InvalidArgumentError('no token: set STUDIO_TOKEN (or pass --token) to the admin token or an API token');
  return new StudioClient({ url, token });
}

function jsonOutput(cmd: Command): boolean {
  return (cmd.optsWithGlobals() as { json?: boolean }).json === true;
}

function print(io: Io, value: unknown, opts: { json?: boolean } = {}): void {
  const job = value as JobView;
  if (!opts.json && typeof job?.id === 'string' && typeof job.status === 'string') io.stdout.write(`${job.id}\t${job.status}\n`);
  else io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Save a done job's result under gameId/assetName (or its id); answers the path. */
async function download(client: StudioClient, job: JobView, outDir: string): Promise<string> {
  if (job.status !== 'done') throw new StudioApiError(409, 'not_done', `job ${job.id} is ${job.status}; only done jobs have results`);
  const target = join(resolve(outDir), withExt(assetPath(job.gameId, job.assetName) ?? job.id, job.result?.type === 'file' ? job.result.ext : 'json'));
  await saveResult(client, job.id, target);
  return target;
}

function int(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be a whole number');
  return n;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgumentError(`${what} is not valid JSON`);
  }
}
