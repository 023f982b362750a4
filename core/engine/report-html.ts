// The run report as one self-contained HTML page (`ecr-backup report RUN --html`): inline CSS, no
// scripts, no external resources, every value escaped. Outcome and counts, failures with their
// reasons, repository notes, the largest images, and a time line of the images in the run.
import type { ImageResult, RunReport } from '../../schema/contract.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { movedTags } from './moved.ts';

const MAX_ROWS = 1000;
const LARGEST = 10;

const escapeHtml = (text: string | number | undefined) =>
  String(text ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const name = (r: ImageResult) =>
  `${r.targetRepository ? `${r.repository} → ${r.targetRepository}` : r.repository}:${r.tag ?? r.digest ?? ''}`;
const imageBytes = (r: ImageResult) => r.bytesCopied + r.bytesDeduplicated;

function table(headers: string[], rows: string[][], numeric: number[] = []): string {
  const th = headers.map((h, i) => `<th${numeric.includes(i) ? ' class="n"' : ''}>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((row) => `<tr>${row.map((c, i) => `<td${numeric.includes(i) ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function renderReportHtml(report: RunReport): string {
  const c = report.counts;
  const outcome = c.failed > 0 ? `${c.failed} of ${c.images} image(s) failed` : c.planned > 0 ? 'dry run' : 'succeeded';
  const totalMs = Math.max(0, Date.parse(report.finishedAt) - Date.parse(report.startedAt));
  const sections: string[] = [];

  sections.push(
    `<h2>Counts</h2>`,
    table(
      ['images', 'copied', 'unchanged', 'failed', 'planned', 'bytes copied', 'already present'],
      [
        [
          String(c.images),
          String(c.copied),
          String(c.unchanged),
          String(c.failed),
          String(c.planned),
          escapeHtml(formatBytes(c.bytesCopied)),
          escapeHtml(formatBytes(c.bytesDeduplicated)),
        ],
      ],
      [0, 1, 2, 3, 4, 5, 6],
    ),
  );
  if (report.failures.length) {
    sections.push(
      `<h2>Failures (${report.failures.length})</h2>`,
      `<ul class="failures">${report.failures
        .slice(0, MAX_ROWS)
        .map((f) => `<li><b>${escapeHtml(name(f))}</b>: ${escapeHtml(f.error ?? 'failed')}</li>`)
        .join('')}</ul>`,
    );
  }
  const notes = report.repositoryNotes ?? [];
  if (notes.length) {
    sections.push(
      `<h2>Repository settings</h2>`,
      table(
        ['repository', 'action', 'details'],
        notes.map((n) => [
          escapeHtml(n.targetRepository ?? n.repository),
          escapeHtml(n.action),
          escapeHtml([...(n.differences ?? []), ...(n.problems ?? []).map((p) => `problem: ${p}`)].join('; ')),
        ]),
      ),
    );
  }
  const moved = movedTags(report);
  if (moved.length) {
    sections.push(
      `<h2>Moved tags (${moved.length})</h2>`,
      table(
        ['image', 'from', 'to'],
        moved
          .slice(0, MAX_ROWS)
          .map((m) => [escapeHtml(`${m.repository}:${m.tag}`), `<code>${escapeHtml(m.from)}</code>`, `<code>${escapeHtml(m.to)}</code>`]),
      ),
    );
  }
  const deleted = report.deletedAtSource ?? [];
  if (deleted.length) {
    sections.push(
      `<h2>Deleted at source (${deleted.length})</h2>`,
      table(
        ['image', 'last digest', 'recorded'],
        deleted
          .slice(0, MAX_ROWS)
          .map((d) => [escapeHtml(`${d.repository}:${d.tag}`), `<code>${escapeHtml(d.lastDigest)}</code>`, escapeHtml(d.deletedAt)]),
      ),
    );
  }
  const largest = [...report.results]
    .sort((a, b) => imageBytes(b) - imageBytes(a))
    .slice(0, LARGEST)
    .filter((r) => imageBytes(r) > 0);
  if (largest.length) {
    sections.push(
      `<h2>Largest images</h2>`,
      table(
        ['image', 'size', 'copied', 'already present', 'status'],
        largest.map((r) => [
          escapeHtml(name(r)),
          escapeHtml(formatBytes(imageBytes(r))),
          escapeHtml(formatBytes(r.bytesCopied)),
          escapeHtml(formatBytes(r.bytesDeduplicated)),
          escapeHtml(r.status),
        ]),
        [1, 2, 3],
      ),
    );
  }
  if (report.results.length) {
    // Images run concurrently and results carry durations, not start times: each bar is an image's
    // duration on the run's scale, in the order the results were recorded.
    const scale = Math.max(totalMs, ...report.results.map((r) => r.durationMs), 1);
    const bars = report.results.slice(0, MAX_ROWS).map((r) => {
      const width = Math.max(0.5, (r.durationMs / scale) * 100).toFixed(1);
      return `<div class="row"><span class="label">${escapeHtml(name(r))}</span><span class="track"><span class="bar ${escapeHtml(r.status)}" style="width:${width}%"></span></span><span class="d">${escapeHtml(formatDuration(r.durationMs))}</span></div>`;
    });
    sections.push(
      `<h2>Time line</h2>`,
      `<p>Started ${escapeHtml(report.startedAt)}, finished ${escapeHtml(report.finishedAt)} (${escapeHtml(formatDuration(totalMs))}). Each bar: one image's copy time on the run's scale.</p>`,
      `<div class="timeline">${bars.join('\n')}</div>`,
    );
    sections.push(
      `<h2>Images</h2>`,
      table(
        ['image', 'digest', 'status', 'copied', 'already present', 'duration'],
        report.results
          .slice(0, MAX_ROWS)
          .map((r) => [
            escapeHtml(name(r)),
            `<code>${escapeHtml(r.digest ?? '')}</code>`,
            escapeHtml(r.status),
            escapeHtml(formatBytes(r.bytesCopied)),
            escapeHtml(formatBytes(r.bytesDeduplicated)),
            escapeHtml(formatDuration(r.durationMs)),
          ]),
        [3, 4, 5],
      ),
    );
    if (report.results.length > MAX_ROWS) sections.push(`<p>… and ${report.results.length - MAX_ROWS} more image(s): see report.json.</p>`);
  }

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>ecr-backup ${escapeHtml(report.mode)} run ${escapeHtml(report.runId)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}td.n,th.n{text-align:right}
.ok{color:#2a7d2a}.bad{color:#b22}code{font-size:12px}
.failures li{color:#b22}
.timeline .row{display:flex;align-items:center;gap:.5em;margin:2px 0}.timeline .label{width:28em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.timeline .track{flex:1;background:#eee;height:10px}.timeline .bar{display:block;height:10px;background:#4a90d9}.timeline .bar.failed{background:#d9534f}.timeline .bar.unchanged{background:#aaa}
.timeline .d{width:6em;text-align:right}
</style></head>
<body>
<h1>ecr-backup ${escapeHtml(report.mode)} run ${escapeHtml(report.runId)}</h1>
<p class="${c.failed > 0 ? 'bad' : 'ok'}"><b>Result: ${escapeHtml(outcome)}</b> (started ${escapeHtml(report.startedAt)}, ${escapeHtml(formatDuration(totalMs))})</p>
${sections.join('\n')}
</body></html>
`;
}
