import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of the counters in /proc/stat and /proc/<pid>/stat; 100 on mainstream Linux. */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds every process on the machine has used since boot (all cores, idle and iowait left
 * out), from /proc/stat; undefined off Linux. With the studio's and the bench's own shares taken
 * away, what remains is other work competing for the same cores during a run.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = [user, nice, system, irq, softirq, steal].reduce<number>((sum, v) => sum + (v ?? 0), 0);
    return busy / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) one process has used, from /proc/<pid>/stat; undefined when it cannot tell. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): state is field 3,
    // utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/** One `kB` field of /proc/<pid>/status (VmRSS, VmHWM…); undefined when it cannot tell. */
export function processStatusKb(pid: number | 'self', field: string): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb);
  } catch {
    return undefined;
  }
}

/** Cores busy during a stretch of wall time (1 = one core all the time). */
export interface CpuShares {
  /** The studio child; undefined where /proc cannot tell. */
  studio?: number;
  /** This process: the simulated workers and the HTTP client. */
  bench: number;
  /** Everything else on the machine. */
  other?: number;
}

/** Start measuring; `stop()` answers the shares since the start. */
export function startCpuMeter(studioCpuSeconds: () => number | undefined): { stop(): CpuShares } {
  const machine0 = machineBusySeconds();
  const studio0 = studioCpuSeconds();
  const bench0 = process.cpuUsage();
  const t0 = performance.now();
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const studio1 = studioCpuSeconds();
      const benchUsage = process.cpuUsage(bench0);
      const machine1 = machineBusySeconds();
      const bench = (benchUsage.user + benchUsage.system) / 1e6 / wall;
      const studio = studio0 === undefined || studio1 === undefined ? undefined : (studio1 - studio0) / wall;
      const other = machine0 === undefined || machine1 === undefined || studio === undefined ? undefined : Math.max(0, (machine1 - machine0) / wall - studio - bench);
      return { studio, bench, other };
    },
  };
}
