// Combining a bench measurement's repetitions: the median run stands for them, with the worst peaks.

/** The run with the median wall time (its breakdown stays consistent); the upper median for an even count. */
export function representative<T extends { wallMs: number }>(runs: readonly T[]): T {
  return [...runs].sort((a, b) => a.wallMs - b.wallMs)[Math.floor(runs.length / 2)]!;
}

export function maxOf<T>(runs: readonly T[], key: { [K in keyof T]: T[K] extends number ? K : never }[keyof T]): number {
  return Math.max(...runs.map((r) => r[key] as number));
}

/** Our repetitions: the median run, with the worst RSS, temp disk and unexpected writes of them all. */
export function mergeOurs<T extends { wallMs: number; maxRssBytes: number; peakTempBytes: number; unexpectedWrites: string[] }>(
  runs: readonly T[],
): T {
  return {
    ...representative(runs),
    maxRssBytes: Math.max(...runs.map((r) => r.maxRssBytes)),
    peakTempBytes: Math.max(...runs.map((r) => r.peakTempBytes)),
    unexpectedWrites: [...new Set(runs.flatMap((r) => r.unexpectedWrites))],
  };
}
