// Small helpers for server-rendered pages (escaping, the page shell, formatting).

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const NAV: Array<[string, string]> = [
  ['/status', 'Status'],
  ['/workers', 'Workers'],
  ['/tasks', 'Tasks'],
  ['/graph', 'Graph'],
  ['/info/main/workers.html', 'Info'],
];

/** A page of the dashboard: the live ones load the bundled app; info pages are static HTML. */
export function page(title: string, body: string, opts: { page?: string; live?: boolean } = {}): string {
  const nav = NAV.map(([href, label]) => `<a href="${href}"${opts.page && href === `/${opts.page}` ? ' class="active"' : ''}>${label}</a>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>dd: ${esc(title)}</title><link rel="stylesheet" href="/statics/dashboard.css"></head>
<body data-page="${esc(opts.page ?? 'info')}">
<nav><span class="brand">dd</span>${nav}<span id="conn" class="conn"></span></nav>
<main id="app">${body}</main>
${opts.live ? '<script src="/statics/dashboard.js"></script>' : ''}
</body></html>
`;
}

export function fmtAge(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`;
}
