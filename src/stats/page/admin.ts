import { api, basicToken, logIn, logOut, type Reply, type ReplyBody } from './session.js';
import { toast } from './toast.js';

// The admin side of the page: the login dialog, log out, the server state buttons, the
// strategy drop-down and the reload button. Each change is one call to the admin API; the
// page shows its outcome in a toast and the new state arrives with the next snapshot (the
// listener sends one at once after an admin call).

export interface AdminHooks {
  /** Draw the page again (the admin controls appear or go). */
  render(): void;
  /** Fetch a snapshot now, not at the next tick. */
  refresh(): void;
}

/** The page's element `id`, checked to be of the expected kind. */
function byId<T extends HTMLElement>(id: string, kind: abstract new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof kind)) throw new Error(`the page has no ${kind.name} #${id}`);
  return el;
}

function failed(r: Reply<ReplyBody>, hooks: AdminHooks): void {
  if (r.status === 401) {
    logOut();
    hooks.render();
    toast('Credentials rejected: log in again', true);
  } else {
    toast(r.body.error ?? `HTTP ${r.status}`, true);
  }
}

const shown = (error: unknown): void => toast(String(error), true);

async function changeState(backend: string, server: string, state: string, hooks: AdminHooks): Promise<void> {
  const r = await api('POST', `/api/backends/${encodeURIComponent(backend)}/servers/${encodeURIComponent(server)}/state`, { state });
  if (r.status === 200) toast(`${backend}/${server} is now ${r.body.state}`);
  else failed(r, hooks);
}

async function changeStrategy(backend: string, strategy: string, hooks: AdminHooks): Promise<void> {
  const r = await api('PUT', `/api/backends/${encodeURIComponent(backend)}/strategy`, { strategy });
  if (r.status === 200) {
    toast(`${backend} now balances with ${r.body.strategy}`);
    hooks.refresh();
  } else {
    failed(r, hooks);
    hooks.render();
  }
}

async function reloadConfig(hooks: AdminHooks): Promise<void> {
  const r = await api('POST', '/api/reload');
  if (r.status === 200) toast(`Config reloaded (generation ${r.body.generation})`);
  else if (r.status === 422) toast(`Reload rejected: ${(r.body.errors ?? []).join('; ')}`, true);
  else failed(r, hooks);
}

async function submitLogin(hooks: AdminHooks): Promise<void> {
  const name = byId('u', HTMLInputElement).value;
  const password = byId('p', HTMLInputElement);
  const message = byId('msg', HTMLElement);
  const token = basicToken(name, password.value);
  message.textContent = '';
  const r = await api('GET', '/api/whoami', undefined, token);
  if (r.status !== 200) {
    message.textContent = r.status === 403 ? 'Admin is disabled (set stats.auth).' : 'Wrong username or password.';
    return;
  }
  logIn(token, name);
  byId('dlg', HTMLDialogElement).close();
  password.value = '';
  toast(`Logged in as ${name}`);
  hooks.render();
}

/** Wire the admin controls once; the buttons in the tables are handled by delegation. */
export function wireAdmin(hooks: AdminHooks): void {
  document.addEventListener('click', (e) => {
    const el = e.target instanceof Element ? e.target.closest<HTMLButtonElement>('button[data-act="state"]') : null;
    if (el === null || el.disabled) return;
    changeState(el.dataset.backend ?? '', el.dataset.server ?? '', el.dataset.state ?? '', hooks).catch(shown);
  });
  document.addEventListener('change', (e) => {
    const el = e.target;
    if (!(el instanceof HTMLSelectElement) || el.dataset.act !== 'strategy') return;
    const strategy = el.value;
    el.blur();
    changeStrategy(el.dataset.backend ?? '', strategy, hooks).catch(shown);
  });
  byId('login', HTMLButtonElement).addEventListener('click', () => {
    byId('msg', HTMLElement).textContent = '';
    byId('dlg', HTMLDialogElement).showModal();
    byId('u', HTMLInputElement).focus();
  });
  byId('cancel', HTMLButtonElement).addEventListener('click', () => byId('dlg', HTMLDialogElement).close());
  byId('logout', HTMLButtonElement).addEventListener('click', () => {
    logOut();
    hooks.render();
  });
  byId('reload', HTMLButtonElement).addEventListener('click', () => {
    reloadConfig(hooks).catch(shown);
  });
  byId('form', HTMLFormElement).addEventListener('submit', (e) => {
    e.preventDefault();
    submitLogin(hooks).catch((error: unknown) => {
      byId('msg', HTMLElement).textContent = String(error);
    });
  });
}
