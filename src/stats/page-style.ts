// The stats page's stylesheet (inline in the page; the CSP allows exactly this text by hash).
// Light and neutral so the state colours carry the meaning: every state has a text colour
// that passes WCAG AA (4.5:1) on its own tint, and rows of servers that are not UP are tinted
// whole, like HAProxy's stats page, so a DOWN server is seen from across the room. Below
// 760 px the tables turn into one card per row (a two-column grid of labelled values).

export const PAGE_STYLE = String.raw`
:root{--fg:#1f2328;--muted:#57606a;--line:#d0d7de;--soft:#eaeef2;--bg:#f3f5f8;--card:#fff;--head:#161b22;--accent:#0969da;
--up:#116329;--upbg:#dafbe1;--upbar:#2da44e;--down:#a40e26;--downbg:#ffebe9;--downbar:#cf222e;
--maint:#0550ae;--maintbg:#ddf4ff;--maintbar:#218bff;--drain:#7d4e00;--drainbg:#fff8c5;--drainbar:#d4a72c;
--nolb:#424a53;--nolbbg:#eaeef2;--nolbbar:#8c959f;--gd:#953800;--gdbg:#fff1e5;--gu:#3f6212;--gubg:#ecfccb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg);font-variant-numeric:tabular-nums}
button,select,input{font:inherit}
header{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;padding:10px 20px;background:var(--head);color:#f0f3f6}
.brand{display:flex;align-items:baseline;gap:8px}
.brand h1{font-size:18px;margin:0;font-weight:700;letter-spacing:.2px}
.brand span{color:#9da7b3;font-size:14px}
.meta{color:#c9d1d9;font-size:13px}
.sp{flex:1}
header button{background:#f6f8fa;color:#24292f;border:1px solid #f6f8fa;border-radius:6px;padding:4px 12px;cursor:pointer;font-weight:600}
header button.ghost{background:transparent;color:#f0f3f6;border-color:#57606a}
header button:hover{filter:brightness(.93)}
.live{display:inline-flex;align-items:center;gap:6px;font-size:13px;color:#c9d1d9}
.dot{width:9px;height:9px;border-radius:50%;background:#8c959f}
.dot.on{background:#3fb950;box-shadow:0 0 0 3px rgba(63,185,80,.3)}
.dot.off{background:#f85149}
main{padding:16px 20px 28px;max-width:1680px;margin:0 auto}
.banner{margin:0 0 14px;padding:10px 14px;border-radius:8px;border:1px solid #ff8182;background:var(--downbg);color:var(--down)}
.banner ul{margin:4px 0 0;padding-left:20px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin-bottom:16px}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 14px;min-width:0}
.tile .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.5px;font-weight:600}
.tile .v{font-size:24px;font-weight:700;line-height:1.25}
.tile .v small{font-size:14px;font-weight:500;color:var(--muted)}
.tile.wide{grid-column:span 2}
.tile .pills{display:flex;flex-wrap:wrap;gap:4px 6px;margin-top:4px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;margin-bottom:16px;overflow:hidden;box-shadow:0 1px 2px rgba(31,35,40,.04)}
.card>.head{display:flex;flex-wrap:wrap;align-items:center;gap:6px 12px;padding:10px 14px;border-bottom:1px solid var(--line)}
.card h2{font-size:17px;margin:0;font-weight:700}
.tag{display:inline-block;padding:0 7px;border-radius:5px;background:var(--soft);color:var(--nolb);font-size:12px;font-weight:600;text-transform:uppercase;letter-spacing:.4px}
.facts{display:flex;flex-wrap:wrap;gap:4px 18px;padding:8px 14px;border-bottom:1px solid var(--soft);color:var(--muted);font-size:13px}
.facts b{color:var(--fg);font-weight:600}
.kv{color:var(--muted)}
.kv b{color:var(--fg);font-weight:600}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:14px;padding:10px 14px;border-bottom:1px solid var(--line)}
.chart{min-width:0}
.chart .t{display:flex;justify-content:space-between;align-items:baseline;gap:8px;font-size:12px;color:var(--muted)}
.chart .t b{font-size:15px;color:var(--fg)}
.chart svg{display:block;width:100%;height:64px;margin-top:3px;background:#fbfcfd;border:1px solid var(--soft);border-radius:6px}
.chart .axis{display:flex;justify-content:space-between;font-size:11px;color:var(--muted)}
.nodata{fill:#8c959f;font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{padding:7px 8px;border-bottom:1px solid var(--soft);text-align:right;white-space:nowrap;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;background:#f6f8fa;border-bottom-color:var(--line)}
th.l,td.l{text-align:left}
tbody tr:last-child td{border-bottom:0}
@media (hover:hover){tbody tr:hover td{background:rgba(9,105,218,.04)}}
tr.routes>td{padding:0 8px 10px 28px;text-align:left}table.inner{width:auto;min-width:60%;font-size:12.5px}table.inner th,table.inner td{padding:3px 10px;border-bottom:1px solid var(--soft)}table.inner th{color:var(--muted);font-weight:600}
td.name{border-left:4px solid transparent}
tr[data-state="UP"] td.name{border-left-color:var(--upbar)}
tr[data-state="DOWN"] td{background:#fff5f5}tr[data-state="DOWN"] td.name{border-left-color:var(--downbar)}
tr[data-state="MAINT"] td{background:#f1f8ff}tr[data-state="MAINT"] td.name{border-left-color:var(--maintbar)}
tr[data-state="DRAIN"] td{background:#fffdf0}tr[data-state="DRAIN"] td.name{border-left-color:var(--drainbar)}
tr[data-state="NOLB"] td.name{border-left-color:var(--nolbbar)}
.sub{display:block;color:var(--muted);font-size:12px;max-width:220px;overflow:hidden;text-overflow:ellipsis}
.sub span{white-space:nowrap}
.badge{display:inline-block;min-width:54px;text-align:center;padding:1px 8px;border-radius:11px;font-weight:700;font-size:12px;letter-spacing:.3px;border:1px solid transparent}
.s-UP,.s-OPEN{color:var(--up);background:var(--upbg);border-color:#4ac26b80}
.s-DOWN{color:var(--down);background:var(--downbg);border-color:#ff818280}
.s-MAINT{color:var(--maint);background:var(--maintbg);border-color:#54aeff80}
.s-DRAIN{color:var(--drain);background:var(--drainbg);border-color:#d4a72c80}
.s-NOLB{color:var(--nolb);background:var(--nolbbg);border-color:#8c959f80}
.s-GD{color:var(--gd);background:var(--gdbg);border-color:#fb8f4480}
.s-GU{color:var(--gu);background:var(--gubg);border-color:#84cc1680}
.codes{display:block;width:110px;height:8px;margin:5px 0 3px;border-radius:4px;background:var(--soft)}
.t4{color:var(--drain);font-weight:600}.t5,.bad{color:var(--down);font-weight:700}
.tl{width:170px}
.tl .sub{max-width:170px}
th.tl{white-space:normal}
.tl svg{display:block;width:100%;height:16px;margin-top:2px;border-radius:4px;background:var(--soft)}
.adm{white-space:nowrap}
.seg{display:inline-flex;border:1px solid var(--line);border-radius:7px;overflow:hidden}
.seg button{border:0;border-left:1px solid var(--line);background:#fff;color:var(--fg);padding:3px 7px;font-size:12px;font-weight:600;cursor:pointer}
.seg button:first-child{border-left:0}
.seg button:hover:not(:disabled){background:#f3f4f6}
.seg button.cur{color:#fff;cursor:default}
.seg button.cur[data-state="ready"]{background:var(--upbar)}.seg button.cur[data-state="drain"]{background:#9a6700}.seg button.cur[data-state="maint"]{background:var(--maint)}
select{padding:2px 6px;border:1px solid var(--line);border-radius:6px;background:#fff}
#events ol{list-style:none;margin:0;padding:0;max-height:300px;overflow:auto}
#events li{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;padding:6px 14px;border-bottom:1px solid var(--soft)}
#events time{color:var(--muted);min-width:66px}
.empty{padding:12px 14px;color:var(--muted)}
#toast{position:fixed;right:16px;bottom:16px;max-width:min(380px,calc(100vw - 32px));padding:9px 14px;border-radius:8px;background:#24292f;color:#fff;opacity:0;transition:opacity .2s;pointer-events:none;box-shadow:0 4px 12px rgba(0,0,0,.2)}
#toast.show{opacity:1}
#toast.err{background:#a40e26}
dialog{border:1px solid var(--line);border-radius:12px;padding:20px;max-width:340px;width:calc(100vw - 32px);box-shadow:0 8px 24px rgba(0,0,0,.2)}
dialog::backdrop{background:rgba(22,27,34,.45)}
dialog h3{margin:0 0 12px}
dialog label{display:block;margin-bottom:10px;font-weight:600;font-size:13px}
dialog input{display:block;width:100%;padding:7px 9px;margin-top:3px;border:1px solid var(--line);border-radius:6px;font-weight:400}
dialog .row{display:flex;gap:8px;justify-content:flex-end;margin-top:12px}
dialog .row button{padding:5px 14px;border-radius:6px;border:1px solid var(--line);background:#f6f8fa;cursor:pointer;font-weight:600}
dialog .row button[type="submit"]{background:#1f883d;border-color:#1f883d;color:#fff}
dialog .msg{color:var(--down);min-height:1.3em;font-size:13px}
.scroll{overflow-x:auto}
td.state .sub{max-width:170px}
@media (max-width:1360px){.tl{width:104px}.tl .sub{max-width:104px}th,td{padding:7px 6px}.codes{width:90px}.sub{font-size:11.5px}.seg button{padding:3px 6px}}
@media (max-width:760px){
  header{padding:8px 12px}
  main{padding:10px 10px 20px}
  .tile .v{font-size:20px}
  .tile.wide{grid-column:1/-1}
  .tiles{grid-template-columns:repeat(2,minmax(0,1fr))}
  table.rt thead{display:none}
  table.rt,table.rt tbody{display:block;width:100%}
  table.rt tr{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));column-gap:10px;padding:4px 0 8px;border-bottom:1px solid var(--line)}
  table.rt td{display:block;min-width:0;border:0;padding:4px 12px;text-align:left;white-space:normal;overflow-wrap:anywhere}
  table.rt td::before{content:attr(data-label);display:block;color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.4px;font-weight:600}
  table.rt td.name,table.rt td.tl,table.rt td.adm,table.rt td.wide{grid-column:1/-1}
  table.rt td.name{font-size:15px;border-left-width:4px;border-left-style:solid}
  table.rt td.name::before{display:none}
  table.rt td.tl{width:auto}
  .sub,.tl .sub,td.state .sub{max-width:none}
  .codes{width:100%;max-width:160px}
}
`;
