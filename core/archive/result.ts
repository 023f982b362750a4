// The fields every archive backup or restore result starts with (the copy engine's ImageResult shape).
export function resultBase(base: { repository: string; targetRepository?: string; tag?: string; digest?: string }, started: number) {
  return {
    repository: base.repository,
    ...(base.targetRepository && base.targetRepository !== base.repository ? { targetRepository: base.targetRepository } : {}),
    ...(base.tag !== undefined ? { tag: base.tag } : {}),
    ...(base.digest !== undefined ? { digest: base.digest } : {}),
    durationMs: Math.round(performance.now() - started),
  };
}
