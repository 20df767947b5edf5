import type { RuntimeApiLevel } from '../config/types.js';
import type { RateSource } from '../stats/row.js';
import type { CommandContext } from './cli-session.js';
import { addServer, delServer, findServer, setAddr, setHealth, setMaxconn, setState, setWeight, shutdownSessions, type Found } from './server-commands.js';
import { showBackend, showInfo, showServersState, showSess, showStat, type ShowHost } from './show.js';

// The command table: HAProxy 2.6's keywords we implement, each with its usage line (as `help`
// prints it, HAProxy's wording), the level it needs, and its handler. Dispatch matches the
// longest keyword prefix, as HAProxy's cli_find_kw does; an unknown command gets HAProxy's
// usage message. Levels (HAProxy `level user|operator|admin` on `stats socket`):
//   user      read-only: help, show info/stat/backend/servers state, get weight, show cli level
//   operator  + show sess
//   admin     + every command that changes something

const LEVELS: Readonly<Record<RuntimeApiLevel, number>> = { user: 1, operator: 2, admin: 3 };
const PERMISSION_DENIED = 'Permission denied\n';

export interface ApiHost {
  readonly host: ShowHost;
  readonly rates: RateSource;
  readonly version: string;
  /** A change was made (the stats page is told at once). */
  changed(what: string, level: RuntimeApiLevel): void;
}

interface Command {
  readonly words: readonly string[];
  readonly usage: string;
  readonly level: RuntimeApiLevel;
  /** Changes servers in a way workers would not see (refused with `workers` > 1). */
  readonly local?: boolean;
  readonly run: (host: ApiHost, args: string[]) => string;
}

/** Commands taking `<backend>/<server>` at `at`: find it first, with HAProxy's errors. */
function onServer(at: number, fn: (found: Found, args: string[], host: ApiHost) => string) {
  return (host: ApiHost, args: string[]): string => {
    const found = findServer(host.host.runtime(), args[at]);
    return typeof found === 'string' ? found : fn(found, args, host);
  };
}

const SET_SERVER_USAGE = 'usage: set server <backend>/<server> addr | health | state | weight\n';

function setServer(found: Found, args: string[]): string {
  switch (args[3]) {
    case 'state':
      return setState(found, args[4] ?? '');
    case 'weight':
      return setWeight(found, args[4]);
    case 'addr':
      return setAddr(found, args);
    default:
      return SET_SERVER_USAGE;
  }
}

const COMMANDS: readonly Command[] = [
  {
    words: ['show', 'info'],
    usage: 'show info [desc|typed]*                 : report information about the running process',
    level: 'user',
    run: (h, a) => showInfo(h.host, h.rates, h.version, a),
  },
  {
    words: ['show', 'stat'],
    usage: 'show stat [desc|no-maint|typed|up]*     : report counters for each proxy and server',
    level: 'user',
    run: (h, a) => showStat(h.host, h.rates, a),
  },
  {
    words: ['show', 'servers', 'state'],
    usage: 'show servers state [<backend>]          : dump volatile server information (all or for a single backend)',
    level: 'user',
    run: (h, a) => showServersState(h.host, a),
  },
  {
    words: ['show', 'backend'],
    usage: 'show backend                            : list backends in the current running config',
    level: 'user',
    run: (h) => showBackend(h.host),
  },
  {
    words: ['show', 'sess'],
    usage: 'show sess                               : report the list of current sessions',
    level: 'operator',
    run: (h) => showSess(h.host),
  },
  {
    words: ['show', 'cli', 'level'],
    usage: 'show cli level                          : display the level of the current CLI session',
    level: 'user',
    run: () => '' /* answered in dispatch: it needs the session's level */,
  },
  {
    words: ['get', 'weight'],
    usage: "get weight <bk>/<srv>                   : report a server's current weight",
    level: 'user',
    run: onServer(2, ({ server }) => `${server.weight} (initial ${server.initialWeight})\n`),
  },
  {
    words: ['set', 'weight'],
    usage: "set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
    level: 'admin',
    local: true,
    run: onServer(2, (f, a) => setWeight(f, a[3])),
  },
  {
    words: ['set', 'server'],
    usage: "set server <bk>/<srv> [opts]            : change a server's state, weight or address",
    level: 'admin',
    run: onServer(2, setServer),
  },
  {
    words: ['set', 'maxconn', 'server'],
    usage: "set maxconn server <bk>/<srv>           : change a server's maxconn setting",
    level: 'admin',
    local: true,
    run: onServer(3, (f, a) => setMaxconn(f, a[4])),
  },
  {
    words: ['enable', 'server'],
    usage: "enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
    level: 'admin',
    run: onServer(2, (f) => setState(f, 'ready')),
  },
  {
    words: ['disable', 'server'],
    usage: "disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
    level: 'admin',
    run: onServer(2, (f) => setState(f, 'maint')),
  },
  {
    words: ['enable', 'health'],
    usage: 'enable health                           : enable health checks',
    level: 'admin',
    run: onServer(2, (f) => setHealth(f, true)),
  },
  {
    words: ['disable', 'health'],
    usage: 'disable health                          : disable health checks',
    level: 'admin',
    run: onServer(2, (f) => setHealth(f, false)),
  },
  {
    words: ['add', 'server'],
    usage: 'add server <bk>/<srv>                   : create a new server',
    level: 'admin',
    local: true,
    run: (h, a) => addServer(h.host.runtime(), a),
  },
  {
    words: ['del', 'server'],
    usage: 'del server <bk>/<srv>                   : remove a dynamically added server',
    level: 'admin',
    local: true,
    run: (h, a) => delServer(h.host.runtime(), a[2]),
  },
  {
    words: ['shutdown', 'sessions', 'server'],
    usage: 'shutdown sessions server <bk>/<srv>     : kill sessions on a server',
    level: 'admin',
    local: true,
    run: onServer(3, (f) => shutdownSessions(f)),
  },
];

/** `set server` changes only weight/addr locally; its state changes reach workers by flags. */
function isLocalChange(cmd: Command, args: readonly string[]): boolean {
  if (cmd.local === true) return true;
  return cmd.words[0] === 'set' && cmd.words[1] === 'server' && (args[3] === 'weight' || args[3] === 'addr');
}

const FIXED_HELP =
  '  help [<command>]                        : list matching or all commands\n' +
  '  prompt                                  : toggle interactive mode with prompt\n' +
  '  quit                                    : disconnect\n';

function find(args: readonly string[]): Command | undefined {
  let best: Command | undefined;
  for (const c of COMMANDS) {
    if (c.words.every((w, i) => args[i] === w) && (best === undefined || c.words.length > best.words.length)) best = c;
  }
  return best;
}

/** HAProxy cli_gen_usage_msg: the commands matching the first words (all of them if none). */
function usage(args: readonly string[], isHelp: boolean): string {
  const words = isHelp ? args.slice(1) : args;
  let length = 0;
  for (const c of COMMANDS) {
    let n = 0;
    while (n < c.words.length && words[n] !== undefined && words[n] === c.words[n]) n++;
    length = Math.max(length, n);
  }
  const head = isHelp
    ? 'The following commands are valid at this level:\n'
    : length === 0 && (words.length === 0 || words[0] === '')
      ? 'Unknown command. Please enter one of the following commands only:\n'
      : 'Unknown command, but maybe one of the following ones is a better match:\n';
  const entries = COMMANDS.filter((c) => c.words.slice(0, length).every((w, i) => words[i] === w))
    .map((c) => c.usage)
    .sort();
  return head + entries.map((u) => `  ${u}\n`).join('') + FIXED_HELP;
}

/** Run one command's words at a session's level; HAProxy's text back. Never throws on input. */
export function dispatch(host: ApiHost, args: string[], ctx: CommandContext): string {
  if (args[0] === 'help') return usage(args, true);
  const cmd = find(args);
  if (cmd === undefined) return usage(args, false);
  if (LEVELS[ctx.level] < LEVELS[cmd.level]) return PERMISSION_DENIED;
  if (cmd.words[0] === 'show' && cmd.words[1] === 'cli') return `${ctx.level}\n`;
  if (host.host.workers() !== null && isLocalChange(cmd, args)) {
    return `'${cmd.words.join(' ')}' is not available with workers > 1: the change would not reach the worker processes.\n`;
  }
  const out = cmd.run(host, args);
  if (cmd.level === 'admin') host.changed(args.join(' '), ctx.level);
  return out;
}
