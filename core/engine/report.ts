// The run report: the same shape whether the run was the CLI or the Step Functions workflow.
import { type RunReport, summarize, type ImageResult } from '../../schema/contract.ts';
import { formatBytes, formatDuration } from '../format.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { redact } from '../redact.ts';
import { movedTags } from './moved.ts';

export function buildReport(runId: string, mode: RunReport['mode'], startedAt: Date, allResults: readonly ImageResult[]): RunReport {
  // Results come from workers and stores too: their error texts are redacted once more here.
  const results = allResults.map((r) => (r.error !== undefined ? { ...r, error: redact(r.error) } : r));
  return {
    runId,
    mode,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    counts: summarize(results),
    failures: results.filter((r) => r.status === 'failed'),
    results,
  };
}

/** A run id that sorts by time and is safe as a store key component. */
export function newRunId(origin: string): string {
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  return `${origin}-${stamp}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Writes a run's report.json and report.md (rendered by renderReportMarkdown). The one place both
 * the CLI and the summary Lambda write a run report. Returns the two keys.
 */
export function writeRunReport(store: BackupStore, report: RunReport): Promise<{ json: string; markdown: string }> {
  return store.runs.writeReport(report, renderReportMarkdown(report));
}

const MAX_RESULT_ROWS = 1000;

/** A table cell: no pipes or line breaks. */
const cell = (text: string | number | undefined) =>
  String(text ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');

function duration(startedAt: string, finishedAt: string): string {
  const ms = Date.parse(finishedAt) - Date.parse(startedAt);
  return Number.isFinite(ms) && ms >= 0 ? formatDuration(ms) : '';
}

/** The run report as Markdown: outcome, counts, failures, repository notes and one row per image. */
export function renderReportMarkdown(report: RunReport): string {
  const c = report.counts;
  const outcome = c.failed > 0 ? `${c.failed} of ${c.images} image(s) failed` : c.planned > 0 ? 'dry run' : 'succeeded';
  const lines: string[] = [
    `# ecr-backup ${report.mode} run ${report.runId}`,
    '',
    '| | |',
    '|---|---|',
    `| mode | ${report.mode} |`,
    `| result | ${cell(outcome)} |`,
    `| started | ${cell(report.startedAt)} |`,
    `| finished | ${cell(report.finishedAt)} |`,
    `| duration | ${cell(duration(report.startedAt, report.finishedAt))} |`,
    '',
    '## Counts',
    '',
    '| images | copied | unchanged | failed | planned | bytes copied | already present |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${c.images} | ${c.copied} | ${c.unchanged} | ${c.failed} | ${c.planned} | ${formatBytes(c.bytesCopied)} | ${formatBytes(c.bytesDeduplicated)} |`,
  ];
  if (report.failures.length > 0) {
    lines.push('', '## Failures', '');
    for (const f of report.failures) lines.push(`- ${cell(f.error ?? `${f.repository}:${f.tag ?? f.digest ?? ''}`)}`);
  }
  const notes = report.repositoryNotes ?? [];
  if (notes.length > 0) {
    lines.push('', '## Repository settings', '', '| repository | action | details |', '|---|---|---|');
    for (const n of notes) {
      const details = [
        ...(n.differences ?? []),
        ...(n.problems ?? []).map((p) => `problem: ${p}`),
        ...(n.skipped?.length ? [`left out: ${n.skipped.join(', ')}`] : []),
      ];
      lines.push(`| ${cell(n.targetRepository ?? n.repository)} | ${cell(n.action)} | ${cell(details.join('; '))} |`);
    }
  }
  const deleted = report.deletedAtSource ?? [];
  if (deleted.length > 0) {
    lines.push('', '## Deleted at source since the last run', '', '| repository | tag | last digest | recorded |', '|---|---|---|---|');
    for (const d of deleted.slice(0, MAX_RESULT_ROWS))
      lines.push(`| ${cell(d.repository)} | ${cell(d.tag)} | \`${cell(d.lastDigest)}\` | ${cell(d.deletedAt)} |`);
    if (deleted.length > MAX_RESULT_ROWS) lines.push('', `… and ${deleted.length - MAX_RESULT_ROWS} more tag(s): see report.json.`);
  }
  const moved = movedTags(report);
  if (moved.length > 0) {
    lines.push('', '## Moved tags', '', '| repository | tag | from | to |', '|---|---|---|---|');
    for (const m of moved.slice(0, MAX_RESULT_ROWS))
      lines.push(`| ${cell(m.repository)} | ${cell(m.tag)} | \`${cell(m.from)}\` | \`${cell(m.to)}\` |`);
    if (moved.length > MAX_RESULT_ROWS) lines.push('', `… and ${moved.length - MAX_RESULT_ROWS} more tag(s): see report.json.`);
  }
  if (report.results.length > 0) {
    lines.push(
      '',
      '## Images',
      '',
      '| repository | tag | digest | status | copied | already present | duration |',
      '|---|---|---|---|---:|---:|---:|',
    );
    for (const r of report.results.slice(0, MAX_RESULT_ROWS)) {
      const repository = r.targetRepository ? `${r.repository} → ${r.targetRepository}` : r.repository;
      lines.push(
        `| ${cell(repository)} | ${cell(r.tag ?? '')} | ${cell(r.digest ? `\`${r.digest}\`` : '')} | ${r.status} | ${formatBytes(r.bytesCopied)} | ${formatBytes(r.bytesDeduplicated)} | ${formatDuration(r.durationMs)} |`,
      );
    }
    if (report.results.length > MAX_RESULT_ROWS)
      lines.push('', `… and ${report.results.length - MAX_RESULT_ROWS} more image(s): see report.json.`);
  }
  return `${lines.join('\n')}\n`;
}
