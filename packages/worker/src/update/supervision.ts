import { readFileSync } from 'node:fs';

/**
 * Set by the service definitions `install-service` writes (`systemd` in the unit, `launchd` in the
 * plist); `none` turns the detection off. Under a supervisor the updater does not start the new
 * version itself: it exits with EXIT_RESTART and lets the supervisor start the launcher again.
 */
export const SUPERVISED_ENV = 'STUDIO_WORKER_SUPERVISED';

/**
 * "Restart me through the launcher": the exit code of a supervised daemon that switched to a new
 * version (EX_TEMPFAIL). The systemd unit lists it in RestartForceExitStatus= and
 * SuccessExitStatus=; launchd's KeepAlive restarts any non-zero exit.
 */
export const EXIT_RESTART = 75;

export type Supervisor = 'systemd' | 'launchd';

export interface SupervisionProbe {
  env?: Readonly<Record<string, string | undefined>>;
  platform?: NodeJS.Platform;
  /** The command name of our parent process (default: /proc/<ppid>/comm on Linux). */
  parentName?: () => string | null;
}

/**
 * Who restarts this process when it exits, as far as the updater may rely on it.
 *
 * `STUDIO_WORKER_SUPERVISED` decides when set. Without it, systemd is recognised by INVOCATION_ID
 * (set for every process of a unit) together with a parent that is systemd itself: INVOCATION_ID
 * alone is inherited by whatever a unit starts (a terminal server running as a user service hands
 * it to every shell), and a worker started by hand that exited for a restart would simply stop.
 */
export function detectSupervisor(probe: SupervisionProbe = {}): Supervisor | null {
  const env = probe.env ?? process.env;
  const declared = env[SUPERVISED_ENV]?.trim().toLowerCase();
  if (declared === 'systemd' || declared === 'launchd') return declared;
  if (declared) return null;
  const platform = probe.platform ?? process.platform;
  if (platform === 'linux' && env.INVOCATION_ID && (probe.parentName ?? procParentName)() === 'systemd') return 'systemd';
  return null;
}

function procParentName(): string | null {
  try {
    return readFileSync(`/proc/${process.ppid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}
