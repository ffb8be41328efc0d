import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { configDirOf } from '../config/index.ts';
import { EXIT_DISPLACED, EXIT_LOCKED } from '../platform/exit-codes.ts';
import { EXIT_RESTART, SUPERVISED_ENV } from '../update/supervision.ts';
import { OpsError } from './errors.ts';
import { fileExists, removeFile, writeIfChanged } from './files.ts';
import { workerArgv, xdgConfigHome, type Host } from './host.ts';
import { plist, systemdArg, windowsArg, xmlText } from './quote.ts';
import { commandLine, type CommandResult } from './runner.ts';

// The supervised service: the OS runs `studio-worker run` at login (or boot, with linger) and
// restarts it when it fails. One per user: the names below are fixed.

export const SYSTEMD_UNIT = 'studio-worker.service';
export const LAUNCHD_LABEL = 'gg.studio-worker';
export const WINDOWS_TASK = 'StudioWorker';

export interface ServiceSpec {
  /** Seconds the supervisor waits after SIGTERM before it kills (above the worker's shutdown grace). */
  stopTimeoutSecs: number;
  /** STUDIO_WORKER_LOG for the daemon. */
  logFilter: string;
}

/** The stop timeout for a shutdown grace: the grace, the outbox flush (3 s) and a margin; at least 15 s. */
export function stopTimeoutFor(shutdownGraceSecs: number): number {
  return Math.max(15, Math.ceil(shutdownGraceSecs) + 10);
}

/** The file that defines the service on this platform. */
export function serviceFile(host: Host, configPath: string): string {
  if (host.platform === 'darwin') return join(host.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  if (host.platform === 'win32') return join(configDirOf(configPath), 'studio-worker.task.xml');
  return join(xdgConfigHome(host), 'systemd', 'user', SYSTEMD_UNIT);
}

export function systemdUnit(argv: readonly string[], spec: ServiceSpec): string {
  return [
    '[Unit]',
    'Description=studio-worker daemon (lends this machine to a studio)',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${argv.map(systemdArg).join(' ')}`,
    `Environment=${systemdArg(`STUDIO_WORKER_LOG=${spec.logFilter}`)}`,
    // Tells the updater that systemd restarts it: an update exits with EXIT_RESTART (75) and the restart runs the
    // new version through the launcher. A successor started by the daemon itself would die with the
    // unit's cgroup (KillMode=mixed) once this process exits.
    `Environment=${systemdArg(`${SUPERVISED_ENV}=systemd`)}`,
    'Restart=on-failure',
    'RestartSec=5',
    // A second daemon for the same config exits 3 at once; restarting it would only repeat that. A
    // daemon displaced by a newer one with the same worker id (4003) exits 5; a restart would displace
    // the newer one in turn.
    `RestartPreventExitStatus=${EXIT_LOCKED} ${EXIT_DISPLACED}`,
    // The update's "restart me": restarted whatever Restart= says, and not logged as a failure.
    `RestartForceExitStatus=${EXIT_RESTART}`,
    `SuccessExitStatus=${EXIT_RESTART}`,
    // SIGTERM to the daemon alone, so a running engine is not killed under its job (the daemon finishes
    // or hands the job back, then kills its engines); whatever is left of the cgroup then gets SIGKILL.
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${spec.stopTimeoutSecs}`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

export function launchdServicePlist(argv: readonly string[], spec: ServiceSpec, logPath: string): string {
  return plist({
    Label: LAUNCHD_LABEL,
    ProgramArguments: [...argv],
    // The updater exits with EXIT_RESTART for an update, and launchd starts the launcher again.
    EnvironmentVariables: { STUDIO_WORKER_LOG: spec.logFilter, [SUPERVISED_ENV]: 'launchd' },
    RunAtLoad: true,
    // Restart after a failure (and after an update's EXIT_RESTART), not after a clean stop.
    KeepAlive: { SuccessfulExit: false },
    ThrottleInterval: 10,
    ExitTimeOut: spec.stopTimeoutSecs,
    ProcessType: 'Background',
    StandardOutPath: logPath,
    StandardErrorPath: logPath,
  });
}

/** Task Scheduler XML (schtasks wants UTF-16; `windowsTaskFile` adds the encoding). */
export function windowsTaskXml(argv: readonly string[], user: string): string {
  const [command, ...args] = argv;
  return [
    '<?xml version="1.0" encoding="UTF-16"?>',
    '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">',
    '  <RegistrationInfo>',
    '    <Description>studio-worker daemon (lends this machine to a studio)</Description>',
    '  </RegistrationInfo>',
    '  <Triggers>',
    '    <LogonTrigger>',
    '      <Enabled>true</Enabled>',
    `      <UserId>${xmlText(user)}</UserId>`,
    '    </LogonTrigger>',
    '  </Triggers>',
    '  <Principals>',
    '    <Principal id="Author">',
    `      <UserId>${xmlText(user)}</UserId>`,
    '      <LogonType>InteractiveToken</LogonType>',
    '      <RunLevel>LeastPrivilege</RunLevel>',
    '    </Principal>',
    '  </Principals>',
    '  <Settings>',
    '    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>',
    '    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>',
    '    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>',
    '    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>',
    '    <RestartOnFailure>',
    '      <Interval>PT1M</Interval>',
    '      <Count>10</Count>',
    '    </RestartOnFailure>',
    '    <Hidden>true</Hidden>',
    '  </Settings>',
    '  <Actions Context="Author">',
    '    <Exec>',
    `      <Command>${xmlText(command ?? '')}</Command>`,
    `      <Arguments>${xmlText(args.map(windowsArg).join(' '))}</Arguments>`,
    '    </Exec>',
    '  </Actions>',
    '</Task>',
    '',
  ].join('\r\n');
}

/** UTF-16LE with a byte-order mark, as schtasks /XML reads it. */
export function windowsTaskFile(xml: string): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(xml, 'utf16le')]);
}


export interface ServiceResult {
  file: string;
  steps: string[];
  /** What the user may want to do next (logs, linger). */
  next: string[];
}

/** Write the service definition and hand it to the platform's supervisor, which starts it now. */
export async function installService(host: Host, configPath: string, spec: ServiceSpec): Promise<ServiceResult> {
  const argv = workerArgv(host, configPath, ['run']);
  const file = serviceFile(host, configPath);
  const steps: string[] = [];
  const logs = join(configDirOf(configPath), 'logs');
  if (host.platform === 'darwin') {
    await mkdir(logs, { recursive: true, mode: 0o700 });
    steps.push(`${await writeIfChanged(file, launchdServicePlist(argv, spec, join(logs, 'daemon.out')))} ${file}`);
    const domain = `gui/${host.uid}`;
    // A loaded older definition must go first, or bootstrap refuses ("service already loaded").
    const bootout = await host.run('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`]);
    if (bootout.code === 0) steps.push(`unloaded the previous ${LAUNCHD_LABEL}`);
    await mustRun(host, 'launchctl', ['bootstrap', domain, file], steps, manualLaunchd(domain, file));
    return { file, steps, next: [`logs: ${join(logs, 'daemon.out')}`, `status: launchctl print ${domain}/${LAUNCHD_LABEL}`] };
  }
  if (host.platform === 'win32') {
    const user = host.env.USERDOMAIN && host.env.USERNAME ? `${host.env.USERDOMAIN}\\${host.env.USERNAME}` : (host.env.USERNAME ?? '');
    steps.push(`${await writeIfChanged(file, windowsTaskFile(windowsTaskXml(argv, user)))} ${file}`);
    const manual = [`schtasks /Create /TN ${WINDOWS_TASK} /XML "${file}" /F`, `schtasks /Run /TN ${WINDOWS_TASK}`];
    await mustRun(host, 'schtasks', ['/Create', '/TN', WINDOWS_TASK, '/XML', file, '/F'], steps, manual);
    await mustRun(host, 'schtasks', ['/Run', '/TN', WINDOWS_TASK], steps, manual.slice(1));
    return { file, steps, next: [`logs: ${logs}`, `status: schtasks /Query /TN ${WINDOWS_TASK} /V /FO LIST`] };
  }
  if (host.platform !== 'linux' && host.platform !== 'freebsd' && host.platform !== 'openbsd') {
    throw new OpsError('unsupported_platform', `no service manager is supported on ${host.platform}; run \`studio-worker run\` under your own supervisor`);
  }
  steps.push(`${await writeIfChanged(file, systemdUnit(argv, spec))} ${file}`);
  const manual = ['systemctl --user daemon-reload', `systemctl --user enable --now ${SYSTEMD_UNIT}`];
  await mustRun(host, 'systemctl', ['--user', 'daemon-reload'], steps, manual);
  await mustRun(host, 'systemctl', ['--user', 'enable', '--now', SYSTEMD_UNIT], steps, manual.slice(1));
  const user = host.env.USER ?? host.env.LOGNAME ?? '$USER';
  return {
    file,
    steps,
    next: [
      `logs: journalctl --user -u ${SYSTEMD_UNIT} -f (and ${logs})`,
      `status: systemctl --user status ${SYSTEMD_UNIT}`,
      `to keep it running while you are logged out (a headless box): loginctl enable-linger ${user}`,
    ],
  };
}

/** Stop, disable and remove the service. Missing pieces are fine (it may never have been installed). */
export async function uninstallService(host: Host, configPath: string): Promise<ServiceResult> {
  const file = serviceFile(host, configPath);
  const steps: string[] = [];
  if (host.platform === 'darwin') {
    const domain = `gui/${host.uid}`;
    const bootout = await host.run('launchctl', ['bootout', `${domain}/${LAUNCHD_LABEL}`]);
    if (bootout.code === 0) steps.push(`ran launchctl bootout ${domain}/${LAUNCHD_LABEL} (stopped and unloaded)`);
    else if (bootout.missing) steps.push('launchctl is not available; nothing to unload');
  } else if (host.platform === 'win32') {
    const end = await host.run('schtasks', ['/End', '/TN', WINDOWS_TASK]);
    if (end.code === 0) steps.push(`ran schtasks /End /TN ${WINDOWS_TASK} (stopped)`);
    const remove = await host.run('schtasks', ['/Delete', '/TN', WINDOWS_TASK, '/F']);
    if (remove.code === 0) steps.push(`ran schtasks /Delete /TN ${WINDOWS_TASK} /F`);
  } else {
    const disable = await host.run('systemctl', ['--user', 'disable', '--now', SYSTEMD_UNIT]);
    if (disable.code === 0) steps.push(`ran systemctl --user disable --now ${SYSTEMD_UNIT} (stopped and disabled)`);
    else if (disable.missing) steps.push('systemctl is not available; nothing to stop');
  }
  if (await removeFile(file)) steps.push(`removed ${file}`);
  if (host.platform !== 'darwin' && host.platform !== 'win32') {
    const reload = await host.run('systemctl', ['--user', 'daemon-reload']);
    if (reload.code === 0 && steps.length > 0) steps.push('ran systemctl --user daemon-reload');
  }
  return { file, steps, next: [] };
}

/** Whether this user has the service defined (its file, or on Windows the scheduled task). */
export async function serviceInstalled(host: Host, configPath: string): Promise<boolean> {
  if (host.platform === 'win32') return (await host.run('schtasks', ['/Query', '/TN', WINDOWS_TASK])).code === 0;
  return fileExists(serviceFile(host, configPath));
}

function manualLaunchd(domain: string, file: string): string[] {
  return [`launchctl bootstrap ${domain} '${file}'`];
}

async function mustRun(host: Host, command: string, args: string[], steps: string[], manual: string[]): Promise<CommandResult> {
  const result = await host.run(command, args);
  const line = commandLine(command, args);
  if (result.missing) {
    throw new OpsError(
      'command_missing',
      `${command} is not available here, so the service could not be started. ${steps.length > 0 ? `Done so far: ${steps.join('; ')}. ` : ''}` +
        `On a machine with ${command}, run: ${manual.join(' && ')}. Without it, use \`studio-worker setup\` (login autostart) or PM2 instead`,
    );
  }
  if (result.code !== 0) {
    const why = (result.stderr.trim() || result.stdout.trim() || 'no output').split('\n').slice(0, 3).join(' ');
    throw new OpsError(
      'command_failed',
      `${line} failed (exit code ${result.code ?? 'none'}): ${why}. ${steps.length > 0 ? `Done so far: ${steps.join('; ')}. ` : ''}` +
        `Fix that and run \`studio-worker install-service\` again, or run by hand: ${manual.join(' && ')}`,
    );
  }
  steps.push(`ran ${line}`);
  return result;
}
