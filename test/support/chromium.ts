import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

// Debian's chromium, driven by playwright-core for the page tests (stats, overload, user code).
// Playwright gives each launch a fresh --user-data-dir; it never downloads a browser: without
// /usr/bin/chromium the test fails with how to get it (scripts/ensure-system-deps.sh).

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags chromium keeps trying to reach Google's services.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless chromium; throws, saying how to install it, when it is missing. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the page tests drive Debian's chromium (run scripts/ensure-system-deps.sh as root, or apt-get install chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
