import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
import type { Command } from 'commander';

const DB = 'studio.sqlite';

/**
 * `studio backup` and `studio restore`: the database of a data directory, copied with SQLite's
 * online backup (a consistent snapshot while the studio keeps serving: WAL readers do not block it)
 * and put back only into a stopped studio. Result files live beside it in results/ and are copied
 * with the usual file tools (the database names them; a restored job whose file is absent answers
 * `result_missing`).
 */
export function registerDataCommands(program: Command): void {
  program
    .command('backup')
    .description('copy the database of a (running or stopped) studio to FILE, consistently')
    .requiredOption('--out <file>', 'where the copy goes (a SQLite file)')
    .option('--data-dir <dir>', 'the studio data directory', process.env.STUDIO_DATA_DIR ?? '.data/studio')
    .action(async (opts: { out: string; dataDir: string }) => {
      const source = join(resolve(opts.dataDir), DB);
      if (!existsSync(source)) throw new Error(`no studio database at ${source}; pass --data-dir`);
      const out = resolve(opts.out);
      if (existsSync(out)) throw new Error(`${out} exists; choose a new file (a backup never overwrites)`);
      await copyDatabase(source, out);
      const check = verify(out);
      process.stderr.write(`backup of ${source} written to ${out} (${statSync(out).size} bytes, ${check.jobs} jobs, schema ${check.schema}); copy ${join(resolve(opts.dataDir), 'results')} too for the result files\n`);
    });

  program
    .command('restore')
    .description('put a backup back as the database of a STOPPED studio (the current one is kept beside it)')
    .argument('<file>', 'a file written by "studio backup"')
    .option('--data-dir <dir>', 'the studio data directory', process.env.STUDIO_DATA_DIR ?? '.data/studio')
    .option('--force', 'restore although the database looks in use (its -wal file exists)', false)
    .action(async (file: string, opts: { dataDir: string; force: boolean }) => {
      const from = resolve(file);
      const check = verify(from);
      const dir = resolve(opts.dataDir);
      const target = join(dir, DB);
      // SQLite removes the -wal file when the last connection closes cleanly: its presence means a
      // studio is running (or crashed) on this database.
      if (existsSync(`${target}-wal`) && !opts.force) {
        throw new Error(`${target} looks in use (${target}-wal exists): stop the studio first, or pass --force if it crashed`);
      }
      let kept = '';
      if (existsSync(target)) {
        kept = `${target}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(target, kept);
      }
      for (const suffix of ['-wal', '-shm']) rmSync(`${target}${suffix}`, { force: true });
      await copyDatabase(from, target);
      process.stderr.write(`restored ${from} (${check.jobs} jobs, schema ${check.schema}) to ${target}${kept ? `; the previous database is kept as ${kept}` : ''}\n`);
    });
}

/** SQLite's online backup into `<to>.part`, renamed into place when whole. */
async function copyDatabase(from: string, to: string): Promise<void> {
  const db = new DatabaseSync(from, { readOnly: true });
  try {
    await backup(db, `${to}.part`);
    renameSync(`${to}.part`, to);
  } finally {
    db.close();
    rmSync(`${to}.part`, { force: true });
  }
}

/** A backup is a studio database that passes SQLite's integrity check. */
function verify(path: string): { jobs: number; schema: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const integrity = db.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
    if (integrity.integrity_check !== 'ok') throw new Error(`${path} fails SQLite's integrity check: ${integrity.integrity_check}`);
    const schema = (db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number }).v;
    const jobs = (db.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
    return { jobs, schema };
  } catch (error) {
    throw new Error(`${path} is not a studio database: ${(error as Error).message}`);
  } finally {
    db.close();
  }
}
