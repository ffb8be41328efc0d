import { randomBytes } from 'node:crypto';
import type { LogRoot } from '@studio-worker/log';
import { daemonPaths, type ConfigStore } from '../config/index.ts';
import { commandHint } from '../config/invocation.ts';
import {
  chooseLocalApiPort,
  discoveryPath,
  LocalApiServer,
  localApiRoutes,
  removeDiscovery,
  StaticUi,
  writeDiscovery,
  type HealthWire,
  type LocalApiContext,
} from '../local-api/index.ts';

export interface LocalApiHostOptions {
  store: ConfigStore;
  logs: LogRoot;
  configPath: string;
  /** Where the web UI's files are (default: packages/worker/src/ui). */
  uiDir?: string;
  context: () => LocalApiContext;
  health: () => Promise<HealthWire>;
}

/** The daemon's local API: listening on loopback, its URL and token published in `local-api.json`. */
export class LocalApiHost {
  readonly #options: LocalApiHostOptions;
  #server: LocalApiServer | null = null;

  constructor(options: LocalApiHostOptions) {
    this.#options = options;
  }

  /** The base URL, once it listens. */
  get url(): string | undefined {
    return this.#server?.url;
  }

  /**
   * Listen on 127.0.0.1 (`STUDIO_WORKER_LOCAL_API_PORT`, else `local_api_port`, else any free port
   * when that one is taken) and publish the URL and token in `local-api.json`. A local API that
   * cannot start is logged; the daemon still serves the studio.
   */
  async start(): Promise<void> {
    const { configPath, store, uiDir } = this.#options;
    const log = this.#options.logs.child('local-api');
    const dir = daemonPaths(configPath).dir;
    try {
      const token = await this.#token();
      const port = chooseLocalApiPort(store.current.localApiPort, process.env, (message) => log.warn({ op: 'local_api' }, message));
      this.#server = await LocalApiServer.start({
        port,
        token,
        discoveryFile: discoveryPath(dir),
        routes: localApiRoutes(this.#options.context()),
        ui: new StaticUi(uiDir, undefined, { configDir: dir, uiCommand: commandHint(configPath, 'ui') }),
        health: this.#options.health,
        log,
      });
      await writeDiscovery(dir, { url: this.#server.url, token, pid: process.pid });
      log.info({ op: 'local_api', url: this.#server.url, discovery: discoveryPath(dir) }, `local API listening on ${this.#server.url} (URL and token in ${discoveryPath(dir)})`);
    } catch (error) {
      log.error({ op: 'local_api', err: error }, `the local API did not start: ${error instanceof Error ? error.message : String(error)}; studio jobs still run, but the CLI and UI cannot reach this daemon`);
      await this.#server?.close();
      this.#server = null;
    }
  }

  async stop(): Promise<void> {
    if (!this.#server) return;
    await this.#server.close();
    await removeDiscovery(daemonPaths(this.#options.configPath).dir).catch((error: unknown) => {
      this.#options.logs.child('daemon').warn({ op: 'local_api', err: error }, 'could not remove local-api.json; clients will find the daemon gone');
    });
  }

  /** `local_api_token` from the config, or a new one (32 random bytes) saved there once. */
  async #token(): Promise<string> {
    const { store } = this.#options;
    const log = this.#options.logs.child('daemon');
    const existing = store.current.localApiToken;
    if (existing) return existing;
    const token = randomBytes(32).toString('hex');
    try {
      await store.update((current) => ({ ...current, localApiToken: token }), 'local API token created');
      log.info({ op: 'local_api' }, 'created a local API token (saved in config.toml)');
    } catch {
      log.warn({ op: 'local_api' }, 'could not save the new local API token in config.toml; it is valid until the daemon stops');
    }
    return token;
  }
}
