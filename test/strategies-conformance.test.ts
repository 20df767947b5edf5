// Every strategy, built-in or user example, against the one conformance suite.
import { roundRobin } from '../src/strategies/round-robin.js';
import { leastConnections } from '../src/strategies/least-connections.js';
import { ipHash } from '../src/strategies/ip-hash.js';
import { random } from '../src/strategies/random.js';
import weightedFirst from '../examples/strategies/weighted-first.js';
import { strategyConformance } from './support/strategy-conformance.js';

strategyConformance('round-robin', roundRobin);
strategyConformance('least-connections', leastConnections);
strategyConformance('ip-hash', ipHash);
strategyConformance('random', random);
strategyConformance('examples/strategies/weighted-first.js', weightedFirst, { perWeight: 2 });
