import { escapeHtml } from './html-parts.js';

/** The frame every CNR page is drawn in: head, a header with the search box, one style sheet. */

/** The Content-Security-Policy of every page: no scripts, no loads, inline styles, forms to this origin. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/** What a page puts in the frame; `query` and `namespace` refill the search box. */
export interface PageFrame {
  title: string;
  host: string;
  query: string;
  namespace: string;
  head: string;
  body: string;
}

export function pageFrame(l: PageFrame): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${l.head}
<title>${escapeHtml(l.title)} · CNR ${escapeHtml(l.host)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<a class="brand" href="/">Container Native Registry <span>${escapeHtml(l.host)}</span></a>
<form class="search" method="get" action="/" role="search">
${l.namespace ? `<input type="hidden" name="namespace" value="${escapeHtml(l.namespace)}">` : ''}<input type="search" name="q" value="${escapeHtml(l.query)}" placeholder="Search packages" aria-label="Search packages">
<button type="submit">Search</button>
</form>
</header>
<main>
${l.body}
</main>
</body>
</html>
`;
}

const STYLE = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; flex-wrap: wrap; padding: .75rem 1.5rem; background: #24292f; }
header .brand { color: #fff; font-weight: 600; font-size: 1.05rem; }
header .brand span { color: #9ea7b3; font-weight: 400; margin-left: .4rem; }
.search { display: flex; gap: .4rem; }
.search input { width: 18rem; padding: .35rem .6rem; border: 1px solid #57606a; border-radius: 6px; background: #fff; font: inherit; }
.search button { padding: .35rem .9rem; border: 1px solid #57606a; border-radius: 6px; background: #f6f8fa; font: inherit; cursor: pointer; }
main { max-width: 72rem; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 .75rem; word-break: break-all; }
h1 .count { font-size: .9rem; font-weight: 500; color: var(--muted); background: var(--soft); border: 1px solid var(--line); border-radius: 1rem; padding: .05rem .55rem; vertical-align: middle; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
table.list { width: 100%; border-collapse: collapse; border: 1px solid var(--line); border-radius: 6px; }
table.list th, table.list td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; }
table.list th { background: var(--soft); font-weight: 600; font-size: .85rem; color: var(--muted); }
table.list tr:last-child td { border-bottom: 0; }
.pkg { font-weight: 600; }
.badge { display: inline-block; font-size: .78rem; padding: 0 .45rem; border: 1px solid var(--line); border-radius: 1rem; background: var(--soft); }
.tag { display: inline-block; font-size: .75rem; font-weight: 500; padding: 0 .45rem; border-radius: 1rem; vertical-align: middle; }
.tag.default { background: #ddf4ff; color: #0550ae; }
.tag.channel { background: #dafbe1; color: #116329; }
.muted, .summary, .filter, .foot, .crumbs { color: var(--muted); }
.foot { margin-top: 2rem; font-size: .85rem; }
.empty { font-size: 1rem; }
.release { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 0 0 .9rem; }
.mt + .mt { border-top: 1px dashed var(--line); margin-top: .6rem; padding-top: .6rem; }
.facts { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem; font-size: .9rem; }
.facts .sep { color: var(--line); }
pre { margin: .45rem 0 0; padding: .5rem .7rem; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
pre.cmd { user-select: all; }
details.metadata { margin-top: .45rem; }
details.metadata summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
`;
