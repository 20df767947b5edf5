import { createHash } from 'node:crypto';
import { PAGE_RENDER } from './page-render.js';
import { PAGE_SCRIPT } from './page-script.js';
import { PAGE_STYLE } from './page-style.js';

// The stats page: one self-contained HTML document. Its style (page-style.ts) and script
// (page-render.ts: formatting, charts, sections; page-script.ts: live data, DOM patching,
// login, admin) are inlined; charts are SVG drawn by that script; nothing is fetched from
// elsewhere, and the CSP says so: only this style and this script run, by their hashes,
// requests go to this listener only. The favicon is an empty data: URL so the browser asks
// for no /favicon.ico.

const SCRIPT = `(function () {\n  'use strict';\n${PAGE_RENDER}\n${PAGE_SCRIPT}\n})();\n`;

const BODY = String.raw`<header>
<div class="brand"><h1>switchyard</h1><span>stats</span></div>
<span class="live"><span id="dot" class="dot"></span><span id="live-text">connecting…</span></span>
<span id="meta" class="meta"></span><span class="sp"></span>
<span id="who" class="meta"></span>
<button id="reload" class="ghost" type="button" hidden>Reload config</button>
<button id="login" type="button" hidden>Log in</button>
<button id="logout" class="ghost" type="button" hidden>Log out</button>
</header>
<main>
<div id="banner"></div>
<div id="summary" class="tiles"></div>
<div id="frontends"></div>
<div id="backends"></div>
<div id="events-box"></div>
<noscript><div class="card empty">This page needs JavaScript; the same figures are at /stats;csv, /api/stats and /metrics.</div></noscript>
</main>
<div id="toast" role="status" aria-live="polite"></div>
<dialog id="dlg"><form id="form">
<h3>Admin login</h3>
<label>Username<input id="u" name="username" autocomplete="username" required></label>
<label>Password<input id="p" name="password" type="password" autocomplete="current-password" required></label>
<div id="msg" class="msg" role="alert"></div>
<div class="row"><button type="button" id="cancel">Cancel</button><button type="submit" id="submit">Log in</button></div>
</form></dialog>`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard stats</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head><body>
${BODY}
<script>${SCRIPT}</script>
</body></html>
`;

/** Only this page's own script and style run; requests go to this listener only. */
export const PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(PAGE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
