import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium: playwright-core never downloads a browser (`.ci/run` installs it with apt). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium as every browser test of the project runs it; a clear error when it is missing. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing; install Debian's chromium with "apt-get install -y chromium"`);
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
}
