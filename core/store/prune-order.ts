// The order in which prune's sweep deletes unreferenced blobs, so that an interrupted sweep (a kill,
// the Lambda time limit between batches, a failed delete) never leaves a manifest whose content is
// gone. That keeps the store's invariant, "a manifest in blobs/ => its whole image is in blobs/",
// which the copy engine relies on when it reports a stored image `unchanged`.
//
// Phases, each finished before the next starts:
//   1..n  manifests, parents before children: an index before the image manifests it lists (a
//         manifest's phase is one more than the deepest unreferenced manifest that names it);
//   last  every other blob (configs, layers).
// A blob whose read failed cannot be classified: it is kept, and so is everything in the last phase
// (a manifest among the unreadable would otherwise outlive its layers).
import { mapLimited } from '../limiter.ts';
import type { ReferenceWalker } from './references.ts';

export interface DeletionOrder<T> {
  /** Candidates grouped into phases, in deletion order. */
  phases: T[][];
  /** Candidates whose manifest-ness could not be read (kept this time). */
  unreadable: T[];
}

export async function deletionOrder<T extends { digest: string; size: number }>(
  candidates: readonly T[],
  walker: ReferenceWalker,
  options: { concurrency: number; maxManifestBytes: number },
): Promise<DeletionOrder<T>> {
  const kinds = await mapLimited(candidates, options.concurrency, (c) =>
    c.size <= options.maxManifestBytes ? walker.classify(c.digest) : Promise.resolve({ kind: 'other' as const }),
  );
  const manifests = new Map<string, { item: T; refs: string[] }>();
  const others: T[] = [];
  const unreadable: T[] = [];
  candidates.forEach((c, i) => {
    const kind = kinds[i]!;
    if (kind.kind === 'manifest') manifests.set(c.digest, { item: c, refs: kind.refs });
    else if (kind.kind === 'other') others.push(c);
    else if (kind.kind === 'unreadable') unreadable.push(c);
    // missing: already gone.
  });

  const parents = new Map<string, string[]>();
  for (const [digest, m] of manifests) {
    for (const ref of m.refs) if (manifests.has(ref)) parents.set(ref, [...(parents.get(ref) ?? []), digest]);
  }
  // Content addressing makes the graph acyclic: a manifest cannot name itself through its children.
  const depth = new Map<string, number>();
  const depthOf = (digest: string): number => {
    let d = depth.get(digest);
    if (d === undefined) {
      d = Math.max(-1, ...(parents.get(digest) ?? []).map(depthOf)) + 1;
      depth.set(digest, d);
    }
    return d;
  };
  const phases: T[][] = [];
  for (const [digest, m] of manifests) {
    const level = depthOf(digest);
    const phase = phases[level] ?? [];
    phase.push(m.item);
    phases[level] = phase;
  }
  if (unreadable.length === 0 && others.length > 0) phases.push(others);
  return { phases: phases.filter((p) => p.length > 0), unreadable };
}
