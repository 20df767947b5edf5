// The admin's credentials for this tab: checked on /api/whoami at login, kept in
// sessionStorage (gone with the tab) and sent as Basic auth by every fetch, with
// `x-requested-with` so that a 401 brings up the page's own dialog, never a browser prompt.

const AUTH_KEY = 'switchyard-auth';
const USER_KEY = 'switchyard-user';

let token = sessionStorage.getItem(AUTH_KEY);
let user = sessionStorage.getItem(USER_KEY) ?? '';

export function loggedIn(): boolean {
  return token !== null;
}

export function userName(): string {
  return user;
}

/** The Basic credentials of `name:password`, UTF-8 (RFC 7617 section 2.1's charset). */
export function basicToken(name: string, password: string): string {
  const utf8 = new TextEncoder().encode(`${name}:${password}`);
  let binary = '';
  for (const byte of utf8) binary += String.fromCharCode(byte);
  return btoa(binary);
}

export function logIn(newToken: string, name: string): void {
  token = newToken;
  user = name;
  sessionStorage.setItem(AUTH_KEY, newToken);
  sessionStorage.setItem(USER_KEY, name);
}

export function logOut(): void {
  token = null;
  user = '';
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(USER_KEY);
}

export interface Reply<T> {
  status: number;
  body: T;
}

/** The JSON bodies the listener answers with (admin replies, errors), read loosely. */
export interface ReplyBody {
  error?: string;
  errors?: string[];
  state?: string;
  strategy?: string;
  generation?: number;
}

/**
 * A call to this listener. Admin writes must be declared JSON (the listener refuses anything
 * else): every write sends a JSON body, {} when it has nothing to say (reload). A body that
 * is not JSON reads as {}.
 */
export async function api<T = ReplyBody>(method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown, auth = token): Promise<Reply<T>> {
  const headers: Record<string, string> = { 'x-requested-with': 'switchyard-page' };
  if (auth !== null) headers.authorization = `Basic ${auth}`;
  const init: RequestInit = { method, headers };
  if (method !== 'GET') {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(url, init);
  const json = (await res.json().catch(() => ({}))) as T;
  return { status: res.status, body: json };
}
