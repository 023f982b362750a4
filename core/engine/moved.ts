// Tags a backup found moved at the source: copied (or re-recorded) this run while the store's current record of the
// tag held another digest (unchanged.ts sets `previousDigest`; the new record keeps the history, so
// `restore --as-of` an earlier time still brings back the old digest). Derived from the results, so
// report.json needs no second list; every renderer (report.md, HTML, CLI text, SNS) reads this one.
import type { ImageResult, RunReport } from '../../schema/contract.ts';

export interface MovedTag {
  repository: string;
  tag: string;
  from: string;
  to: string;
}

export function movedTags(report: Pick<RunReport, 'mode' | 'results'>): MovedTag[] {
  if (report.mode !== 'backup') return [];
  return report.results.filter(isMove).map((r) => ({ repository: r.repository, tag: r.tag!, from: r.previousDigest!, to: r.digest! }));
}

// A tag moved back to a digest the store already holds copies nothing: the copy engine says
// `unchanged`, yet a new record was written and the tag did move.
const isMove = (r: ImageResult) =>
  (r.status === 'copied' || r.status === 'unchanged') &&
  r.tag !== undefined &&
  r.digest !== undefined &&
  r.previousDigest !== undefined &&
  r.previousDigest !== r.digest;

/** One line per move: `tag team/app:prod moved from sha256:… to sha256:…`. */
export const movedLine = (m: MovedTag) => `tag ${m.repository}:${m.tag} moved from ${m.from} to ${m.to}`;
