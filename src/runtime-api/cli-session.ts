import type { Socket } from 'node:net';
import type { RuntimeApiLevel } from '../config/types.js';

// One connection to the runtime API socket, speaking HAProxy 2.6's CLI framing
// (doc/management.txt §9.3; src/cli.c cli_io_handler):
//   - a request is a line; `;` separates commands on one line; `\` escapes `;`, space, `\`;
//   - each command's output is followed by an empty line ("\n"), so a script can tell where
//     one answer ends even when it pipelined several;
//   - non-interactive (the default): after the commands of what was sent, the connection
//     closes. `prompt` toggles interactive mode: the connection stays, and every answer is
//     followed by "\n> " instead; `quit` closes it.
// Input is bounded (MAX_LINE, as HAProxy's tune.bufsize bounds a request): a longer line
// closes the connection. Nothing a client sends can throw out of here: a command that fails
// unexpectedly answers "Internal error." and the connection carries on.

/** A request line longer than this (HAProxy: one buffer, 16 KiB by default) closes the connection. */
export const MAX_LINE = 16384;

export interface CommandContext {
  readonly level: RuntimeApiLevel;
}

/** Runs one command (already split into words); returns its output (HAProxy's text, newline-terminated where HAProxy's is). */
export type CommandRunner = (args: string[], ctx: CommandContext) => string | Promise<string>;

export class CliSession {
  private input = '';
  private interactive = false;
  private busy = false;
  private closed = false;
  private ended = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: CommandContext,
    private readonly run: CommandRunner,
    private readonly timeoutMs: number,
    private readonly onError: (error: unknown) => void,
  ) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('end', () => {
      this.ended = true;
      void this.pump();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.clearTimer();
    });
    this.arm();
  }

  private onData(chunk: string): void {
    if (this.closed) return;
    this.input += chunk;
    if (this.input.length > MAX_LINE && !this.input.slice(0, MAX_LINE).includes('\n')) {
      this.close();
      return;
    }
    void this.pump();
  }

  /** Process complete lines, one command at a time, in order. */
  private async pump(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      for (;;) {
        let nl = this.input.indexOf('\n');
        if (nl < 0 && this.ended && this.input.length > 0) {
          // The client half-closed after a last line without its newline: HAProxy takes
          // the request only once the LF arrives, but `echo -n cmd | socat` is common; run it.
          this.input += '\n';
          nl = this.input.length - 1;
        }
        if (nl < 0) break;
        let line = this.input.slice(0, nl);
        this.input = this.input.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        const keepOpen = await this.runLine(line);
        if (!keepOpen || this.closed) {
          this.close();
          return;
        }
      }
      if (this.ended && !this.closed) this.close();
      else this.arm();
    } finally {
      this.busy = false;
    }
  }

  /** Run the commands of one line; false when the connection should close after it. */
  private async runLine(line: string): Promise<boolean> {
    this.clearTimer();
    const commands = splitCommands(line);
    for (const words of commands) {
      if (this.closed) return false;
      if (words[0] === 'prompt' && words.length === 1) {
        this.interactive = !this.interactive;
        this.write(this.interactive ? '\n> ' : '\n');
        continue;
      }
      if (words[0] === 'quit' && words.length === 1) return false;
      let out: string;
      try {
        out = await this.run(words, this.ctx);
      } catch (error) {
        this.onError(error);
        out = 'Internal error.\n';
      }
      this.write(out + (this.interactive ? '\n> ' : '\n'));
    }
    // Non-interactive: the connection closes once the request buffer is empty (HAProxy keeps
    // going while pipelined lines are already there).
    return this.interactive || this.input.includes('\n');
  }

  private write(text: string): void {
    if (!this.closed && this.socket.writable) this.socket.write(text, 'latin1');
  }

  /** Interactive mode: close after `timeoutMs` without a command (HAProxy `stats timeout`). */
  private arm(): void {
    this.clearTimer();
    if (this.closed) return;
    this.timer = setTimeout(() => this.close(), this.timeoutMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.socket.end();
  }
}

/**
 * Split a request line into commands (at unescaped `;`) and words (at unescaped spaces and
 * tabs); `\x` stands for x (HAProxy cli_parse_request: `\;`, `\ `, `\\`).
 */
export function splitCommands(line: string): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      word += line[++i]!;
      inWord = true;
    } else if (c === ';') {
      if (inWord) words.push(word);
      commands.push(words);
      words = [];
      word = '';
      inWord = false;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  commands.push(words);
  return commands;
}
