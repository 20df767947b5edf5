import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfigFile } from './config/load.js';
import { demoConfig } from './config/demo.js';
import { summarizeConfig } from './config/summary.js';
import { formatRouteTables, routeWarnings } from './config/route-table.js';
import type { Config } from './config/types.js';
import { ConfigError, SwitchyardError, formatIssue } from './errors.js';
import { log } from './log.js';
import { startDemoBackends, type DemoBackends } from './demo.js';
import { startSwitchyard, type Switchyard } from './switchyard.js';
import { buildRuntime } from './model/runtime.js';
import { installUncaughtPolicy } from './uncaught.js';
import { buildComponents } from './components.js';
import cluster from 'node:cluster';
import { Primary, resolveWorkers } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';

// The CLI: `switchyard [--config FILE]`, `switchyard check --config FILE`, --version, --help.
// Owns process concerns only: signals, exit codes, the demo's backends.

const DEFAULT_CONFIG = 'switchyard.yaml';
const DEMO_PORTS = { http: 11101, tcp: 11100, stats: 11099, echo: [11111, 11112, 11113] } as const;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function printConfigErrors(error: unknown): void {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.file ?? 'config'}: ${error.issues.length} error${error.issues.length === 1 ? '' : 's'}\n`);
    for (const issue of error.issues) process.stderr.write(`  ${formatIssue(issue)}\n`);
  } else if (error instanceof SwitchyardError) {
    process.stderr.write(`${error.code}: ${error.message}\n`);
  } else {
    process.stderr.write(`${(error as Error).message}\n`);
  }
}

async function check(file: string): Promise<number> {
  try {
    const config = await loadConfigFile(resolve(file));
    // Build the model too (no listener opens): loads user strategy modules and runs their
    // factories, so a missing export or a factory that throws fails here, not at start.
    await buildRuntime(config, null);
    process.stdout.write(`${summarizeConfig(config)}\n${formatRouteTables(config)}`);
    // Warnings, not errors: a shadowed route is legal, just never used (exit stays 0).
    for (const w of routeWarnings(config)) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
    return 0;
  } catch (error) {
    printConfigErrors(error);
    return 1;
  }
}

async function run(file: string | undefined): Promise<void> {
  let config: Config;
  let demo: DemoBackends | null = null;
  let demoPassword = '';
  const path = file ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : null);
  if (path !== null) {
    try {
      config = await loadConfigFile(resolve(path));
    } catch (error) {
      printConfigErrors(error);
      process.exit(1);
    }
  } else {
    demo = await startDemoBackends(DEMO_PORTS.echo);
    // A fresh password each run (or the one given): never a well-known default, even on loopback.
    demoPassword = process.env.SWITCHYARD_DEMO_PASSWORD ?? randomBytes(9).toString('base64url');
    config = demoConfig({ ...DEMO_PORTS, echo: demo.ports }, demoPassword);
  }

  const workers = resolveWorkers(config.workers);
  let sy: Switchyard | null = null;
  let primary: Primary | null = null;
  let stopping = false;
  // A signal that lands while starting (workers take a second or two) is kept and acted on
  // once started: without a handler Node would die of it, skipping the graceful stop.
  let pendingSignal: string | null = null;
  const stop = (signal: string) => {
    if (stopping) return;
    if (sy === null) {
      pendingSignal = signal;
      return;
    }
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, finishing in-flight requests');
    const timeout = sy.runtime().config.shutdownTimeoutMs;
    void (primary ? primary.stop(timeout) : sy.stop(timeout)).then(async () => {
      await demo?.close();
      log.info('stopped');
      process.exit(0);
    });
  };
  // Node as PID 1 in a container gets no default signal handling: these handlers are the exit.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    void sy?.reload();
  });
  try {
    if (workers > 1) {
      primary = await Primary.start({ config, loadConfig: loadConfigFile, components: buildComponents, logger: log }, workers);
      sy = primary.sy;
    } else {
      sy = await startSwitchyard({ config, loadConfig: loadConfigFile, components: buildComponents });
    }
  } catch (error) {
    log.fatal({ err: error }, 'cannot start');
    await demo?.close();
    process.exit(1);
  }
  if (pendingSignal !== null) {
    stop(pendingSignal);
    return;
  }
  const where = config.frontends.map((f) => `${f.name} (${f.mode}) on ${f.bind.host}:${f.bind.port}`).join(', ');
  log.info(
    { config: config.source ?? 'embedded demo', workers },
    `switchyard ${packageVersion()} running: ${where}; stats on http://${config.stats.bind.host}:${config.stats.bind.port}/`,
  );
  if (demo !== null) {
    process.stdout.write(
      `\nswitchyard demo is running (no config file given):\n` +
        `  stats page   http://127.0.0.1:${DEMO_PORTS.stats}/   (admin login: admin / ${demoPassword})\n` +
        `  HTTP         curl http://127.0.0.1:${DEMO_PORTS.http}/hello\n` +
        `  TCP (echo)   echo hi | nc 127.0.0.1 ${DEMO_PORTS.tcp}\n` +
        `Stop with Ctrl-C. Run your own with: switchyard --config switchyard.yaml\n\n`,
    );
  }

  // One bad connection must never take the balancer down: log, count, carry on.
  installUncaughtPolicy(log, 'uncaught exception (process kept running)');
}

if (cluster.isWorker && process.env.SWITCHYARD_WORKER === '1') {
  runWorker();
} else {
  await cli();
}

async function cli(): Promise<void> {
  const program = new Command();
  program
    // `check --config` belongs to `check`, not to the top-level `--config`.
    .enablePositionalOptions()
    .name('switchyard')
    .description('A programmable L4/L7 load balancer')
    .version(packageVersion(), '-v, --version')
    .option('-c, --config <file>', `config file (default: ./${DEFAULT_CONFIG} if present, else the embedded demo)`)
    .action(async (opts: { config?: string }) => {
      await run(opts.config);
    });
  program
    .command('check')
    .description('validate a config file: exit 0 with a summary, or 1 with every error and its path')
    .requiredOption('-c, --config <file>', 'config file to check')
    .action(async (opts: { config: string }) => {
      process.exitCode = await check(opts.config);
    });

  await program.parseAsync(process.argv);
}
