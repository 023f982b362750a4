// Renders benchmark results as markdown: a time table, a storage/resources table and the targets.
import type { BaselineResult } from './baseline.ts';
import type { OursResult } from './ours.ts';

export type DestinationKind = 's3' | 'dir';

/** CPU time the services spent during a run (read from /proc/<pid>/stat before and after). */
export interface ServiceCpu {
  registryMs: number;
  motoMs: number;
}

export interface Row {
  workload: string;
  title: string;
  destination: DestinationKind;
  images: number;
  /** Unique compressed blob bytes (config + layers, each counted once) from the fixtures. */
  uniqueBytes: number;
  /** Speed-up target for a full run (baseline / ours), when the workload has one. */
  speedTarget?: number;
  /** Whether the peak RSS target applies to this row (the 1 GB image). */
  rssTarget?: boolean;
  baseline?: BaselineResult & { storedBytes: number; services: ServiceCpu };
  /** Each of these is the repetition with the median wall time, except RSS / temp disk / writes: the worst over all repetitions. */
  full?: Omit<OursResult, 'report'> & { storedBytes: number; bytesCopied: number; services: ServiceCpu };
  incremental?: Omit<OursResult, 'report'> & { storedBytes: number; unchanged: number; services: ServiceCpu };
  /** Wall times of every repetition. */
  samples?: { baseline: number[]; full: number[]; incremental: number[] };
  errors: string[];
}

const TARGETS = {
  incrementalSpeedup: 20,
  storedRatio: 1.05,
  rssBytes: 300 * 1024 * 1024,
} as const;

const MiB = 1024 * 1024;

export function mib(bytes: number): string {
  if (bytes === 0) return '0';
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
  return `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 2 : 1)} MiB`;
}

export function secs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function ratio(x: number): string {
  return x >= 100 ? `${x.toFixed(0)}x` : x >= 10 ? `${x.toFixed(1)}x` : `${x.toFixed(2)}x`;
}

const met = (ok: boolean) => (ok ? '**met**' : '**NOT met**');
const na = '—';

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const dest = (d: DestinationKind) => (d === 's3' ? 'moto S3' : 'directory');

interface Verdict {
  target: string;
  row: string;
  value: string;
  ok: boolean;
}

function verdicts(rows: readonly Row[]): Verdict[] {
  const out: Verdict[] = [];
  for (const r of rows) {
    const name = `${r.title} → ${dest(r.destination)}`;
    if (r.speedTarget !== undefined && r.baseline && r.full) {
      const x = r.baseline.wallMs / r.full.wallMs;
      out.push({ target: `full run ≥ ${r.speedTarget}x faster than baseline`, row: name, value: ratio(x), ok: x >= r.speedTarget });
    }
    if (r.baseline && r.incremental) {
      const x = r.baseline.wallMs / r.incremental.wallMs;
      out.push({
        target: `incremental ≥ ${TARGETS.incrementalSpeedup}x faster than baseline full`,
        row: name,
        value: ratio(x),
        ok: x >= TARGETS.incrementalSpeedup,
      });
    }
    if (r.full) {
      const x = r.full.storedBytes / r.uniqueBytes;
      out.push({
        target: `stored bytes ≤ ${TARGETS.storedRatio}x unique compressed`,
        row: name,
        value: ratio(x),
        ok: x <= TARGETS.storedRatio,
      });
      const temp = Math.max(r.full.peakTempBytes, r.incremental?.peakTempBytes ?? 0);
      const writes = [...r.full.unexpectedWrites, ...(r.incremental?.unexpectedWrites ?? [])];
      out.push({
        target: 'zero temp disk',
        row: name,
        value: writes.length ? `${mib(temp)}; writes: ${writes.join(', ')}` : mib(temp),
        ok: temp === 0 && writes.length === 0,
      });
      if (r.rssTarget)
        out.push({
          target: 'peak RSS < 300 MiB copying a 1 GB image',
          row: name,
          value: mib(r.full.maxRssBytes),
          ok: r.full.maxRssBytes < TARGETS.rssBytes,
        });
    }
  }
  return out;
}

export function renderReport(options: {
  title: string;
  machine: [string, string][];
  rows: readonly Row[];
  notes: string[];
  setup: [string, string][];
}): string {
  const { rows } = options;
  const timeRows = rows.map((r) => {
    const speed = r.baseline && r.full ? r.baseline.wallMs / r.full.wallMs : undefined;
    const incr = r.baseline && r.incremental ? r.baseline.wallMs / r.incremental.wallMs : undefined;
    return [
      r.title,
      dest(r.destination),
      `${r.images} / ${mib(r.uniqueBytes)}`,
      r.baseline
        ? `${secs(r.baseline.wallMs)} (export ${secs(r.baseline.exportMs)}, ${r.destination === 's3' ? 'upload' : 'cp'} ${secs(r.baseline.uploadMs)})`
        : na,
      r.full ? `${secs(r.full.wallMs)} (engine ${secs(r.full.engineMs)})` : na,
      speed !== undefined ? ratio(speed) : na,
      r.speedTarget !== undefined
        ? speed !== undefined
          ? `≥ ${r.speedTarget}x: ${met(speed >= r.speedTarget)}`
          : `≥ ${r.speedTarget}x`
        : na,
      r.incremental ? `${secs(r.incremental.wallMs)} (engine ${secs(r.incremental.engineMs)})` : na,
      incr !== undefined ? ratio(incr) : na,
      incr !== undefined ? `≥ ${TARGETS.incrementalSpeedup}x: ${met(incr >= TARGETS.incrementalSpeedup)}` : na,
    ];
  });
  const resourceRows = rows.map((r) => {
    const ours = r.full ? r.full.storedBytes / r.uniqueBytes : undefined;
    const temp = r.full ? Math.max(r.full.peakTempBytes, r.incremental?.peakTempBytes ?? 0) : undefined;
    const writes = r.full ? [...r.full.unexpectedWrites, ...(r.incremental?.unexpectedWrites ?? [])] : [];
    return [
      r.title,
      dest(r.destination),
      mib(r.uniqueBytes),
      r.full ? `${mib(r.full.storedBytes)} (${ratio(ours!)})` : na,
      r.baseline ? `${mib(r.baseline.storedBytes)} (${ratio(r.baseline.storedBytes / r.uniqueBytes)})` : na,
      ours !== undefined ? `≤ ${TARGETS.storedRatio}x: ${met(ours <= TARGETS.storedRatio)}` : na,
      r.full ? mib(r.full.maxRssBytes) + (r.incremental ? ` (incr. ${mib(r.incremental.maxRssBytes)})` : '') : na,
      r.full && r.rssTarget ? `< 300 MiB: ${met(r.full.maxRssBytes < TARGETS.rssBytes)}` : na,
      r.baseline ? mib(r.baseline.maxRssBytes) : na,
      temp !== undefined ? (writes.length ? `${mib(temp)}, other writes: ${writes.join(', ')}` : mib(temp)) : na,
      temp !== undefined ? `0: ${met(temp === 0 && writes.length === 0)}` : na,
      r.baseline ? mib(r.baseline.peakTempBytes) : na,
    ];
  });
  const breakdownRows = rows.map((r) => {
    const parts = (o: { startLagMs: number; engineMs: number; exitLagMs: number } | undefined) =>
      o ? `${secs(o.startLagMs)} / ${secs(o.engineMs)} / ${secs(o.exitLagMs)}` : na;
    return [
      r.title,
      dest(r.destination),
      parts(r.full),
      r.full && r.full.engineMs > 0 ? `${(r.full.bytesCopied / MiB / (r.full.engineMs / 1000)).toFixed(0)} MiB/s` : na,
      r.baseline ? `${(r.uniqueBytes / MiB / (r.baseline.wallMs / 1000)).toFixed(0)} MiB/s` : na,
      r.baseline && r.full ? ratio(r.baseline.wallMs / r.full.engineMs) : na,
      parts(r.incremental),
      r.baseline && r.incremental ? ratio(r.baseline.wallMs / r.incremental.engineMs) : na,
    ];
  });
  const cpu = (o: { cpuMs: number; services: ServiceCpu } | undefined, withMoto: boolean) =>
    o ? `${secs(o.cpuMs)} / ${secs(o.services.registryMs)}${withMoto ? ` / ${secs(o.services.motoMs)}` : ''}` : na;
  const cpuRows = rows.map((r) => [
    r.title,
    dest(r.destination),
    cpu(r.baseline, r.destination === 's3'),
    cpu(r.full, r.destination === 's3'),
    r.baseline && r.full
      ? ratio(
          (r.baseline.cpuMs + r.baseline.services.registryMs + r.baseline.services.motoMs) /
            (r.full.cpuMs + r.full.services.registryMs + r.full.services.motoMs),
        )
      : na,
    cpu(r.incremental, r.destination === 's3'),
  ]);
  const spread = (xs: number[] | undefined) =>
    xs?.length ? (xs.length === 1 ? secs(xs[0]!) : `${secs(Math.min(...xs))} – ${secs(Math.max(...xs))}`) : na;
  const spreadRows = rows.map((r) => [
    r.title,
    dest(r.destination),
    String(r.samples?.full.length ?? 0),
    spread(r.samples?.baseline),
    spread(r.samples?.full),
    spread(r.samples?.incremental),
  ]);
  const v = verdicts(rows);
  const errors = rows.flatMap((r) => r.errors.map((e) => `- ${r.title} → ${dest(r.destination)}: ${e.split('\n')[0]}`));
  return [
    `# ${options.title}`,
    '',
    table(
      ['', ''],
      options.machine.map(([k, val]) => [k, val]),
    ),
    '',
    '## Wall time',
    '',
    table(
      [
        'Workload',
        'Destination',
        'Images / unique compressed',
        'Baseline full',
        'Ours full',
        'Speed-up (baseline/ours)',
        'Target',
        'Ours incremental',
        'Incremental vs baseline full',
        'Target',
      ],
      timeRows,
    ),
    '',
    '## Where our time goes',
    '',
    'start = spawn → report startedAt (node, module loading); engine = startedAt → finishedAt (listing + copying); exit = finishedAt → process gone (writing the run report, exit). ' +
      'Throughput = bytes copied / engine time (ours), unique compressed bytes / wall time (baseline).',
    '',
    table(
      [
        'Workload',
        'Destination',
        'Full: start / engine / exit',
        'Ours engine throughput',
        'Baseline throughput',
        'Speed-up, engine only',
        'Incremental: start / engine / exit',
        'Incremental engine only vs baseline full',
      ],
      breakdownRows,
    ),
    '',
    '## CPU seconds (client / registry / moto)',
    '',
    'Less sensitive to other load on the machine than wall time. Client = the CLI process (ours) or all skopeo, aws and cp processes (baseline); registry and moto = CPU those servers used during the run.',
    '',
    table(['Workload', 'Destination', 'Baseline full', 'Ours full', 'Total CPU ratio (baseline/ours)', 'Ours incremental'], cpuRows),
    '',
    '## Storage, memory, temp disk',
    '',
    table(
      [
        'Workload',
        'Destination',
        'Unique compressed',
        'Stored: ours',
        'Stored: baseline',
        'Target (ours)',
        'Peak RSS: ours',
        'Target',
        'Peak RSS: baseline (largest process)',
        'Peak temp disk: ours',
        'Target',
        'Peak temp disk: baseline',
      ],
      resourceRows,
    ),
    '',
    `## Targets: ${v.filter((x) => x.ok).length} of ${v.length} met`,
    '',
    table(
      ['Target', 'Run', 'Value', 'Result'],
      v.map((x) => [x.target, x.row, x.value, met(x.ok)]),
    ),
    '',
    ...(errors.length ? ['## Errors', '', ...errors, ''] : []),
    '## Run-to-run spread (wall time, min – max)',
    '',
    table(['Workload', 'Destination', 'Repetitions', 'Baseline full', 'Ours full', 'Ours incremental'], spreadRows),
    '',
    '## Setup and reference times',
    '',
    table(['Step', 'Value'], options.setup),
    '',
    '## Notes',
    '',
    ...options.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}
