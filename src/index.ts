// The package entry: the types user code is written against. `import type { Strategy, Router,
// Hook } from 'switchyard'` in TypeScript, `@type {import('switchyard').Router}` in JSDoc.
// (The balancer itself runs from the CLI: `npx switchyard --config FILE`.)
export type { Strategy, StrategyServer, PickContext, StrategyFactory } from './strategies/strategy.js';
export type { Router, Hook, RequestView, ResponseView, RouteResult, DirectAnswer } from './usercode/api.js';
