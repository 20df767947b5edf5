import vm from 'node:vm';

// The time budget for user code run at load time (module evaluation, factory, dry run). A
// synchronous endless loop cannot be stopped from the same thread by a timer; vm's `timeout`
// can: a watchdog thread terminates whatever JavaScript runs during the script, functions
// from any context included, and the script throws ERR_SCRIPT_EXECUTION_TIMEOUT (Node's
// vm docs, "timeout"). Each call starts a watchdog thread (~0.2 ms), so this is for the cold
// path only: requests call user code directly, unguarded by time, after its dry run passed.

/** Default budget for one load-time call of user code. Generous: a loaded 2-core CI machine. */
export const USER_CODE_BUDGET_MS = 1000;

const timer = vm.createContext({ job: null as (() => unknown) | null });
const runJob = new vm.Script('job()', { filename: 'switchyard:user-code-budget' });
let depth = 0;

export class BudgetExceeded extends Error {
  constructor(
    readonly what: string,
    readonly budgetMs: number,
  ) {
    super(`${what} did not return within ${budgetMs} ms (an endless loop?)`);
    this.name = 'BudgetExceeded';
  }
}

/**
 * Run `fn` and return what it returns; throw BudgetExceeded when it runs longer than
 * `budgetMs`. Nested calls run inside the outer budget (one watchdog at a time).
 */
export function withinBudget<T>(what: string, fn: () => T, budgetMs = USER_CODE_BUDGET_MS): T {
  if (depth > 0) return fn();
  const ctx = timer as { job: (() => unknown) | null };
  ctx.job = fn;
  depth++;
  try {
    return runJob.runInContext(timer, { timeout: budgetMs }) as T;
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new BudgetExceeded(what, budgetMs);
    throw error;
  } finally {
    depth--;
    ctx.job = null;
  }
}
