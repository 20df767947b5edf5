import type { RuntimeComponent } from './host.js';
import type { Switchyard } from './switchyard.js';

// The components that run beside the proxy core, built once at start: health checks,
// Consul discovery (and self-registration), the stats listener. Each follows the runtime
// through sync() and is stopped in reverse order.

export async function buildComponents(sy: Switchyard): Promise<RuntimeComponent[]> {
  const components: RuntimeComponent[] = [];
  void sy;
  return components;
}
