// Error catalog: stable codes users can grep for and tests can match (like undici's UND_ERR_*).

export const ErrorCodes = {
  CONFIG_INVALID: 'SY_ERR_CONFIG_INVALID',
  CONFIG_READ: 'SY_ERR_CONFIG_READ',
  STRATEGY_LOAD: 'SY_ERR_STRATEGY_LOAD',
  /** A router or hooks module cannot load, exports the wrong thing, or fails its dry run. */
  USER_CODE_LOAD: 'SY_ERR_USER_CODE_LOAD',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class SwitchyardError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'SwitchyardError';
  }
}

/** One config problem, with its path in the file (`backends.api.servers[1].address`). */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
  /** 1-based line in the file when known. */
  readonly line?: number;
}

export class ConfigError extends SwitchyardError {
  constructor(
    readonly file: string | null,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(ErrorCodes.CONFIG_INVALID, `invalid config${file ? ` ${file}` : ''}: ${issues.map(formatIssue).join('; ')}`, issues.map(formatIssue));
    this.name = 'ConfigError';
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.path || '(root)'}: ${issue.message}${issue.line ? ` (line ${issue.line})` : ''}`;
}
